import KCM

/// One credential cache in the session's daemon (CCAPI's ccache): a name and the context to
/// reach it. Cheap to create; every method is one or a few requests.
public struct CCache: Sendable {
    public let context: CCacheContext
    public let name: KCMCacheName

    /// The cache's default principal; ``CCacheClientError/daemon(_:operation:)`` with
    /// `KRB5_FCC_NOFILE` when the cache does not exist.
    public func principal() throws(CCacheClientError) -> KCMPrincipal {
        let operation = "read the principal of \(name)"
        return try decoded(context.call(.getPrincipal(name: name), operation: operation), operation: operation) {
            r throws(KCMDecodingError) in try r.asPrincipal()
        }
    }

    /// Whether the cache exists.
    public func exists() throws(CCacheClientError) -> Bool {
        let (status, _) = try context.answer(.getPrincipal(name: name), operation: "look up \(name)")
        switch status {
        case .success: return true
        case .fccNoFile: return false
        default: throw .daemon(status, operation: "look up \(name)")
        }
    }

    /// Creates or empties the cache for `principal`.
    public func initialize(principal: KCMPrincipal) throws(CCacheClientError) {
        _ = try context.call(.initialize(name: name, principal: principal), operation: "initialize \(name)")
    }

    /// Replaces the whole cache at once (creating it if needed).
    public func replace(principal: KCMPrincipal, credentials: [KCMCredential], kdcOffset: Int32 = 0)
        throws(CCacheClientError)
    {
        _ = try context.call(
            .replace(name: name, kdcOffset: kdcOffset, principal: principal, credentials: credentials),
            operation: "store credentials in \(name)")
    }

    /// Stores one credential (superseding one for the same client and server).
    public func store(_ credential: KCMCredential) throws(CCacheClientError) {
        _ = try context.call(.store(name: name, credential: credential), operation: "store a credential in \(name)")
    }

    /// Every credential in storage order (one request; by UUID when the cache is too large for one reply).
    public func credentials() throws(CCacheClientError) -> [KCMCredential] {
        let operation = "list credentials of \(name)"
        let (status, reply) = try context.answer(.getCredList(name: name), operation: operation)
        if status == .ccNoSupp { return try credentialsByUUID() }
        guard let reply else { throw .daemon(status, operation: operation) }
        return try decoded(reply, operation: operation) { r throws(KCMDecodingError) in try r.asCredentialList() }
    }

    private func credentialsByUUID() throws(CCacheClientError) -> [KCMCredential] {
        let operation = "list credentials of \(name)"
        let uuids = try decoded(context.call(.getCredUUIDList(name: name), operation: operation), operation: operation)
        { r throws(KCMDecodingError) in try r.asUUIDs() }
        var result: [KCMCredential] = []
        for uuid in uuids {
            let read = "read a credential of \(name)"
            let (status, reply) = try context.answer(.getCredByUUID(name: name, uuid: uuid), operation: read)
            if status == .ccEnd { continue }
            guard let reply else { throw .daemon(status, operation: read) }
            result.append(try decoded(reply, operation: read) { r throws(KCMDecodingError) in try r.asCredential() })
        }
        return result
    }

    /// The first credential matching `template` under `flags`, or nil.
    public func retrieve(flags: KCMMatchFlags, template: KCMMatchTemplate) throws(CCacheClientError) -> KCMCredential? {
        let operation = "look up a credential in \(name)"
        let (status, reply) = try context.answer(
            .retrieve(name: name, flags: flags, template: template), operation: operation)
        if status == .ccNotFound || status == .ccEnd { return nil }
        guard let reply else { throw .daemon(status, operation: operation) }
        return try decoded(reply, operation: operation) { r throws(KCMDecodingError) in try r.asCredential() }
    }

    /// Removes every credential matching `template` under `flags`.
    public func removeCredentials(flags: KCMMatchFlags, template: KCMMatchTemplate) throws(CCacheClientError) {
        _ = try context.call(
            .removeCred(name: name, flags: flags, template: template), operation: "remove credentials from \(name)")
    }

    /// The KDC time offset the cache records.
    public func kdcOffset() throws(CCacheClientError) -> Int32 {
        let operation = "read the KDC offset of \(name)"
        return try decoded(context.call(.getKDCOffset(name: name), operation: operation), operation: operation) {
            r throws(KCMDecodingError) in try r.asKDCOffset()
        }
    }

    public func setKDCOffset(_ offset: Int32) throws(CCacheClientError) {
        _ = try context.call(.setKDCOffset(name: name, offset: offset), operation: "set the KDC offset of \(name)")
    }

    /// Destroys the cache and every credential in it.
    public func destroy() throws(CCacheClientError) {
        _ = try context.call(.destroy(name: name), operation: "destroy \(name)")
    }

    /// Makes this cache the primary one.
    public func makeDefault() throws(CCacheClientError) {
        try context.setDefaultCache(name)
    }
}
