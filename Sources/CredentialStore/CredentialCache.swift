import KCM

/// One named credential cache: its default principal, credentials and KDC time offset.
///
/// A reference type so that the store mutates a cache in place, never copying its credential list.
/// Not thread-safe: the ``CredentialStore`` that owns it is used by one thread at a time.
public final class CredentialCache {
    public let name: KCMCacheName
    public let uuid: KCMUUID
    public var principal: KCMPrincipal
    public var credentials = CredentialList()
    /// Seconds to add to the local clock, as the client last set it.
    public var kdcOffset: Int32 = 0
    /// When a purge first found this cache without tickets (config entries do not count); a later
    /// purge removes it once that is longer ago than the grace. Cleared when it holds tickets again.
    var ticketlessSince: UInt32?

    init(name: KCMCacheName, uuid: KCMUUID, principal: KCMPrincipal) {
        self.name = name
        self.uuid = uuid
        self.principal = principal
    }
}
