#!/usr/bin/env bash
# The door's memory under many sessions (issue 21: "flat under 10,000 connections from 100
# sessions"): SESSIONS audit sessions (jobs, as cron or at make them) of USERS test users, each
# routed by ccached-door to a daemon of its own, connect through the door in waves; the door's
# VmRSS, Pss and private memory (/proc/PID/status, /proc/PID/smaps_rollup), threads and open
# descriptors are read after the warm-up, after each wave and at the end.
#
#   scripts/bench-door-memory.sh [--bin DIR] [--bench FILE] [--sessions N] [--users N]
#                                [--waves N] [--connections N] [--warmup N] [--start-together]
#
# DIR holds ccached and ccached-door (default .build/release; `make release` puts them in
# .build/x86_64-unknown-linux-gnu/release). FILE is ccached-bench (default
# .build/bench/release/ccached-bench, `make bench-build`). Each wave, every session's process runs
# `ccached-bench connect SOCKET --connections N --requests 1` (connect, GET_DEFAULT_CACHE, close; N
# times), all sessions at once; the defaults, 5 waves of 20 connections from each of 100 sessions
# of 10 users, make 10,000 connections. The warm-up (WARMUP connections per session, default 20,
# not counted) starts the 100 daemons, the first session alone, then one of each other user, then
# the rest (--start-together: all at once); the script checks that exactly SESSIONS daemons, one
# per audit session, answered.
#
# Root only (the door is root). Runs in a private mount namespace with a temporary directory bound
# over /run and an overlay over /etc whose /etc/passwd and /etc/group add the test users, so the
# host's /run, users and any other door are untouched. Without logind (none in a private
# /run), the door's rule (Docs/architecture.md) gives a process with an audit session of its own a
# daemon of its own; each session here is a shell that wrote its user's uid to
# /proc/self/loginuid (as pam_loginuid does) and then runs as that user, holding the session open
# across the waves. Stops only what it started: the sessions' processes, the door and the daemons
# in its own mount namespace, each by pid. The door inherits this script's environment (e.g.
# MALLOC_ARENA_MAX=1, to compare allocator settings). The last line is machine-readable:
#   door-memory rss_start_kib=… rss_end_kib=… growth_kib=… sessions=… connections=…
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=$repo/.build/release
bench=$repo/.build/bench/release/ccached-bench
sessions=100
users=10
waves=5
connections=20
warmup=20
together=
usage="usage: $0 [--bin DIR] [--bench FILE] [--sessions N] [--users N] [--waves N] [--connections N] [--warmup N] [--start-together]"
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$(cd "$2" && pwd); shift 2 ;;
        --bench) bench=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --sessions) sessions=$2; shift 2 ;;
        --users) users=$2; shift 2 ;;
        --waves) waves=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --start-together) together=1; shift ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
