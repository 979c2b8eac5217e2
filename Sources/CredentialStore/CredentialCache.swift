import KCM

/// One named credential cache: its default principal, credentials and KDC time offset.
///
/// A reference type so that the store mutates a cache in place, never copying its credential list.
/// Not thread-safe: the ``CredentialStore`` that owns it is used by one thread at a time.
public final class CredentialCache {
    public let name: KCMCacheName
    public let uuid: KCMUUID
    public var principal: KCMPrincipal {
        didSet { principalCost = principal.storageCost }
    }
    /// ``KCMPrincipal/storageCost`` of the principal, kept so totals need not walk its components.
    public private(set) var principalCost: Int
    public var credentials = CredentialList()
    /// Seconds to add to the local clock, as the client last set it.
    public var kdcOffset: Int32 = 0
    /// When a purge first found this cache without tickets (config entries do not count); a later
    /// purge removes it once that is longer ago than the grace. Cleared when it holds tickets again.
    var ticketlessSince: UInt32?
    /// When a client last used the cache, as the store's use counter (``CredentialStore``): its
    /// creation, INITIALIZE, STORE, REPLACE, RETRIEVE, becoming the default, being a MOVE_CACHE
    /// destination. Listing and reading it (`klist -A` walks every cache) do not count. The cache a
    /// destroyed default falls back to is the one with the largest.
    public internal(set) var lastUse: UInt64 = 0

    init(name: KCMCacheName, uuid: KCMUUID, principal: KCMPrincipal) {
        self.name = name
        self.uuid = uuid
        self.principal = principal
        principalCost = principal.storageCost
    }

    /// What the cache itself costs beyond its credentials: the object, its entries in the store's
    /// indexes (by name, by UUID, creation order), the name twice (key and field) and the principal.
    public var recordBytes: Int { Self.recordOverhead + 2 * name.bytes.count + principalCost }

    /// The fixed part of ``recordBytes``.
    public static let recordOverhead = 256

    /// What a cache named `name` with `principal` would cost before any credential is stored.
    public static func recordBytes(name: KCMCacheName, principal: KCMPrincipal) -> Int {
        recordOverhead + 2 * name.bytes.count + principal.storageCost
    }
}
