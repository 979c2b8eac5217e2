/// One decoded KCM request: one case per opcode, with its arguments.
public enum KCMRequest: Sendable {
    case noop
    case genNew
    case initialize(name: KCMCacheName, principal: KCMPrincipal)
    case destroy(name: KCMCacheName)
    case store(name: KCMCacheName, credential: KCMCredential)
    case retrieve(name: KCMCacheName, flags: KCMMatchFlags, template: KCMMatchTemplate)
    case getPrincipal(name: KCMCacheName)
    case getCredUUIDList(name: KCMCacheName)
    case getCredByUUID(name: KCMCacheName, uuid: KCMUUID)
    case removeCred(name: KCMCacheName, flags: KCMMatchFlags, template: KCMMatchTemplate)
    case setFlags(name: KCMCacheName, flags: UInt32)
    case moveCache(from: KCMCacheName, to: KCMCacheName)
    case getCacheUUIDList
    case getCacheByUUID(uuid: KCMUUID)
    case getDefaultCache
    case setDefaultCache(name: KCMCacheName)
    case getKDCOffset(name: KCMCacheName)
    case setKDCOffset(name: KCMCacheName, offset: Int32)
    case getCredList(name: KCMCacheName)
    case replace(name: KCMCacheName, kdcOffset: Int32, principal: KCMPrincipal, credentials: [KCMCredential])
    /// ccached's own: the daemon's state.
    case daemonStatus
    /// ccached's own: the changes after a counter, once there are some or the timeout passed.
    case watch(KCMWatch.Request)
    /// ccached's own: renew one cache's (or every cache's) renewable tickets now.
    case renew(KCMRenew.Request)
    /// ccached's own: the renewal worker's state and each cache's next and last renewal.
    case renewalState
    /// ccached's own: stop the daemon (it answers with its pid first).
    case stop
    /// ccached's own: count one more login session using the daemon.
    case attachSession
    /// ccached's own: count one fewer; at none the daemon wipes and stops.
    case detachSession
    /// An opcode this daemon does not implement (answered with ``KCMStatus/fccInternal``).
    case unsupported(opcode: UInt16)

    /// The protocol version every client sends.
    public static let versionMajor: UInt8 = 2
    public static let versionMinor: UInt8 = 0

    /// The opcode this request carries (nil for an unknown one).
    public var opcode: KCMOpcode? {
        switch self {
        case .noop: .noop
        case .genNew: .genNew
        case .initialize: .initialize
        case .destroy: .destroy
        case .store: .store
        case .retrieve: .retrieve
        case .getPrincipal: .getPrincipal
        case .getCredUUIDList: .getCredUUIDList
        case .getCredByUUID: .getCredByUUID
        case .removeCred: .removeCred
        case .setFlags: .setFlags
        case .moveCache: .moveCache
        case .getCacheUUIDList: .getCacheUUIDList
        case .getCacheByUUID: .getCacheByUUID
        case .getDefaultCache: .getDefaultCache
        case .setDefaultCache: .setDefaultCache
        case .getKDCOffset: .getKDCOffset
        case .setKDCOffset: .setKDCOffset
        case .getCredList: .getCredList
        case .replace: .replace
        case .daemonStatus: .daemonStatus
        case .watch: .watch
        case .renew: .renew
        case .renewalState: .renewalState
        case .stop: .stop
        case .attachSession: .attachSession
        case .detachSession: .detachSession
        case .unsupported(let raw): KCMOpcode(rawValue: raw)
        }
    }

    /// Reads the version and opcode at the start of a request body. Returns the raw opcode.
    public static func readHeader(from reader: inout KCMReader) throws(KCMDecodingError) -> UInt16 {
        let major = try reader.readUInt8()
        let minor = try reader.readUInt8()
        guard major == versionMajor else { throw .unsupportedVersion(major: major, minor: minor) }
        return try reader.readUInt16()
    }

    /// Decodes a request body (everything after the length word). Trailing bytes are ignored.
    public init(decoding body: [UInt8]) throws(KCMDecodingError) {
        self = try KCMDecodedRequest(decoding: body).request.get()
    }

