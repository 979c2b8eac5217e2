import KCM

/// One cache's renewal state for display (`ccachectl list -v`, `--json`).
public struct CacheRenewalState: Hashable, Sendable {
    public var cacheName: KCMCacheName
    /// When the next renewal of one of its tickets is due (local clock, Unix seconds); nil = none.
    public var nextDue: UInt32?
    /// When a renewal of one of its tickets last succeeded and was stored; nil = never.
    public var lastRenewal: UInt32?
    /// The last failure's message, cleared by the next success.
    public var lastError: String?
    /// Failures in a row of its most troubled ticket.
    public var consecutiveFailures: Int
    /// Why nothing is due, such as "renewable lifetime reached"; nil when something is.
    public var note: String?

    public init(
        cacheName: KCMCacheName, nextDue: UInt32? = nil, lastRenewal: UInt32? = nil, lastError: String? = nil,
        consecutiveFailures: Int = 0, note: String? = nil
    ) {
        self.cacheName = cacheName
        self.nextDue = nextDue
        self.lastRenewal = lastRenewal
        self.lastError = lastError
        self.consecutiveFailures = consecutiveFailures
        self.note = note
    }

    /// The wire form of CCACHED_RENEWAL_STATE.
    public var wire: KCMRenewalState.Cache {
        KCMRenewalState.Cache(
            cacheName: cacheName, nextDue: UInt64(nextDue ?? 0), lastRenewal: UInt64(lastRenewal ?? 0),
            consecutiveFailures: UInt32(clamping: consecutiveFailures), lastError: lastError ?? "", note: note ?? "")
    }
}
