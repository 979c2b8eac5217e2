import KCM
import SecureMemory

extension CredentialStore {
    /// What ``replaceRenewed(cacheUUID:credentialUUID:original:renewed:)`` did.
    public enum RenewalReplacement: Equatable, Sendable {
        /// The renewed credential took the old one's place (same UUID, same position).
        case replaced
        /// The cache was destroyed while the renewal ran; nothing changed.
        case cacheGone
        /// The credential was removed or replaced by the user while the renewal ran; nothing changed.
        case credentialSuperseded
        /// The renewed credential names another client or server than the original; refused.
        case mismatch
    }

    /// Puts a renewed ticket in place of exactly the credential it renews: the same UUID and position
    /// in its cache, the cache's name, UUID, principal and the collection's default unchanged.
    ///
    /// Nothing changes unless the cache still exists and still holds `original` byte for byte under
    /// `credentialUUID`: a renewal that finishes after a `kinit` never overwrites the newer ticket.
    public func replaceRenewed(
        cacheUUID: KCMUUID, credentialUUID: KCMUUID, original: KCMCredential, renewed: KCMCredential
    ) throws(CredentialStoreError) -> RenewalReplacement {
        guard let name = try? cacheName(uuid: cacheUUID), let cache = try? self.cache(named: name) else {
            return .cacheGone
        }
        guard let entry = cache.credentials.entry(uuid: credentialUUID), entry.credential.bytes == original.bytes else {
            return .credentialSuperseded
        }
        guard renewed.clientKey.bytesEqual(original.clientKey), renewed.serverKey.bytesEqual(original.serverKey) else {
            return .mismatch
        }
        let growth = renewed.bytes.count - original.bytes.count
        guard credentialBytes + growth <= limits.maximumCredentialBytes else {
            throw .limitReached(.credentialBytes, limit: limits.maximumCredentialBytes)
        }
        // Rebuilt in order with every UUID kept: a client walking the UUID list meanwhile sees the
        // same credentials, one of them newer. Renewals are rare, so O(n) here costs nothing.
        var list = CredentialList()
        // swift-format-ignore: ReplaceForEachWithForLoop
        cache.credentials.forEach { entry in
            list.append(entry.uuid == credentialUUID ? renewed : entry.credential, uuid: entry.uuid)
        }
        cache.credentials = list
        journal.record(.credentialsRenewed, name)
        return .replaced
    }
}
