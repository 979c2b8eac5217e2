#!/usr/bin/env bash
# Restore after a crash, end to end (issue 22's target: ≤ 20 ms for 1,000 tickets). A daemon of
# DIR/ccached gets a TGT and N service tickets (a throwaway test KDC, scripts/testkdc.sh, MIT kinit
# and kvno through its socket); a second open file of its state memfd is taken through
# /proc/PID/fd (as the door's duplicate would hold it); the daemon is killed with SIGKILL; then a
# new daemon is started with --state-fd on that file, and the time from its exec until it answers
# a KCM NOOP is taken, against the same for a fresh daemon with nothing to restore. Rounds
# alternate; medians are printed, with `klist` proof that every ticket came back. Root only (the
# memfd of a non-dumpable process). A measurement, not a test: it asserts nothing but the restore.
#
#   scripts/restore-time.sh --bin DIR [--tickets N] [--rounds R]
set -uo pipefail

PROG=${0##*/}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
BIN=
TICKETS=1000
ROUNDS=5
while [ $# -gt 0 ]; do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --tickets) TICKETS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[ -x "$BIN/ccached" ] || { echo "$PROG: no executable $BIN/ccached" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "$PROG: needs root (it opens a non-dumpable daemon's memfd)" >&2; exit 2; }
BIN=$(cd "$BIN" && pwd)

WORK=$(mktemp -d /tmp/ccached-restore-time.XXXXXX)
cleanup() {
    "$ROOT_DIR/scripts/testkdc.sh" stop "$WORK/kdc" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
"$ROOT_DIR/scripts/testkdc.sh" start "$WORK/kdc" --services "$TICKETS" >"$WORK/kdc.log" 2>&1 ||
    { echo "$PROG: the test KDC did not start; see $WORK/kdc.log" >&2; exit 1; }

WORK="$WORK" BIN="$BIN" TICKETS="$TICKETS" ROUNDS="$ROUNDS" python3 - <<'EOF'
import os, signal, socket, statistics, subprocess, sys, time

work, ccached = os.environ["WORK"], os.environ["BIN"] + "/ccached"
tickets, rounds = int(os.environ["TICKETS"]), int(os.environ["ROUNDS"])
log = open(work + "/ccached.log", "ab")
NOOP = b"\x00\x00\x00\x04\x02\x00\x00\x00"  # length 4, version 2.0, opcode 0

def start(path, args=(), pass_fds=()):
    """Exec ccached on PATH; returns (process, seconds from exec to a NOOP answered)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([ccached, "--socket", path, *args], stdout=subprocess.DEVNULL, stderr=log,
                         pass_fds=pass_fds)
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.sendall(NOOP)
            reply = s.recv(64)
            s.close()
            if len(reply) >= 8:
                return p, time.perf_counter() - t0
        except OSError:
            s.close()
        if p.poll() is not None:
            sys.exit(f"ccached exited ({p.returncode}); see {work}/ccached.log")
        time.sleep(0.0002)

def krb5(path, *command, stdin=None):
    conf = f"{work}/krb5-{os.path.basename(os.path.dirname(path))}.conf"
    with open(conf, "w") as f:
        f.write(f"[libdefaults]\n    kcm_socket = {path}\n")
    env = dict(os.environ, KRB5_CONFIG=f"{conf}:{work}/kdc/krb5.conf", KRB5CCNAME="KCM:")
    return subprocess.run(command, input=stdin, env=env, capture_output=True, text=True, check=True).stdout

def memfd_of(pid):
    for fd in os.listdir(f"/proc/{pid}/fd"):
        if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/memfd:ccached-state"):
            return os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
    sys.exit(f"daemon {pid} holds no ccached-state memfd")

restored, fresh = [], []
for r in range(rounds):
    path = f"{work}/r{r}/socket"
    os.makedirs(os.path.dirname(path))
    first, _ = start(path)
    krb5(path, "kinit", "alice", stdin="pw-alice\n")
    krb5(path, "kvno", *[f"svc{i}/localhost" for i in range(1, tickets + 1)])
    before = krb5(path, "klist").count("@CCACHED.TEST\n")
    state = memfd_of(first.pid)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    os.unlink(path)
    second, seconds = start(path, ["--state-fd", str(state)], pass_fds=(state,))
    os.close(state)
    after = krb5(path, "klist").count("@CCACHED.TEST\n")
    second.terminate()
    second.wait()
    if after != before or before < tickets + 1:
        sys.exit(f"round {r}: {before} credentials before the kill, {after} after the restore")
    restored.append(seconds)
    empty = f"{work}/e{r}/socket"
    os.makedirs(os.path.dirname(empty))
    p, seconds = start(empty)
    p.terminate()
    p.wait()
    fresh.append(seconds)
    print(f"round {r + 1}: {after - 1} credentials (every one) restored; exec to first answer "
          f"{restored[-1] * 1000:.2f} ms restoring, {fresh[-1] * 1000:.2f} ms fresh", flush=True)

load = open("/proc/loadavg").read().split()[:3]
print(f"median of {rounds}: {statistics.median(restored) * 1000:.2f} ms restoring {tickets + 1} tickets, "
      f"{statistics.median(fresh) * 1000:.2f} ms fresh; added by the restore "
      f"{(statistics.median(restored) - statistics.median(fresh)) * 1000:.2f} ms (load average {' '.join(load)})")
EOF
