import KCM

/// One credential cache in the session's daemon (CCAPI's ccache): a name and the context to
/// reach it. Cheap to create; every method is one or a few requests.
public struct CCache: Sendable {
    public let context: CCacheContext
    public let name: KCMCacheName

    /// The cache's default principal; ``CCacheClientError/daemon(_:operation:)`` with
    /// `KRB5_FCC_NOFILE` when the cache does not exist.
    public func principal() throws(CCacheClientError) -> KCMPrincipal {
        var reader = KCMReader(try context.call(.getPrincipal(name: name), operation: "read the principal of \(name)"))
        do {
            return try KCMPrincipal.read(from: &reader)
        } catch {
            throw .malformedReply(operation: "read the principal of \(name)")
        }
    }

    /// Whether the cache exists.
    public func exists() throws(CCacheClientError) -> Bool {
        let (status, _) = try context.rawCall(.getPrincipal(name: name))
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
        let (status, payload) = try context.rawCall(.getCredList(name: name))
        if status == .ccNoSupp { return try credentialsByUUID() }
        guard status == .success else { throw .daemon(status, operation: "list credentials of \(name)") }
        var reader = KCMReader(payload)
        do {
            let count = try reader.readCount(field: "credential", minimumItemSize: 4)
            var result: [KCMCredential] = []
            result.reserveCapacity(count)
            for _ in 0..<count {
                result.append(try KCMCredential(parsing: reader.bytes, range: try reader.readDataRange()))
            }
            return result
        } catch {
            throw .malformedReply(operation: "list credentials of \(name)")
        }
    }

    private func credentialsByUUID() throws(CCacheClientError) -> [KCMCredential] {
        var reader = KCMReader(try context.call(.getCredUUIDList(name: name), operation: "list credentials of \(name)"))
        var result: [KCMCredential] = []
        while reader.remaining >= 16, let uuid = try? reader.readUUID() {
            let (status, payload) = try context.rawCall(.getCredByUUID(name: name, uuid: uuid))
            if status == .ccEnd { continue }
            guard status == .success else { throw .daemon(status, operation: "read a credential of \(name)") }
            guard let credential = try? KCMCredential(parsing: payload) else {
                throw .malformedReply(operation: "read a credential of \(name)")
            }
            result.append(credential)
        }
        return result
    }

    /// The first credential matching `template` under `flags`, or nil.
    public func retrieve(flags: KCMMatchFlags, template: KCMMatchTemplate) throws(CCacheClientError) -> KCMCredential? {
        let (status, payload) = try context.rawCall(.retrieve(name: name, flags: flags, template: template))
        if status == .ccNotFound || status == .ccEnd { return nil }
        guard status == .success else { throw .daemon(status, operation: "look up a credential in \(name)") }
        guard let credential = try? KCMCredential(parsing: payload) else {
            throw .malformedReply(operation: "look up a credential in \(name)")
        }
        return credential
    }

    /// Removes every credential matching `template` under `flags`.
    public func removeCredentials(flags: KCMMatchFlags, template: KCMMatchTemplate) throws(CCacheClientError) {
        _ = try context.call(.removeCred(name: name, flags: flags, template: template), operation: "remove credentials from \(name)")
    }

    /// The KDC time offset the cache records.
    public func kdcOffset() throws(CCacheClientError) -> Int32 {
        var reader = KCMReader(try context.call(.getKDCOffset(name: name), operation: "read the KDC offset of \(name)"))
        guard let offset = try? reader.readInt32() else { throw .malformedReply(operation: "read the KDC offset") }
        return offset
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
