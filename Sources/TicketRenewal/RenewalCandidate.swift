import KCM

/// One stored ticket the daemon offers the scheduler: where it lives and its bytes, taken under the
/// store lock as a snapshot (the bytes are shared, not copied).
public struct RenewalCandidate: Sendable {
    public let cacheName: KCMCacheName
    public let cacheUUID: KCMUUID
    public let credentialUUID: KCMUUID
    public let credential: KCMCredential
    /// The cache's KDC time offset in seconds (local clock + offset = KDC clock).
    public var kdcOffset: Int32 = 0

    public var times: RenewalTimes { RenewalTimes(credential) }

    /// `now` on the local clock as the KDC's clock (the cache's offset applied).
    func kdcTime(_ now: UInt32) -> UInt32 {
        UInt32(clamping: Int64(now) + Int64(kdcOffset))
    }
}
