import SecureMemory

/// The payload of a successful reply: one case per shape a KCM reply takes. The daemon's
/// dispatcher returns one, ``write(to:)`` encodes it, and ``init(payload:for:)`` is the one reader
/// every client uses.
///
/// Error replies carry no payload, so they have no case: the status alone says what went wrong.
/// Credentials are carried as the stored values, so a GET_CRED_LIST reply refers to the secure
/// bytes the store holds and copies them only into the reply frame.
public enum KCMReply: Sendable {
    /// No payload: INITIALIZE, DESTROY, STORE, REMOVE_CRED, SET_FLAGS, MOVE_CACHE, SET_DEFAULT_CACHE,
    /// SET_KDC_OFFSET, REPLACE, NOOP.
    case empty
    /// A cache name: GEN_NEW, GET_CACHE_BY_UUID, GET_DEFAULT_CACHE.
    case name(KCMCacheName)
    /// GET_PRINCIPAL.
    case principal(KCMPrincipal)
    /// UUIDs back to back, without a count: GET_CRED_UUID_LIST, GET_CACHE_UUID_LIST.
    case uuids([KCMUUID])
    /// One credential, unframed: RETRIEVE, GET_CRED_BY_UUID.
    case credential(KCMCredential)
    /// `u32 count`, then each credential as `data`: GET_CRED_LIST.
    case credentialList([KCMCredential])
    /// GET_KDC_OFFSET.
    case kdcOffset(Int32)
    /// ccached's CCACHED_STATUS.
    case daemonStatus(KCMDaemonStatus)
    /// ccached's CCACHED_WATCH: the changes after the counter asked about (or none, or resync).
    case watch(KCMWatch.Reply)
    /// ccached's CCACHED_RENEW: per cache, what renewing now did.
    case renew(KCMRenew.Reply)
    /// ccached's CCACHED_RENEWAL_STATE.
    case renewalState(KCMRenewalState)
    /// ccached's CCACHED_STOP: the pid of the daemon that is stopping.
    case stopping(pid: UInt32)
    /// ccached's CCACHED_ATTACH and CCACHED_DETACH: the login sessions attached now.
    case attachedSessions(UInt32)

    /// The encoded payload's length in bytes, known before encoding (GET_CRED_LIST checks it
    /// against MIT's reply limit without building the reply).
    public var encodedLength: Int {
        switch self {
        case .empty: 0
        case .name(let name): name.bytes.count + 1
        case .principal(let principal): Self.length(of: principal)
        case .uuids(let uuids): 16 * uuids.count
        case .credential(let credential): credential.bytes.count
        case .credentialList(let credentials): 4 + credentials.reduce(0) { $0 + 4 + $1.bytes.count }
        case .kdcOffset: 4
        case .daemonStatus: KCMDaemonStatus.encodedLength
        case .stopping, .attachedSessions: 4
        case .watch, .renew, .renewalState: Self.length { write(to: &$0) }
        }
    }

    private static func length(of principal: KCMPrincipal) -> Int {
        length { principal.write(to: &$0) }
    }

    /// The length of what `write` writes (ccached's own small replies: encoded once to measure).
    private static func length(_ write: (inout KCMWriter) -> Void) -> Int {
        var writer = KCMWriter()
        write(&writer)
        return writer.count
    }

    /// Appends the payload.
    public func write(to writer: inout KCMWriter) {
        switch self {
        case .empty: break
        case .name(let name): writer.write(name)
        case .principal(let principal): principal.write(to: &writer)
        case .uuids(let uuids): for uuid in uuids { writer.write(uuid) }
        case .credential(let credential): writer.writeBytes(credential.bytes)
        case .credentialList(let credentials):
            writer.reserve(encodedLength)
            writer.write(UInt32(truncatingIfNeeded: credentials.count))
            for credential in credentials { writer.writeData(credential.bytes) }
        case .kdcOffset(let offset): writer.write(offset)
        case .daemonStatus(let status): status.write(to: &writer)
        case .stopping(let pid): writer.write(pid)
        case .attachedSessions(let count): writer.write(count)
        case .watch(let reply): reply.write(to: &writer)
        case .renew(let reply): reply.write(to: &writer)
        case .renewalState(let state): state.write(to: &writer)
        }
    }

