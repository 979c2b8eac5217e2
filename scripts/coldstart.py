#!/usr/bin/env python3
"""ccached's cold start as ccached-bench measures it (issue 14): from the exec of
`ccached --socket PATH` until PATH accepts a connection, polling connect() every 50 us. Also, on
that first connection, until the daemon has answered a NOOP request (the connection is accepted
by the kernel as soon as the socket listens; the answer needs the daemon's main loop).

Each run starts a fresh daemon on a new socket and keeps it running, as the bench does (40 daemons
up together), then all are stopped with SIGTERM. Prints the median and p99 in milliseconds, and
the load average, so a figure is never quoted without the load it was taken under.

    scripts/coldstart.py --bin .build/x86_64-unknown-linux-gnu/release [--runs 40] [--pin 1]
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def percentile(samples, fraction):
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


# KCM NOOP: u32 length 4, then protocol 2.0 and opcode 0 (Docs/protocol.md).
NOOP = bytes([0, 0, 0, 4, 2, 0, 0, 0])


def connected(path):
    """A connection to path, or None while nothing listens there."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return probe
    except OSError:
        probe.close()
        return None


def answered(connection, timeout):
    """Whether the daemon answered NOOP with status 0 (a reply is u32 length, u32 status)."""
    connection.settimeout(timeout)
    try:
        connection.sendall(NOOP)
        reply = b""
        while len(reply) < 8:
            chunk = connection.recv(8 - len(reply))
            if not chunk:
                return False
            reply += chunk
        return reply[4:8] == bytes(4)
    except OSError:
        return False
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the directory holding ccached")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--pin", type=int, default=None, help="a CPU to pin this script and the daemons to")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one start may take")
    arguments = parser.parse_args()
    ccached = os.path.join(arguments.bin, "ccached")
    if not os.access(ccached, os.X_OK):
        sys.exit(f"coldstart: no executable {ccached}; build it as make bench does (see RELEASE_FLAGS in the Makefile)")
    if arguments.pin is not None:
        # Inherited by every daemon started below, as ccached-bench --pin-cpu does.
        os.sched_setaffinity(0, {arguments.pin})
    workspace = tempfile.mkdtemp(prefix="ccached-cold-")
    os.chmod(workspace, 0o700)
    log = open(os.path.join(workspace, "ccached.log"), "ab")
    daemons = []
    samples = []
    replies = []
    try:
        for index in range(arguments.runs):
            path = os.path.join(workspace, f"cold-{index}", "socket")
            started = time.monotonic_ns()
            daemon = subprocess.Popen([ccached, "--socket", path], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=log, close_fds=True)
            daemons.append(daemon)
            deadline = started + int(arguments.timeout * 1e9)
            while True:
                connection = connected(path)
                if connection is not None:
                    samples.append(time.monotonic_ns() - started)
                    if not answered(connection, arguments.timeout):
                        sys.exit(f"coldstart: ccached accepted on {path} but did not answer NOOP")
                    replies.append(time.monotonic_ns() - started)
                    break
                if daemon.poll() is not None:
                    sys.exit(f"coldstart: ccached exited ({daemon.returncode}) before {path} accepted connections;"
                             f" see {workspace}/ccached.log")
                if time.monotonic_ns() > deadline:
                    sys.exit(f"coldstart: {path} did not accept connections within {arguments.timeout} s")
                time.sleep(50e-6)
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        log.close()
        shutil.rmtree(workspace, ignore_errors=True)
    load = os.getloadavg()
    pinned = f"pinned to CPU {arguments.pin}" if arguments.pin is not None else "unpinned"
    print(f"cold start, {len(samples)} runs, {pinned}: median {percentile(samples, 0.5) / 1e6:.2f} ms, "
          f"p99 {percentile(samples, 0.99) / 1e6:.2f} ms, min {min(samples) / 1e6:.2f} ms; first reply median "
          f"{percentile(replies, 0.5) / 1e6:.2f} ms, p99 {percentile(replies, 0.99) / 1e6:.2f} ms "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")


if __name__ == "__main__":
    main()
