/// The payload of ccached's own CCACHED_STATUS opcode (0x5000): what `ccachectl status` shows.
///
/// All integers are big-endian. The payload is 172 bytes (version 4): the daemon's totals (44 bytes,
/// which were all of version 1; no daemon that wrote version 1 was ever released, so it is not read)
///
/// | offset | field |
/// |---|---|
/// | 0 | `u32 version` (4; a version 2 payload ends after the limits, a version 3 one after offset 160) |
/// | 4 | `u32 pid` |
/// | 8 | `u32 owner uid` |
/// | 12 | `u64 started` (Unix seconds) |
/// | 20 | `u32 caches` |
/// | 24 | `u32 credentials` |
/// | 28 | `u64 credential bytes` |
/// | 36 | `u32 open connections` |
/// | 40 | `u32 idle timeout` (seconds, 0 = never) |
///
/// then ``Limits``, 116 bytes, one group per limit (its value, the usage the fields above do not
/// already give, and how often it refused something since the daemon started), then the memory that
/// holds credential bytes against `RLIMIT_MEMLOCK`:
///
/// | offset | field |
/// |---|---|
/// | 44 | `u32 --max-request-bytes` |
/// | 48 | `u32 largest request body accepted` (bytes) |
/// | 52 | `u64 requests refused as oversized` |
/// | 60 | `u32 --max-caches` |
/// | 64 | `u64 requests refused at --max-caches` |
/// | 72 | `u32 --max-credentials-per-cache` |
/// | 76 | `u32 credentials in the fullest cache` |
/// | 80 | `u64 requests refused at --max-credentials-per-cache` |
/// | 88 | `u64 --max-credential-bytes` |
/// | 96 | `u64 requests refused at --max-credential-bytes` |
/// | 104 | `u32 --max-connections` |
/// | 108 | `u64 connections refused at --max-connections` |
/// | 116 | `u32 --request-timeout` (seconds, 0 = none) |
/// | 120 | `u64 connections closed at --request-timeout` |
/// | 128 | `u64 bytes mapped for credentials` |
/// | 136 | `u64 of those, bytes locked in RAM` |
/// | 144 | `u64 RLIMIT_MEMLOCK` (bytes; all ones = unlimited) |
/// | 152 | `u64 mappings left unlocked` (the limit was reached) |
/// | 160 | `u32 login sessions attached` (CCACHED_ATTACH; version 3) |
/// | 164 | `u32 memory kind` (``MemoryKind``: 0 locked anonymous memory, 1 `memfd_secret`; version 4) |
/// | 168 | `u32 state file kept` (0 or 1; version 4) |
///
/// A reader takes version 2 and any later version, reading the fields it knows and leaving the rest
/// unread: later versions may only append.
public struct KCMDaemonStatus: Hashable, Sendable {
    public var pid: UInt32
    public var ownerUID: UInt32
    public var startedAt: UInt64
    public var caches: UInt32
    public var credentials: UInt32
    public var credentialBytes: UInt64
    public var connections: UInt32
    public var idleTimeout: UInt32
    /// The daemon's limits, usage against them and refusals.
    public var limits: Limits
    /// Login sessions attached to the daemon (CCACHED_ATTACH) and not yet detached; 0 from a
    /// version 2 daemon. (Version 3, offset 160.)
    public var attachedSessions: UInt32
    /// Which memory holds the credentials; ``MemoryKind/anonymous`` from a daemon before version 4.
    /// (Version 4, offset 164.)
    public var memoryKind: MemoryKind
    /// Whether the daemon keeps its store in a state file (Docs/state.md) that a daemon after a
    /// crash restores; nil from a daemon before version 4. (Version 4, offset 168.)
    public var keepsStateFile: Bool?

    /// The memory that holds the credential bytes (SecureArena's backing).
    public enum MemoryKind: Hashable, Sendable {
        /// Anonymous mappings, locked in RAM as `RLIMIT_MEMLOCK` allows (the default).
        case anonymous
        /// `memfd_secret` mappings: locked, and out of the kernel's direct map (`--secret-memory`).
        case secret
        /// A kind this reader does not know (a later daemon's).
        case other(UInt32)

        public init(rawValue: UInt32) {
            switch rawValue {
            case 0: self = .anonymous
            case 1: self = .secret
            default: self = .other(rawValue)
            }
        }

        public var rawValue: UInt32 {
            switch self {
            case .anonymous: 0
            case .secret: 1
            case .other(let value): value
            }
        }
    }

