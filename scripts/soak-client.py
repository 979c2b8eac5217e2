#!/usr/bin/env python3
"""The soak benchmark's load: several client processes send mixed raw KCM requests to one ccached.

Used by scripts/soak.sh, which starts the daemon. Speaks the KCM wire format itself (frames of
u32 length + body; body = version 2.0, u16 opcode, arguments; reply = u32 length, u32 transport
word, i32 status, payload), so nothing but the daemon is measured. The run is cut into phases;
after each, every client has destroyed its caches and the daemon is idle, and its memory is
sampled: equal logical state at every sample, so growth between samples is what the daemon
failed to give back.

  soak-client.py --socket PATH --pid PID [--requests 1000000] [--clients 4] [--phases 20]

Prints one line per phase: phase, requests so far, VmRSS KiB, Private_Dirty KiB; then a summary.
"""
import argparse
import multiprocessing
import os
import random
import socket
import struct
import sys

OP_GEN_NEW, OP_INITIALIZE, OP_DESTROY, OP_STORE, OP_RETRIEVE = 3, 4, 5, 6, 7
OP_GET_PRINCIPAL, OP_GET_CRED_UUID_LIST, OP_GET_CRED_BY_UUID, OP_REMOVE_CRED = 8, 9, 10, 11
OP_GET_CACHE_UUID_LIST, OP_GET_DEFAULT_CACHE, OP_GET_KDC_OFFSET, OP_SET_KDC_OFFSET = 18, 20, 22, 23
OP_GET_CRED_LIST, OP_STATUS = 13001, 0x5000
REALM = b"SOAK.TEST"


def data(b):
    return struct.pack(">I", len(b)) + b


def principal(components, realm=REALM, name_type=1):
    return struct.pack(">iI", name_type, len(components)) + data(realm) + b"".join(data(c) for c in components)


def credential(client, server, ticket_len, rng):
    """A v4 credential: principals, keyblock, times, is_skey, flags, addresses, authdata, tickets."""
    key = bytes(rng.getrandbits(8) for _ in range(32))
    ticket = bytes(rng.getrandbits(8) for _ in range(ticket_len))
    now = 1_900_000_000
    return (
        client + server + struct.pack(">h", 18) + data(key)
        + struct.pack(">IIII", now, now, now + 36000, now + 86400) + b"\0" + struct.pack(">I", 0x00810000)
        + struct.pack(">I", 1) + struct.pack(">H", 2) + data(b"\x7f\0\0\1")
        + struct.pack(">I", 0) + data(ticket) + data(b"")
    )


def template(client, server):
    # whichfields client|server, then the two principals and the scalar fields.
    return struct.pack(">I", 0x03) + client + server + struct.pack(">IIII", 0, 0, 0, 0) + b"\0" + struct.pack(">I", 0)


class Connection:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)

    def call(self, opcode, args=b""):
        body = b"\x02\x00" + struct.pack(">H", opcode) + args
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        header = self._exactly(8)
        length, _transport = struct.unpack(">II", header)
        reply = self._exactly(length)
        (status,) = struct.unpack(">i", reply[:4])
        return status, reply[4:]

    def _exactly(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("ccached closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)


def worker(path, uid, client, phase, count, results):
    """Sends `count` mixed requests, then destroys this client's caches; reports (sent, errors)."""
    rng = random.Random(client * 1_000_003 + phase)
    conn = Connection(path)
    # New connections now and then too: accept, thread start and teardown are part of the soak.
    sent = errors = 0
    names = [f"{uid}:soak{client}-{k}".encode() + b"\0" for k in range(4)]
    me = principal([f"user{client}".encode()])
    cycle = 0
    while sent < count:
        name = names[cycle % len(names)]
        servers = [principal([b"host", f"h{client}-{cycle % 50}-{i}.soak.test".encode()], name_type=3) for i in range(3)]
        steps = [(OP_INITIALIZE, name + me)]
        steps += [(OP_STORE, name + credential(me, s, rng.choice((200, 1000, 4000)), rng)) for s in servers]
        steps += [
            (OP_GET_PRINCIPAL, name),
            (OP_GET_CRED_UUID_LIST, name),
            (OP_RETRIEVE, name + struct.pack(">I", 0) + template(me, servers[0])),
            (OP_REMOVE_CRED, name + struct.pack(">I", 0) + template(me, servers[1])),
            (OP_GET_CRED_LIST, name),
            (OP_SET_KDC_OFFSET, name + struct.pack(">i", cycle % 7)),
            (OP_GET_KDC_OFFSET, name),
            (OP_GET_CACHE_UUID_LIST, b""),
            (OP_GET_DEFAULT_CACHE, b""),
            (OP_GEN_NEW, b""),
            (OP_STATUS, b""),
        ]
        if cycle % 3 == 2:
            steps.append((OP_DESTROY, name))
        for opcode, args in steps:
            status, payload = conn.call(opcode, args)
            sent += 1
            if status != 0:
                errors += 1
            if opcode == OP_GET_CRED_UUID_LIST and status == 0 and len(payload) >= 16:
                conn.call(OP_GET_CRED_BY_UUID, name + payload[:16])
                sent += 1
        cycle += 1
        if cycle % 200 == 0:
            conn.sock.close()
            conn = Connection(path)
    for name in names:
        conn.call(OP_DESTROY, name)  # KRB5_FCC_NOFILE for one already gone: fine
    conn.sock.close()
    results.put((sent, errors))


def memory(pid):
    rss = dirty = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                dirty = int(line.split()[1])
    return rss, dirty


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--phases", type=int, default=20)
    parser.add_argument("--warmup-phases", type=int, default=2)
    args = parser.parse_args()
    uid = os.getuid()
    per_worker = args.requests // (args.clients * args.phases)
    total = errors = 0
    samples = [(0, 0) + memory(args.pid)]
    print(f"phase  requests  rss_kib  private_dirty_kib", flush=True)
    print(f"{0:5d}  {0:8d}  {samples[0][2]:7d}  {samples[0][3]:17d}", flush=True)
    for phase in range(1, args.phases + 1):
        results = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(target=worker, args=(args.socket, uid, c, phase, per_worker, results))
            for c in range(args.clients)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            sent, bad = results.get()
            total += sent
            errors += bad
        for p in procs:
            p.join()
            if p.exitcode != 0:
                sys.exit(f"soak-client: a client failed (exit {p.exitcode})")
        rss, dirty = memory(args.pid)
        samples.append((phase, total, rss, dirty))
        print(f"{phase:5d}  {total:8d}  {rss:7d}  {dirty:17d}", flush=True)
    warm = samples[args.warmup_phases]
    last = samples[-1]
    peak_rss = max(s[2] for s in samples[args.warmup_phases:])
    print(
        f"summary: {total} requests ({errors} answered with an error status) from {args.clients} clients; "
        f"after warm-up (phase {args.warmup_phases}, {warm[1]} requests): RSS {warm[2]} -> {last[2]} KiB "
        f"({last[2] - warm[2]:+d}), Private_Dirty {warm[3]} -> {last[3]} KiB ({last[3] - warm[3]:+d}); "
        f"peak RSS after warm-up {peak_rss} KiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
