# shellcheck shell=bash
# Sourced by the door's benchmark scripts (bench-door.sh, bench-first-connection*.sh,
# bench-door-memory.sh), each of which runs its door in a private mount namespace.

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

# summarize_ms KIND DOOR_FIRST_MS: reads samples in milliseconds, one a line, and prints their
# median, p90, min and max with the load average, then the machine-readable line
# "KIND sessions=N median_ms=… p90_ms=… min_ms=… max_ms=… door_first_ms=…".
summarize_ms() {
    sort -n | awk -v kind="$1" -v door_first="$2" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
        { v[NR] = $1 }
        END {
            n = NR
            median = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            p90 = v[int(0.9 * n + 0.999999)]
            printf "  median %.2f  p90 %.2f  min %.2f  max %.2f (load average %s; target ≤ 15 ms)\n", median, p90, v[1], v[n], load
            printf "%s sessions=%d median_ms=%.2f p90_ms=%.2f min_ms=%.2f max_ms=%.2f door_first_ms=%s\n",
                kind, n, median, p90, v[1], v[n], door_first
        }'
}