    /// Each limit the daemon enforces, the usage the version 1 fields do not already give, and how
    /// many requests or connections it refused since the daemon started.
    public struct Limits: Hashable, Sendable {
        public var maximumRequestBytes: UInt32
        /// The largest request body accepted so far (oversized ones are counted, not measured).
        public var largestRequestBytes: UInt32
        public var oversizedRequests: UInt64
        public var maximumCaches: UInt32
        public var cacheRefusals: UInt64
        public var maximumCredentialsPerCache: UInt32
        /// The credential count of the fullest cache now.
        public var largestCacheCredentials: UInt32
        public var credentialsPerCacheRefusals: UInt64
        public var maximumCredentialBytes: UInt64
        public var credentialBytesRefusals: UInt64
        public var maximumConnections: UInt32
        public var connectionRefusals: UInt64
        /// Seconds a request may take to arrive; 0 = no limit.
        public var requestTimeout: UInt32
        /// Connections closed because a request stayed incomplete for ``requestTimeout``.
        public var stalledRequests: UInt64
        /// Memory mapped for credential bytes, and how much of it is locked in RAM.
        public var credentialMemoryBytes: UInt64
        public var lockedMemoryBytes: UInt64
        /// The daemon's `RLIMIT_MEMLOCK` soft limit in bytes; `UInt64.max` when unlimited.
        public var memlockLimit: UInt64
        /// Mappings that could not be locked because of that limit (their credentials may be swapped).
        public var unlockedMappings: UInt64

        public init(
            maximumRequestBytes: UInt32, largestRequestBytes: UInt32 = 0, oversizedRequests: UInt64 = 0,
            maximumCaches: UInt32, cacheRefusals: UInt64 = 0,
            maximumCredentialsPerCache: UInt32, largestCacheCredentials: UInt32 = 0,
            credentialsPerCacheRefusals: UInt64 = 0,
            maximumCredentialBytes: UInt64, credentialBytesRefusals: UInt64 = 0,
            maximumConnections: UInt32, connectionRefusals: UInt64 = 0,
            requestTimeout: UInt32, stalledRequests: UInt64 = 0,
            credentialMemoryBytes: UInt64 = 0, lockedMemoryBytes: UInt64 = 0, memlockLimit: UInt64 = .max,
            unlockedMappings: UInt64 = 0
        ) {
            self.maximumRequestBytes = maximumRequestBytes
            self.largestRequestBytes = largestRequestBytes
            self.oversizedRequests = oversizedRequests
            self.maximumCaches = maximumCaches
            self.cacheRefusals = cacheRefusals
            self.maximumCredentialsPerCache = maximumCredentialsPerCache
            self.largestCacheCredentials = largestCacheCredentials
            self.credentialsPerCacheRefusals = credentialsPerCacheRefusals
            self.maximumCredentialBytes = maximumCredentialBytes
            self.credentialBytesRefusals = credentialBytesRefusals
            self.maximumConnections = maximumConnections
            self.connectionRefusals = connectionRefusals
            self.requestTimeout = requestTimeout
            self.stalledRequests = stalledRequests
            self.credentialMemoryBytes = credentialMemoryBytes
            self.lockedMemoryBytes = lockedMemoryBytes
            self.memlockLimit = memlockLimit
            self.unlockedMappings = unlockedMappings
        }

        func write(to writer: inout KCMWriter) {
            writer.write(maximumRequestBytes)
            writer.write(largestRequestBytes)
            KCMWord64.write(oversizedRequests, to: &writer)
            writer.write(maximumCaches)
            KCMWord64.write(cacheRefusals, to: &writer)
            writer.write(maximumCredentialsPerCache)
            writer.write(largestCacheCredentials)
            KCMWord64.write(credentialsPerCacheRefusals, to: &writer)
            KCMWord64.write(maximumCredentialBytes, to: &writer)
            KCMWord64.write(credentialBytesRefusals, to: &writer)
            writer.write(maximumConnections)
            KCMWord64.write(connectionRefusals, to: &writer)
            writer.write(requestTimeout)
            KCMWord64.write(stalledRequests, to: &writer)
            KCMWord64.write(credentialMemoryBytes, to: &writer)
            KCMWord64.write(lockedMemoryBytes, to: &writer)
            KCMWord64.write(memlockLimit, to: &writer)
            KCMWord64.write(unlockedMappings, to: &writer)
        }

