/// When to purge expired tickets: every `interval` seconds, when purging is on (a grace above 0).
/// Driven by ``tick(now:)``; no clock or I/O of its own.
struct PurgeSchedule {
    /// Tickets expired longer ago than this are purged; 0 = never purge.
    let grace: UInt32
    let interval: UInt32
    private var next: UInt64

    init(grace: UInt32, interval: UInt32, now: UInt64) {
        self.grace = grace
        self.interval = max(1, interval)
        next = now + UInt64(self.interval)
    }

    var isEnabled: Bool { grace > 0 }

    /// Whether a purge is due at `now` (monotonic seconds); if so, the next one is scheduled.
    mutating func tick(now: UInt64) -> Bool {
        guard isEnabled, now >= next else { return false }
        next = now + UInt64(interval)
        return true
    }
}
