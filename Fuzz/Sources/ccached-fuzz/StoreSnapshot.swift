import CredentialStore
import KCM

/// Everything a client can observe of a store, read through its public API: to show that a request
/// that was refused (or answered with an error) changed nothing.
struct StoreSnapshot: Equatable, Sendable {
    struct Cache: Equatable, Sendable {
        var name: KCMCacheName
        var uuid: KCMUUID
        var principal: KCMPrincipal
        var kdcOffset: Int32
        var credentialUUIDs: [KCMUUID]
        var credentialBytes: Int
    }

    var defaultName: KCMCacheName
    var caches: [Cache]

    init(_ store: CredentialStore) {
        defaultName = store.defaultName
        caches = store.cacheUUIDs.compactMap { uuid in
            guard let name = try? store.cacheName(uuid: uuid), let cache = try? store.cache(named: name) else {
                // checkStore reports a listed UUID without a cache; here it simply shows as a change.
                return nil
            }
            return Cache(
                name: name, uuid: uuid, principal: cache.principal, kdcOffset: cache.kdcOffset,
                credentialUUIDs: cache.credentials.uuids, credentialBytes: cache.credentials.byteCount)
        }
    }
}