for number in "$sessions" "$users" "$waves" "$connections" "$warmup"; do
    [[ $number =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
    echo "bench-door-memory: NOT RUN: needs root (ccached-door runs as root; audit sessions, mount namespace)" >&2
    exit 1
fi
for program in ccached ccached-door; do
    [ -x "$bin/$program" ] || { echo "bench-door-memory: $bin/$program is missing (make release)" >&2; exit 1; }
done
[ -x "$bench" ] || { echo "bench-door-memory: $bench is missing (make bench-build)" >&2; exit 1; }
for tool in unshare setpriv; do
    command -v "$tool" >/dev/null || { echo "bench-door-memory: $tool is missing" >&2; exit 1; }
done
# Each session gets a daemon of its own: the door's per-uid cap (16) must leave room for them.
per_user=$(((sessions + users - 1) / users))
if [ "$per_user" -gt 16 ]; then
    echo "bench-door-memory: $per_user sessions per user is over the door's cap of 16 daemons per uid: raise --users" >&2
    exit 2
fi
# A new audit session: a child writes a login uid (allowed while none is set, else it takes
# CAP_AUDIT_CONTROL and a kernel that lets a login uid change).
if ! sh -c 'echo 31001 >/proc/self/loginuid' 2>/dev/null; then
    echo "bench-door-memory: NOT RUN: cannot make an audit session here (writing /proc/self/loginuid failed)" >&2
    exit 1
fi

if [ -z "${CCACHED_DOOR_MEMORY_INSIDE:-}" ]; then
    exec unshare --mount --propagation private env CCACHED_DOOR_MEMORY_INSIDE=1 "$0" --bin "$bin" \
        --bench "$bench" --sessions "$sessions" --users "$users" --waves "$waves" \
        --connections "$connections" --warmup "$warmup" ${together:+--start-together}
fi

# ---- inside the private mount namespace from here on ----
T=$(mktemp -d /tmp/ccached-door-memory.XXXXXX)
chmod 0755 "$T"
mkdir -m 0755 "$T/run"
mkdir -m 1777 "$T/sync"
door=
holders=()
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
# The pids of the programs this run started that are still there: ccached, ccached-door and
# ccached-bench processes in this mount namespace (this run's own: only what it started is in it).
ours() { namespace_processes ccached ccached-door ccached-bench; }
# The session daemons: the ccached processes in this mount namespace.
daemons() { namespace_processes ccached; }
cleanup() {
    # To the end whatever fails here (a process that already ended, say).
    set +e
    local pid left
    touch "$T/sync/stop" 2>/dev/null
    for pid in "${holders[@]}"; do kill "$pid" 2>/dev/null; done
    [ -n "$door" ] && kill "$door" 2>/dev/null
    for pid in $(daemons); do kill "$pid" 2>/dev/null; done
    for pid in "${holders[@]}" ${door:+"$door"}; do wait "$pid" 2>/dev/null; done
    for _ in $(seq 1 100); do
        left=$(ours)
        [ -z "$left" ] && break
        sleep 0.05
    done
    if [ -n "$left" ]; then
        echo "bench-door-memory: still running after the end, killed: $(echo "$left" | xargs)" >&2
        for pid in $left; do kill -9 "$pid" 2>/dev/null; done
    fi
    umount -l /run /etc 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The world: a private /run and the test users (uids 31001…), nothing else. The users go into
# /etc/passwd and /etc/group of an overlay over /etc: a copy bound over the file itself would be
# detached the moment the host's file is replaced (useradd, or another test, renames a new one in).
mount --bind "$T/run" /run
mkdir "$T/etc" "$T/etc-work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/etc,workdir=$T/etc-work" /etc
for u in $(seq 1 "$users"); do
    uid=$((31000 + u))
    name=doormem$u
    if getent passwd "$uid" >/dev/null || getent passwd "$name" >/dev/null; then
        echo "bench-door-memory: uid $uid or user $name exists already on this host" >&2
        exit 1
    fi
    echo "$name:x:$uid:$uid::/nonexistent:/bin/sh" >>/etc/passwd
    echo "$name:x:$uid:" >>/etc/group
done

"$bin/ccached-door" --ccached "$bin/ccached" --log-level warning >"$T/door.log" 2>&1 &
door=$!
for _ in $(seq 1 200); do
    [ -S /run/.heim_org.h5l.kcm-socket ] && break
    kill -0 "$door" 2>/dev/null || break
    sleep 0.05
done
[ -S /run/.heim_org.h5l.kcm-socket ] || { echo "bench-door-memory: the door did not come up:" >&2; cat "$T/door.log" >&2; exit 1; }

# memory: "rss pss private threads fds" of the door now (KiB, KiB, KiB, count, count).
memory() {
    local rss threads pss private fds
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$door/status")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$door/status")
    read -r pss private < <(awk '/^Pss:/ {p=$2} /^Private_(Clean|Dirty):/ {v+=$2} END {print p, v}' \
        "/proc/$door/smaps_rollup")
    fds=$(find "/proc/$door/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$rss $pss $private $threads $fds"
}
# row LABEL CONNECTIONS: a line of the table, the door's memory now.
row() {
    local figures
    figures=$(memory)
    # shellcheck disable=SC2086 # five numbers, one word each
    printf '%-10s %12s %9s %9s %9s %8s %6s\n' "$1" "$2" $figures
    echo "$1 $figures" >>"$T/rows"
}

# The sessions: each a shell with an audit session of its own (it writes its user's uid to
# /proc/self/loginuid, then runs as that user), which runs one `ccached-bench connect` per step
# (step 0: the warm-up) when told to, all sessions at once, and stays until the end.
cat >"$T/session.sh" <<'EOF'
#!/bin/bash
# session.sh INDEX SYNC BENCH WAVES WARMUP CONNECTIONS
index=$1 sync=$2 bench=$3 waves=$4 warmup=$5 connections=$6
for step in $(seq 0 "$waves"); do
    while [ ! -e "$sync/go.$step" ] && [ ! -e "$sync/go.$step.$index" ]; do
        [ -e "$sync/stop" ] && exit 0
        sleep 0.05
    done
    count=$connections
    [ "$step" -eq 0 ] && count=$warmup
    outcome=failed
    "$bench" connect /run/.heim_org.h5l.kcm-socket --connections "$count" --requests 1 >"$sync/out.$index.$step" 2>&1 &&
        outcome=ok
    # Renamed into place: whoever sees the file sees its whole content.
    echo "$outcome" >"$sync/outcome.$index.$step"
    mv "$sync/outcome.$index.$step" "$sync/done.$index.$step"
done
while [ ! -e "$sync/stop" ]; do sleep 0.2; done
EOF
chmod 0755 "$T/session.sh"
for i in $(seq 1 "$sessions"); do
    uid=$((31000 + (i - 1) % users + 1))
    # echo is the shell's builtin: the shell itself writes its loginuid, then execs.
    sh -c 'echo "$1" >/proc/self/loginuid && shift && exec "$@"' sh "$uid" \
        setpriv --reuid="$uid" --regid="$uid" --init-groups \
        env -i PATH=/usr/bin:/bin HOME=/nonexistent \
        "$T/session.sh" "$i" "$T/sync" "$bench" "$waves" "$warmup" "$connections" </dev/null >/dev/null 2>"$T/sync/err.$i" &
    holders+=($!)
done

# step N [FIRST LAST]: runs step N in sessions FIRST to LAST (default: all) at once and waits for
# them; says how many failed.
step() {
    local n=$1 first=${2:-1} last=${3:-$sessions} i failed=0 started
    if [ "$first" -eq 1 ] && [ "$last" -eq "$sessions" ]; then
        touch "$T/sync/go.$n"
    else
        for i in $(seq "$first" "$last"); do touch "$T/sync/go.$n.$i"; done
    fi
    started=$(date +%s)
    for i in $(seq "$first" "$last"); do
        while [ ! -e "$T/sync/done.$i.$n" ]; do
            if ! kill -0 "${holders[i - 1]}" 2>/dev/null; then
                echo "bench-door-memory: session $i ended before step $n: $(cat "$T/sync/err.$i" 2>/dev/null)" >&2
                exit 1
            fi
            if [ $(($(date +%s) - started)) -gt 300 ]; then
                echo "bench-door-memory: session $i did not finish step $n in 300 s: $(cat "$T/sync/err.$i" 2>/dev/null)" >&2
                exit 1
            fi
            sleep 0.05
        done
        if [ "$(cat "$T/sync/done.$i.$n")" != ok ]; then
            failed=$((failed + 1))
            [ "$failed" -le 3 ] && echo "bench-door-memory: session $i, step $n: $(cat "$T/sync/out.$i.$n")" >&2
        fi
    done
    if [ "$failed" -gt 0 ]; then
        echo "bench-door-memory: $failed session(s) failed in step $n (door log: $(tail -3 "$T/door.log"))" >&2
        exit 1
    fi
}

echo "door memory under $sessions sessions of $users users: $waves waves of $connections connections per session;" \
    "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# connections: counted so far (the warm-up's own in parentheses); private: Private_Clean + Private_Dirty.
printf '%-10s %12s %9s %9s %9s %8s %6s\n' "after" "connections" "RSS KiB" "Pss KiB" "private" "threads" "fds"
row started 0
if [ -n "$together" ]; then
    step 0
else
    # The first connections of a uid's sessions at the same moment can meet the door making that
    # uid's /run/ccached/UID (made root's 0700, then given to the user: another routing thread
    # that looks in between refuses it and closes its connection; the same for /run/ccached
    # itself). So the first session alone, then one of each other user, then the rest.
    # --start-together shows it.
    step 0 1 1
    [ "$users" -gt 1 ] && step 0 2 "$((users < sessions ? users : sessions))"
    [ "$sessions" -gt "$users" ] && step 0 "$((users + 1))" "$sessions"
fi
# The warm-up started one daemon per session: check that each session really has its own.
count=0
keys=
for _ in $(seq 1 100); do
    count=$(daemons | wc -l)
    [ "$count" -ge "$sessions" ] && break
    sleep 0.05
done
for pid in $(daemons); do
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -o -- '--audit-session [0-9]*'
done | sort -u >"$T/audit-sessions"
keys=$(wc -l <"$T/audit-sessions")
if [ "$count" -ne "$sessions" ] || [ "$keys" -ne "$sessions" ]; then
    echo "bench-door-memory: expected $sessions daemons for $sessions audit sessions, found $count daemons for $keys audit sessions" >&2
    exit 1
fi
sleep 1
row warm-up "($((sessions * warmup)))"
total=0
for wave in $(seq 1 "$waves"); do
    step "$wave"
    total=$((total + sessions * connections))
    sleep 1
    row "wave $wave" "$total"
done
# Past the door's sweep (2 s) and the idle routing threads' parking (10 s).
sleep 12
row end "$total"
if [ "$(daemons | wc -l)" -ne "$sessions" ]; then
    echo "bench-door-memory: the number of daemons changed during the waves: $(daemons | wc -l), not $sessions" >&2
    exit 1
fi
p50s=$(cat "$T/sync"/out.*.[1-9]* | awk '{print $2}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
echo "(one connection, $sessions clients at once: median of the sessions' per-wave p50 $p50s µs; $count daemons, one per audit session)"
awk -v sessions="$sessions" -v total="$total" '
    $1 == "warm-up" {start = $2}
    $1 == "end" {end = $2}
    END {printf "door-memory rss_start_kib=%d rss_end_kib=%d growth_kib=%d sessions=%d connections=%d\n",
        start, end, end - start, sessions, total}' "$T/rows"
