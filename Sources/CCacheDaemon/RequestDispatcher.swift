import CredentialStore
import KCM
import SecureMemory

/// What became of one request, for logs: the raw opcode (when the header was readable), the status
/// sent, and why decoding failed if it did. Never carries credential bytes.
public struct RequestOutcome: Sendable, CustomStringConvertible {
    public var opcode: UInt16?
    public var status: KCMStatus
    public var problem: String?

    public var description: String {
        let name = opcode.map { KCMOpcode(rawValue: $0)?.description ?? "opcode \($0)" } ?? "unreadable request"
        return "\(name) -> \(status)" + (problem.map { " (\($0))" } ?? "")
    }
}

/// What the dispatcher reports about the daemon itself (CCACHED_STATUS): the facts and the limits
/// the daemon enforces outside the store, with their usage and refusal counts. The store's own
/// limits and counts come from the store.
public struct ServerFacts: Sendable {
    public var pid: UInt32
    public var startedAt: UInt64
    public var connections: UInt32
    public var idleTimeout: UInt32
    /// `--max-request-bytes`, the largest request body accepted so far, and how many were refused.
    public var maximumRequestLength: UInt32
    public var largestRequestLength: UInt32
    public var oversizedRequests: UInt64
    /// `--max-connections` and how many connections were closed at once for being over it.
    public var maximumConnections: UInt32
    public var refusedConnections: UInt64
    /// `--request-timeout` (0 = none) and how many connections were closed for a stalled request.
    public var requestTimeout: UInt32
    public var stalledRequests: UInt64
    /// The secure memory holding credential bytes (mapped, locked, mappings left unlocked) and the
    /// `RLIMIT_MEMLOCK` that bounds the locked part (`UInt64.max` = unlimited).
    public var credentialMemory: SecureArena.Statistics
    public var memlockLimit: UInt64

    public init(
        pid: UInt32 = 0, startedAt: UInt64 = 0, connections: UInt32 = 0, idleTimeout: UInt32 = 0,
        maximumRequestLength: UInt32 = DaemonConfiguration.defaultMaximumRequestLength,
        largestRequestLength: UInt32 = 0, oversizedRequests: UInt64 = 0,
        maximumConnections: UInt32 = UInt32(DaemonConfiguration.defaultMaximumConnections),
        refusedConnections: UInt64 = 0,
        requestTimeout: UInt32 = DaemonConfiguration.defaultRequestTimeout, stalledRequests: UInt64 = 0,
        credentialMemory: SecureArena.Statistics = SecureArena.Statistics(), memlockLimit: UInt64 = .max
    ) {
        self.pid = pid
        self.startedAt = startedAt
        self.connections = connections
        self.idleTimeout = idleTimeout
        self.maximumRequestLength = maximumRequestLength
        self.largestRequestLength = largestRequestLength
        self.oversizedRequests = oversizedRequests
        self.maximumConnections = maximumConnections
        self.refusedConnections = refusedConnections
        self.requestTimeout = requestTimeout
        self.stalledRequests = stalledRequests
        self.credentialMemory = credentialMemory
        self.memlockLimit = memlockLimit
    }
}

/// Turns one request body into one reply, applying it to the store. Pure: no I/O, no clock, no
/// locking (the caller holds the store's lock), so it is tested and fuzzed in-process.
public enum RequestDispatcher {
    /// Answers a complete request body. `reply` must be reset; on return it holds the whole frame.
    public static func respond(
        to body: [UInt8], authorized: Bool, store: CredentialStore,
        server: @autoclosure () -> ServerFacts = ServerFacts(),
        reply: inout KCMReplyWriter
    ) -> RequestOutcome {
        let opcode: UInt16? = body.count >= 4 ? UInt16(body[2]) << 8 | UInt16(body[3]) : nil
        guard authorized else {
            reply.finish(status: .fccPerm)
            return RequestOutcome(opcode: opcode, status: .fccPerm)
        }
        let request: KCMRequest
        do {
            request = try KCMRequest(decoding: body)
        } catch {
            reply.finish(status: .ccIO)
            return RequestOutcome(opcode: opcode, status: .ccIO, problem: error.description)
        }
        let status: KCMStatus
        var problem: String?
        do {
            status = try perform(request, store: store, server: server, reply: &reply)
        } catch {
            status = error.krb5Status
            problem = error.description
        }
        reply.finish(status: status)
        return RequestOutcome(opcode: opcode, status: status, problem: problem)
    }

    /// Answers a request that was over the size limit (its body was discarded unread).
    public static func respondToOversized(length: UInt32, limit: UInt32, reply: inout KCMReplyWriter)
        -> RequestOutcome
    {
        reply.finish(status: .ccNoMem)
        return RequestOutcome(
            opcode: nil, status: .ccNoMem,
            problem: "request of \(length) bytes exceeds the limit of \(limit) bytes (--max-request-bytes)")
    }

