import Glibc

/// Nanoseconds on CLOCK_MONOTONIC, which every process on the machine shares: a parent can hand a
/// start instant to its workers and they all agree on it.
enum MonotonicClock {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Sleeps until `instant` (a value of ``now()``).
    static func sleep(until instant: UInt64) {
        while true {
            let current = now()
            guard current < instant else { return }
            let wait = instant - current
            var request = timespec(tv_sec: Int(wait / 1_000_000_000), tv_nsec: Int(wait % 1_000_000_000))
            _ = nanosleep(&request, nil)
        }
    }

    /// Sleeps for `microseconds`.
    static func sleep(microseconds: UInt64) {
        sleep(until: now() + microseconds * 1000)
    }
}