    /// Decodes the arguments of a request whose header (version, opcode `raw`) `reader` has read.
    init(opcode raw: UInt16, reading reader: inout KCMReader) throws(KCMDecodingError) {
        guard let opcode = KCMOpcode(rawValue: raw) else {
            self = .unsupported(opcode: raw)
            return
        }
        switch opcode {
        case .noop: self = .noop
        case .genNew: self = .genNew
        case .initialize:
            self = .initialize(name: try reader.readName(), principal: try KCMPrincipal.read(from: &reader))
        case .destroy: self = .destroy(name: try reader.readName())
        case .store: self = .store(name: try reader.readName(), credential: try KCMCredential.read(from: &reader))
        case .retrieve:
            self = .retrieve(
                name: try reader.readName(), flags: KCMMatchFlags(rawValue: try reader.readUInt32()),
                template: try KCMMatchTemplate.read(from: &reader))
        case .getPrincipal: self = .getPrincipal(name: try reader.readName())
        case .getCredUUIDList: self = .getCredUUIDList(name: try reader.readName())
        case .getCredByUUID: self = .getCredByUUID(name: try reader.readName(), uuid: try reader.readUUID())
        case .removeCred:
            self = .removeCred(
                name: try reader.readName(), flags: KCMMatchFlags.fromRemoveCredWord(try reader.readUInt32()),
                template: try KCMMatchTemplate.read(from: &reader))
        case .setFlags: self = .setFlags(name: try reader.readName(), flags: try reader.readUInt32())
        case .moveCache: self = .moveCache(from: try reader.readName(), to: try reader.readName())
        case .getCacheUUIDList: self = .getCacheUUIDList
        case .getCacheByUUID: self = .getCacheByUUID(uuid: try reader.readUUID())
        case .getDefaultCache: self = .getDefaultCache
        case .setDefaultCache: self = .setDefaultCache(name: try reader.readName())
        case .getKDCOffset: self = .getKDCOffset(name: try reader.readName())
        case .setKDCOffset: self = .setKDCOffset(name: try reader.readName(), offset: try reader.readInt32())
        case .getCredList: self = .getCredList(name: try reader.readName())
        case .replace:
            let name = try reader.readName()
            let offset = try reader.readInt32()
            let principal = try KCMPrincipal.read(from: &reader)
            let count = try reader.readCount(field: "credential", minimumItemSize: 4)
            var credentials: [KCMCredential] = []
            credentials.reserveCapacity(count)
            for _ in 0..<count {
                let range = try reader.readDataRange()
                credentials.append(try KCMCredential(parsing: reader.bytes, range: range))
            }
            self = .replace(name: name, kdcOffset: offset, principal: principal, credentials: credentials)
        case .daemonStatus: self = .daemonStatus
        case .watch: self = .watch(try KCMWatch.Request.read(from: &reader))
        case .renew: self = .renew(try KCMRenew.Request.read(from: &reader))
        case .renewalState: self = .renewalState
        case .stop: self = .stop
        case .attachSession: self = .attachSession
        case .detachSession: self = .detachSession
        case .getName, .resolve, .chown, .chmod, .getInitialTicket, .getTicket, .addNTLMCred, .haveNTLMCred,
            .delNTLMCred, .doNTLMAuth, .getNTLMUserList:
            self = .unsupported(opcode: raw)
        }
    }

    /// Encodes the request body (version, opcode, arguments), as a client sends it after the length word.
    public func encodedBody() -> [UInt8] {
        var writer = KCMWriter()
        writer.write(Self.versionMajor)
        writer.write(Self.versionMinor)
        switch self {
        case .unsupported(let raw): writer.write(raw)
        default: writer.write(opcode!.rawValue)
        }
        switch self {
        case .noop, .genNew, .getCacheUUIDList, .getDefaultCache, .daemonStatus, .renewalState, .stop, .attachSession,
            .detachSession, .unsupported:
            break
        case .watch(let request): request.write(to: &writer)
        case .renew(let request): request.write(to: &writer)
        case .initialize(let name, let principal):
            writer.write(name)
            principal.write(to: &writer)
        case .destroy(let name), .getPrincipal(let name), .getCredUUIDList(let name), .setDefaultCache(let name),
            .getKDCOffset(let name), .getCredList(let name):
            writer.write(name)
        case .store(let name, let credential):
            writer.write(name)
            writer.writeBytes(credential.bytes)
        case .retrieve(let name, let flags, let template), .removeCred(let name, let flags, let template):
            writer.write(name)
            writer.write(flags.rawValue)
            template.write(to: &writer)
        case .getCredByUUID(let name, let uuid):
            writer.write(name)
            writer.write(uuid)
        case .setFlags(let name, let flags):
            writer.write(name)
            writer.write(flags)
        case .moveCache(let from, let to):
            writer.write(from)
            writer.write(to)
        case .getCacheByUUID(let uuid): writer.write(uuid)
        case .setKDCOffset(let name, let offset):
            writer.write(name)
            writer.write(offset)
        case .replace(let name, let offset, let principal, let credentials):
            writer.write(name)
            writer.write(offset)
            principal.write(to: &writer)
            writer.write(UInt32(truncatingIfNeeded: credentials.count))
            for credential in credentials { writer.writeData(credential.bytes) }
        }
        return writer.bytes
    }

    /// The whole frame: `u32 length` and the body.
    public func encodedFrame() -> [UInt8] {
        let body = encodedBody()
        var writer = KCMWriter(capacity: body.count + 4)
        writer.write(UInt32(truncatingIfNeeded: body.count))
        writer.writeBytes(body)
        return writer.bytes
    }
}
