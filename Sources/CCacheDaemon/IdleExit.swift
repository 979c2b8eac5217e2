/// When an unused daemon should exit: after `limit` seconds in a row with no connection and no
/// cache. Driven by ``tick(now:idle:)`` once a second; no clock or I/O of its own.
struct IdleExit {
    /// Seconds; 0 = never.
    let limit: UInt32
    private var idleSince: UInt64?

    init(limit: UInt32) { self.limit = limit }

    var isEnabled: Bool { limit > 0 }

    /// Notes whether the daemon is idle at `now` (monotonic seconds); returns true when it has been
    /// idle for the whole limit.
    mutating func tick(now: UInt64, idle: Bool) -> Bool {
        guard isEnabled, idle else {
            idleSince = nil
            return false
        }
        guard let since = idleSince else {
            idleSince = now
            return false
        }
        return now - since >= UInt64(limit)
    }
}
