import KCM

/// A fully expired cache the store destroyed to make room for a new one at the cache limit
/// (``CredentialStore/evictableCache(now:)``): what the daemon logs about it.
public struct CacheEviction: Sendable, Equatable {
    /// The evicted cache.
    public let name: KCMCacheName
    /// When its last ticket expired (seconds since the epoch).
    public let expiredAt: UInt32
    /// When it was evicted.
    public let now: UInt32

    /// The daemon's log line. The name is client-chosen: the daemon's log handler escapes it.
    public var logLine: String {
        "evicted cache \(name), whose tickets all expired \(now &- expiredAt) s ago, to make room for a new cache "
            + "at the cache limit (--max-caches)"
    }
}
