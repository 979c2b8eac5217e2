# shellcheck shell=bash
# Sourced by the door's benchmark scripts (bench-door.sh, bench-first-connection*.sh,
# bench-door-memory.sh, bench-login-booted.sh); all but the last run their door in a private mount
# namespace.

# namespace_processes NAME...: the pids of processes called NAME (pgrep -x patterns, joined with
# |) whose mount namespace is this shell's: what a door started in the private /run, never anyone
# else's.
namespace_processes() {
    local ns pid pattern
    ns=$(readlink /proc/self/ns/mnt)
    pattern=$(IFS='|'; echo "$*")
    for pid in $(pgrep -x "$pattern" || true); do
        [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "$pid"
    done
}

# stop_private_door DOOR DIR: stops the door (by pid; none when empty) and the daemons it started
# in this namespace, unmounts the private /run and removes DIR.
stop_private_door() {
    local pid
    [ -n "$1" ] && kill "$1" 2>/dev/null
    for pid in $(namespace_processes ccached); do kill "$pid" 2>/dev/null; done
    umount -l /run 2>/dev/null
    rm -rf "$2"
}

# ms_stats: reads samples in milliseconds, one a line, and prints "N MEDIAN P90 MIN MAX" (the
# figures with two decimals).
ms_stats() {
    sort -g | awk '
        { v[NR] = $1 }
        END {
            n = NR
            median = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%d %.2f %.2f %.2f %.2f\n", n, median, v[int(0.9 * n + 0.999999)], v[1], v[n]
        }'
}

# summarize_ms KIND DOOR_FIRST_MS: reads samples in milliseconds, one a line, and prints their
# median, p90, min and max with the load average, then the machine-readable line
# "KIND sessions=N median_ms=… p90_ms=… min_ms=… max_ms=… door_first_ms=…".
summarize_ms() {
    local s
    read -r -a s <<<"$(ms_stats)"
    echo "  median ${s[1]}  p90 ${s[2]}  min ${s[3]}  max ${s[4]} (load average $(cut -d' ' -f1-3 /proc/loadavg); target ≤ 15 ms)"
    echo "$1 sessions=${s[0]} median_ms=${s[1]} p90_ms=${s[2]} min_ms=${s[3]} max_ms=${s[4]} door_first_ms=$2"
}