        static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> Limits {
            // Named locals: the order of reads is the wire order, whatever the initialiser's is.
            let maximumRequestBytes = try reader.readUInt32()
            let largestRequestBytes = try reader.readUInt32()
            let oversizedRequests = try KCMWord64.read(from: &reader)
            let maximumCaches = try reader.readUInt32()
            let cacheRefusals = try KCMWord64.read(from: &reader)
            let maximumCredentialsPerCache = try reader.readUInt32()
            let largestCacheCredentials = try reader.readUInt32()
            let credentialsPerCacheRefusals = try KCMWord64.read(from: &reader)
            let maximumCredentialBytes = try KCMWord64.read(from: &reader)
            let credentialBytesRefusals = try KCMWord64.read(from: &reader)
            let maximumConnections = try reader.readUInt32()
            let connectionRefusals = try KCMWord64.read(from: &reader)
            let requestTimeout = try reader.readUInt32()
            let stalledRequests = try KCMWord64.read(from: &reader)
            let credentialMemoryBytes = try KCMWord64.read(from: &reader)
            let lockedMemoryBytes = try KCMWord64.read(from: &reader)
            let memlockLimit = try KCMWord64.read(from: &reader)
            let unlockedMappings = try KCMWord64.read(from: &reader)
            return Limits(
                maximumRequestBytes: maximumRequestBytes, largestRequestBytes: largestRequestBytes,
                oversizedRequests: oversizedRequests,
                maximumCaches: maximumCaches, cacheRefusals: cacheRefusals,
                maximumCredentialsPerCache: maximumCredentialsPerCache,
                largestCacheCredentials: largestCacheCredentials,
                credentialsPerCacheRefusals: credentialsPerCacheRefusals,
                maximumCredentialBytes: maximumCredentialBytes, credentialBytesRefusals: credentialBytesRefusals,
                maximumConnections: maximumConnections, connectionRefusals: connectionRefusals,
                requestTimeout: requestTimeout, stalledRequests: stalledRequests,
                credentialMemoryBytes: credentialMemoryBytes, lockedMemoryBytes: lockedMemoryBytes,
                memlockLimit: memlockLimit, unlockedMappings: unlockedMappings)
        }
    }

    public init(
        pid: UInt32, ownerUID: UInt32, startedAt: UInt64, caches: UInt32, credentials: UInt32,
        credentialBytes: UInt64, connections: UInt32, idleTimeout: UInt32, limits: Limits,
        attachedSessions: UInt32 = 0, memoryKind: MemoryKind = .anonymous, keepsStateFile: Bool? = nil
    ) {
        self.pid = pid
        self.ownerUID = ownerUID
        self.startedAt = startedAt
        self.caches = caches
        self.credentials = credentials
        self.credentialBytes = credentialBytes
        self.connections = connections
        self.idleTimeout = idleTimeout
        self.limits = limits
        self.attachedSessions = attachedSessions
        self.memoryKind = memoryKind
        self.keepsStateFile = keepsStateFile
    }

    /// The version this code writes.
    public static let version: UInt32 = 4
    /// The oldest version it reads.
    public static let oldestReadableVersion: UInt32 = 2
    /// The encoded size of this version.
    public static let encodedLength = 172

    public func write(to writer: inout KCMWriter) {
        writer.write(Self.version)
        writer.write(pid)
        writer.write(ownerUID)
        KCMWord64.write(startedAt, to: &writer)
        writer.write(caches)
        writer.write(credentials)
        KCMWord64.write(credentialBytes, to: &writer)
        writer.write(connections)
        writer.write(idleTimeout)
        limits.write(to: &writer)
        writer.write(attachedSessions)
        writer.write(memoryKind.rawValue)
        writer.write(UInt32(keepsStateFile == true ? 1 : 0))
    }

    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMDaemonStatus {
        let version = try reader.readUInt32()
        guard version >= Self.oldestReadableVersion else {
            throw .invalidValue(field: "status version", value: version)
        }
        let pid = try reader.readUInt32()
        let owner = try reader.readUInt32()
        let started = try KCMWord64.read(from: &reader)
        let caches = try reader.readUInt32()
        let credentials = try reader.readUInt32()
        let bytes = try KCMWord64.read(from: &reader)
        let connections = try reader.readUInt32()
        let idleTimeout = try reader.readUInt32()
        let limits = try Limits.read(from: &reader)
        let attached = version >= 3 ? try reader.readUInt32() : 0
        let memoryKind = version >= 4 ? MemoryKind(rawValue: try reader.readUInt32()) : .anonymous
        let keepsStateFile = version >= 4 ? try reader.readUInt32() != 0 : nil
        return KCMDaemonStatus(
            pid: pid, ownerUID: owner, startedAt: started, caches: caches, credentials: credentials,
            credentialBytes: bytes, connections: connections, idleTimeout: idleTimeout, limits: limits,
            attachedSessions: attached, memoryKind: memoryKind, keepsStateFile: keepsStateFile)
    }
}