    /// Applies one request. Returns the status for outcomes that are not store errors.
    static func perform(
        _ request: KCMRequest, store: CredentialStore, server: () -> ServerFacts, reply: inout KCMReplyWriter
    ) throws(CredentialStoreError) -> KCMStatus {
        switch request {
        case .noop:
            break
        case .genNew:
            reply.writer.write(store.generateName())
        case .initialize(let name, let principal):
            try store.initialize(name, principal: principal)
        case .destroy(let name):
            try store.destroy(name)
        case .store(let name, let credential):
            try store.store(credential, in: name)
        case .retrieve(let name, let flags, let template):
            let credential = try store.retrieve(from: name, matching: CredentialMatcher(flags: flags, template: template))
            reply.writer.writeBytes(credential.bytes)
        case .getPrincipal(let name):
            try store.cache(named: name).principal.write(to: &reply.writer)
        case .getCredUUIDList(let name):
            try store.cache(named: name).credentials.forEach { reply.writer.write($0.uuid) }
        case .getCredByUUID(let name, let uuid):
            reply.writer.writeBytes(try store.credential(in: name, uuid: uuid).bytes)
        case .removeCred(let name, let flags, let template):
            try store.removeCredentials(from: name, matching: CredentialMatcher(flags: flags, template: template))
        case .setFlags(let name, _):
            _ = try store.cache(named: name)
        case .moveCache(let from, let to):
            try store.move(from: from, to: to)
        case .getCacheUUIDList:
            for uuid in store.cacheUUIDs { reply.writer.write(uuid) }
        case .getCacheByUUID(let uuid):
            reply.writer.write(try store.cacheName(uuid: uuid))
        case .getDefaultCache:
            reply.writer.write(store.defaultName)
        case .setDefaultCache(let name):
            try store.setDefault(name)
        case .getKDCOffset(let name):
            reply.writer.write(try store.cache(named: name).kdcOffset)
        case .setKDCOffset(let name, let offset):
            try store.cache(named: name).kdcOffset = offset
        case .getCredList(let name):
            let credentials = try store.cache(named: name).credentials
            // L = status word + count word + a length word and the bytes per credential.
            let replyLength = 8 + 4 * credentials.count + credentials.byteCount
            // Over MIT's reply limit: "not supported" makes MIT iterate by UUID instead.
            guard replyLength <= KCMReplyWriter.mitMaximumReplyLength else { return .ccNoSupp }
            reply.writer.reserve(replyLength)
            reply.writer.write(UInt32(truncatingIfNeeded: credentials.count))
            credentials.forEach { reply.writer.writeData($0.credential.bytes) }
        case .replace(let name, let kdcOffset, let principal, let credentials):
            try store.replace(name, principal: principal, kdcOffset: kdcOffset, credentials: credentials)
        case .daemonStatus:
            status(store: store, server: server()).write(to: &reply.writer)
        case .unsupported:
            return .fccInternal
        }
        return .success
    }

    /// The CCACHED_STATUS payload: the daemon's facts, and usage against every limit it enforces.
    static func status(store: CredentialStore, server: ServerFacts) -> KCMDaemonStatus {
        let limits = KCMDaemonStatus.Limits(
            maximumRequestBytes: server.maximumRequestLength, largestRequestBytes: server.largestRequestLength,
            oversizedRequests: server.oversizedRequests,
            maximumCaches: UInt32(clamping: store.limits.maximumCaches),
            cacheRefusals: UInt64(clamping: store.refusals.caches),
            maximumCredentialsPerCache: UInt32(clamping: store.limits.maximumCredentialsPerCache),
            largestCacheCredentials: UInt32(clamping: store.largestCacheCredentialCount),
            credentialsPerCacheRefusals: UInt64(clamping: store.refusals.credentialsPerCache),
            maximumCredentialBytes: UInt64(clamping: store.limits.maximumCredentialBytes),
            credentialBytesRefusals: UInt64(clamping: store.refusals.credentialBytes),
            maximumConnections: server.maximumConnections, connectionRefusals: server.refusedConnections,
            requestTimeout: server.requestTimeout, stalledRequests: server.stalledRequests,
            credentialMemoryBytes: UInt64(clamping: server.credentialMemory.mappedBytes),
            lockedMemoryBytes: UInt64(clamping: server.credentialMemory.lockedBytes),
            memlockLimit: server.memlockLimit, unlockedMappings: UInt64(clamping: server.credentialMemory.lockFailures))
        return KCMDaemonStatus(
            pid: server.pid, ownerUID: store.ownerUID, startedAt: server.startedAt,
            caches: UInt32(clamping: store.cacheCount), credentials: UInt32(clamping: store.credentialCount),
            credentialBytes: UInt64(store.credentialBytes), connections: server.connections,
            idleTimeout: server.idleTimeout, limits: limits)
    }
}
