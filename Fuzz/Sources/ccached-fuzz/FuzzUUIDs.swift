import CredentialStore
import KCM

/// Lets an input name a UUID the store issued. The store's UUIDs start with a random 64-bit prefix
/// chosen per store, which no input could guess; so in GET_CACHE_BY_UUID and GET_CRED_BY_UUID a UUID
/// whose first eight bytes are zero is read as an index — the n-th cache, or the n-th credential of
/// the named cache (from 0, wrapping) — and replaced by that UUID before the request is answered.
/// The store never issues such a UUID itself (its prefix is odd), so no real request is changed.
enum FuzzUUIDs {
    static func resolvingIndexes(in body: [UInt8], store: CredentialStore) -> [UInt8] {
        guard body.count >= 4 else { return body }
        switch KCMOpcode(rawValue: UInt16(body[2]) << 8 | UInt16(body[3])) {
        case .getCacheByUUID:
            return replacingIndex(in: body, at: 4, with: store.cacheUUIDs)
        case .getCredByUUID:
            guard let end = body[4...].firstIndex(of: 0) else { return body }
            let name = KCMCacheName(bytes: Array(body[4..<end]))
            guard let cache = try? store.cache(named: name) else { return body }
            return replacingIndex(in: body, at: end + 1, with: cache.credentials.uuids)
        default:
            return body
        }
    }

    private static func replacingIndex(in body: [UInt8], at offset: Int, with uuids: [KCMUUID]) -> [UInt8] {
        guard !uuids.isEmpty, body.count >= offset + 16, body[offset..<offset + 8].allSatisfy({ $0 == 0 }) else {
            return body
        }
        let index = body[offset + 8..<offset + 16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let uuid = uuids[Int(index % UInt64(uuids.count))]
        var writer = KCMWriter(capacity: 16)
        writer.write(uuid)
        var result = body
        result.replaceSubrange(offset..<offset + 16, with: writer.bytes)
        return result
    }
}