    /// Reads the payload of a successful reply to `opcode`. Trailing bytes are ignored, as MIT does.
    /// Throws for an opcode ccached does not implement (Heimdal's GET_NAME, NTLM, …): no reply
    /// to one has a shape this reader knows.
    public init(payload: [UInt8], for opcode: KCMOpcode) throws(KCMDecodingError) {
        var reader = KCMReader(payload)
        switch opcode {
        case .genNew, .getCacheByUUID, .getDefaultCache:
            self = .name(try reader.readName())
        case .getPrincipal:
            self = .principal(try KCMPrincipal.read(from: &reader))
        case .getCredUUIDList, .getCacheUUIDList:
            var uuids: [KCMUUID] = []
            uuids.reserveCapacity(reader.remaining / 16)
            while reader.remaining >= 16 { uuids.append(try reader.readUUID()) }
            self = .uuids(uuids)
        case .retrieve, .getCredByUUID:
            self = .credential(try KCMCredential(parsing: payload))
        case .getCredList:
            let count = try reader.readCount(field: "credential", minimumItemSize: 4)
            var credentials: [KCMCredential] = []
            credentials.reserveCapacity(count)
            for _ in 0..<count {
                credentials.append(try KCMCredential(parsing: reader.bytes, range: try reader.readDataRange()))
            }
            self = .credentialList(credentials)
        case .getKDCOffset:
            self = .kdcOffset(try reader.readInt32())
        case .daemonStatus:
            self = .daemonStatus(try KCMDaemonStatus.read(from: &reader))
        case .stop:
            self = .stopping(pid: try reader.readUInt32())
        case .attachSession, .detachSession:
            self = .attachedSessions(try reader.readUInt32())
        case .watch:
            self = .watch(try KCMWatch.Reply.read(from: &reader))
        case .renew:
            self = .renew(try KCMRenew.Reply.read(from: &reader))
        case .renewalState:
            self = .renewalState(try KCMRenewalState.read(from: &reader))
        case .noop, .initialize, .destroy, .store, .removeCred, .setFlags, .moveCache, .setDefaultCache,
            .setKDCOffset, .replace:
            self = .empty
        case .getName, .resolve, .chown, .chmod, .getInitialTicket, .getTicket, .addNTLMCred, .haveNTLMCred,
            .delNTLMCred, .doNTLMAuth, .getNTLMUserList:
            // Heimdal's opcodes that ccached does not implement: no reply of theirs has a known shape.
            throw .unexpectedReply(expected: "a reply to an opcode ccached implements, not \(opcode)")
        }
    }
}

extension KCMReply {
    /// The cache name, or a decoding error for a reply of another shape.
    public func asName() throws(KCMDecodingError) -> KCMCacheName {
        guard case .name(let name) = self else { throw .unexpectedReply(expected: "a cache name") }
        return name
    }

    /// The principal, or a decoding error for a reply of another shape.
    public func asPrincipal() throws(KCMDecodingError) -> KCMPrincipal {
        guard case .principal(let principal) = self else { throw .unexpectedReply(expected: "a principal") }
        return principal
    }

    /// The UUIDs, or a decoding error for a reply of another shape.
    public func asUUIDs() throws(KCMDecodingError) -> [KCMUUID] {
        guard case .uuids(let uuids) = self else { throw .unexpectedReply(expected: "a UUID list") }
        return uuids
    }

    /// The credential, or a decoding error for a reply of another shape.
    public func asCredential() throws(KCMDecodingError) -> KCMCredential {
        guard case .credential(let credential) = self else { throw .unexpectedReply(expected: "a credential") }
        return credential
    }

    /// The credentials, or a decoding error for a reply of another shape.
    public func asCredentialList() throws(KCMDecodingError) -> [KCMCredential] {
        guard case .credentialList(let credentials) = self else {
            throw .unexpectedReply(expected: "a credential list")
        }
        return credentials
    }

    /// The KDC offset, or a decoding error for a reply of another shape.
    public func asKDCOffset() throws(KCMDecodingError) -> Int32 {
        guard case .kdcOffset(let offset) = self else { throw .unexpectedReply(expected: "a KDC offset") }
        return offset
    }

    /// The stopping daemon's pid, or a decoding error for a reply of another shape.
    public func asStoppingPID() throws(KCMDecodingError) -> UInt32 {
        guard case .stopping(let pid) = self else { throw .unexpectedReply(expected: "a stopping daemon's pid") }
        return pid
    }

    /// The number of attached login sessions, or a decoding error for a reply of another shape.
    public func asAttachedSessions() throws(KCMDecodingError) -> UInt32 {
        guard case .attachedSessions(let count) = self else { throw .unexpectedReply(expected: "a session count") }
        return count
    }

    /// The daemon status, or a decoding error for a reply of another shape.
    public func asDaemonStatus() throws(KCMDecodingError) -> KCMDaemonStatus {
        guard case .daemonStatus(let status) = self else { throw .unexpectedReply(expected: "a daemon status") }
        return status
    }

    /// The watch reply, or a decoding error for a reply of another shape.
    public func asWatchReply() throws(KCMDecodingError) -> KCMWatch.Reply {
        guard case .watch(let reply) = self else { throw .unexpectedReply(expected: "a watch reply") }
        return reply
    }

    /// The renew reply, or a decoding error for a reply of another shape.
    public func asRenewReply() throws(KCMDecodingError) -> KCMRenew.Reply {
        guard case .renew(let reply) = self else { throw .unexpectedReply(expected: "a renew reply") }
        return reply
    }

    /// The renewal state, or a decoding error for a reply of another shape.
    public func asRenewalState() throws(KCMDecodingError) -> KCMRenewalState {
        guard case .renewalState(let state) = self else { throw .unexpectedReply(expected: "a renewal state") }
        return state
    }
}
