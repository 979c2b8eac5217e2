import Glibc

/// `CLOCK_MONOTONIC`: time that never jumps, for timeouts and schedules. The one clock of every
/// module (a type named `Clock` would shadow Swift's protocol).
public enum MonotonicClock {
    /// Whole seconds since an arbitrary start.
    public static func seconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec)
    }

    /// Microseconds since the same start.
    public static func microseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// Milliseconds since the same start.
    public static func milliseconds() -> UInt64 { microseconds() / 1000 }
}
