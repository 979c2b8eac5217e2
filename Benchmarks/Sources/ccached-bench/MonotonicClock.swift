import Glibc
import SystemCalls

/// Nanoseconds on CLOCK_MONOTONIC, which every process on the machine shares: a parent can hand a
/// start instant to its workers and they all agree on it. The bench's resolution and sleeps, on
/// the system-call layer's clock.
extension MonotonicClock {
    static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Sleeps until `instant` (a value of ``nanoseconds()``).
    static func sleep(until instant: UInt64) {
        while true {
            let current = nanoseconds()
            guard current < instant else { return }
            let wait = instant - current
            var request = timespec(tv_sec: Int(wait / 1_000_000_000), tv_nsec: Int(wait % 1_000_000_000))
            _ = nanosleep(&request, nil)
        }
    }

    /// Sleeps for `microseconds`.
    static func sleep(microseconds: UInt64) {
        sleep(until: nanoseconds() + microseconds * 1000)
    }
}
