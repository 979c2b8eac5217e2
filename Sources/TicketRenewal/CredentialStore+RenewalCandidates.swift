import CredentialStore
import KCM

extension CredentialStore {
    /// The renewable tickets (RENEWABLE flag, not config entries) of every cache, or of the cache
    /// `name`, in the collection's order: the snapshot ``RenewalScheduler`` works from. Call it with
    /// the store lock held, then release the lock before ticking; the credentials' bytes are shared,
    /// not copied. O(credentials).
    public func renewalCandidates(in name: KCMCacheName? = nil) -> [RenewalCandidate] {
        var candidates: [RenewalCandidate] = []
        for uuid in cacheUUIDs {
            guard let cacheName = try? cacheName(uuid: uuid), name == nil || name == cacheName,
                let cache = try? cache(named: cacheName)
            else { continue }
            // swift-format-ignore: ReplaceForEachWithForLoop
            cache.credentials.forEach { entry in
                let credential = entry.credential
                guard credential.ticketFlags & RenewalTimes.renewableFlag != 0, !credential.isConfigEntry else {
                    return
                }
                candidates.append(
                    RenewalCandidate(
                        cacheName: cacheName, cacheUUID: uuid, credentialUUID: entry.uuid, credential: credential,
                        kdcOffset: cache.kdcOffset))
            }
        }
        return candidates
    }
}

extension RenewalResult {
    /// The daemon's `apply` for this store, with its lock held: a renewed ticket replaces exactly the
    /// one it renews (``CredentialStore/replaceRenewed(cacheUUID:credentialUUID:original:renewed:)``).
    /// Returns whether the store now holds it; false for every other outcome, for a cache or ticket
    /// that changed meanwhile, and when the byte limit refuses the renewed ticket.
    public func apply(to store: CredentialStore) -> Bool {
        guard case .renewed(let renewed) = outcome else { return false }
        let replaced = try? store.replaceRenewed(
            cacheUUID: candidate.cacheUUID, credentialUUID: candidate.credentialUUID, original: candidate.credential,
            renewed: renewed)
        return replaced == .replaced
    }
}
