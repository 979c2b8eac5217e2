/// The payload of ccached's own CCACHED_STATUS opcode (0x5000): what `ccachectl status` shows.
///
/// Layout (all big-endian): `u32 version = 1`, `u32 pid`, `u32 owner uid`, `u64 started (Unix
/// seconds)`, `u32 caches`, `u32 credentials`, `u64 credential bytes`, `u32 open connections`,
/// `u32 idle timeout (seconds, 0 = never)`. Later versions may append fields; readers ignore them.
public struct KCMDaemonStatus: Hashable, Sendable {
    public var pid: UInt32
    public var ownerUID: UInt32
    public var startedAt: UInt64
    public var caches: UInt32
    public var credentials: UInt32
    public var credentialBytes: UInt64
    public var connections: UInt32
    public var idleTimeout: UInt32

    public init(
        pid: UInt32, ownerUID: UInt32, startedAt: UInt64, caches: UInt32, credentials: UInt32,
        credentialBytes: UInt64, connections: UInt32, idleTimeout: UInt32
    ) {
        self.pid = pid
        self.ownerUID = ownerUID
        self.startedAt = startedAt
        self.caches = caches
        self.credentials = credentials
        self.credentialBytes = credentialBytes
        self.connections = connections
        self.idleTimeout = idleTimeout
    }

    public static let version: UInt32 = 1

    public func write(to writer: inout KCMWriter) {
        writer.write(Self.version)
        writer.write(pid)
        writer.write(ownerUID)
        writer.write(UInt32(truncatingIfNeeded: startedAt >> 32))
        writer.write(UInt32(truncatingIfNeeded: startedAt))
        writer.write(caches)
        writer.write(credentials)
        writer.write(UInt32(truncatingIfNeeded: credentialBytes >> 32))
        writer.write(UInt32(truncatingIfNeeded: credentialBytes))
        writer.write(connections)
        writer.write(idleTimeout)
    }

    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMDaemonStatus {
        let version = try reader.readUInt32()
        guard version >= 1 else { throw .invalidValue(field: "status version", value: version) }
        let pid = try reader.readUInt32()
        let owner = try reader.readUInt32()
        let started = UInt64(try reader.readUInt32()) << 32 | UInt64(try reader.readUInt32())
        let caches = try reader.readUInt32()
        let credentials = try reader.readUInt32()
        let bytes = UInt64(try reader.readUInt32()) << 32 | UInt64(try reader.readUInt32())
        return KCMDaemonStatus(
            pid: pid, ownerUID: owner, startedAt: started, caches: caches, credentials: credentials,
            credentialBytes: bytes, connections: try reader.readUInt32(), idleTimeout: try reader.readUInt32())
    }
}
