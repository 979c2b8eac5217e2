/// The payload of ccached's CCACHED_RENEWAL_STATE opcode (0x5003): the renewal worker's state and,
/// per cache, when its next renewal is due, when the last one happened and the last error — what
/// `ccachectl status` and `ccachectl list -v` show (see `Docs/protocol.md`). The request has no
/// arguments.
public struct KCMRenewalState: Hashable, Sendable {
    /// The opcode's value, for the lead's `KCMOpcode` case.
    public static let opcode: UInt16 = 0x5003
    public static let version: UInt32 = 1

    /// `u8 enabled`, `u8 busy` (a renewal is talking to a KDC now), `u32 queued`, `u64 renewed`
    /// (since start), `u64 failed` (since start).
    /// Encodable for `ccachectl status --json`, whose `"renewal"` object has these field names.
    public struct Worker: Hashable, Sendable, Encodable {
        public var enabled: Bool
        public var busy: Bool
        public var queued: UInt32
        public var renewed: UInt64
        public var failed: UInt64

        public init(enabled: Bool, busy: Bool = false, queued: UInt32 = 0, renewed: UInt64 = 0, failed: UInt64 = 0) {
            self.enabled = enabled
            self.busy = busy
            self.queued = queued
            self.renewed = renewed
            self.failed = failed
        }
    }

    /// `name`, `u64 next due` (Unix seconds; 0 = nothing due), `u64 last renewal` (0 = never), `u32
    /// consecutive failures`, `data last error` (UTF-8, empty = none), `data note` (why nothing is
    /// due, such as "renewable lifetime reached"; empty = none).
    public struct Cache: Hashable, Sendable {
        public var cacheName: KCMCacheName
        public var nextDue: UInt64
        public var lastRenewal: UInt64
        public var consecutiveFailures: UInt32
        public var lastError: String
        public var note: String

        public init(
            cacheName: KCMCacheName, nextDue: UInt64 = 0, lastRenewal: UInt64 = 0, consecutiveFailures: UInt32 = 0,
            lastError: String = "", note: String = ""
        ) {
            self.cacheName = cacheName
            self.nextDue = nextDue
            self.lastRenewal = lastRenewal
            self.consecutiveFailures = consecutiveFailures
            self.lastError = lastError
            self.note = note
        }

        static let minimumSize = 1 + 8 + 8 + 4 + 4 + 4
    }

    public var worker: Worker
    public var caches: [Cache]

    public init(worker: Worker, caches: [Cache] = []) {
        self.worker = worker
        self.caches = caches
    }

    /// `u32 version` (1), the ``Worker`` fields, `u32 count`, then `count` ``Cache`` entries.
    public func write(to writer: inout KCMWriter) {
        writer.write(Self.version)
        writer.write(UInt8(worker.enabled ? 1 : 0))
        writer.write(UInt8(worker.busy ? 1 : 0))
        writer.write(worker.queued)
        KCMWord64.write(worker.renewed, to: &writer)
        KCMWord64.write(worker.failed, to: &writer)
        writer.write(UInt32(truncatingIfNeeded: caches.count))
        for cache in caches {
            writer.write(cache.cacheName)
            KCMWord64.write(cache.nextDue, to: &writer)
            KCMWord64.write(cache.lastRenewal, to: &writer)
            writer.write(cache.consecutiveFailures)
            writer.writeData(Array(cache.lastError.utf8))
            writer.writeData(Array(cache.note.utf8))
        }
    }

    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMRenewalState {
        let version = try reader.readUInt32()
        guard version >= 1 else { throw .invalidValue(field: "renewal state version", value: version) }
        let enabled = try reader.readUInt8()
        let busy = try reader.readUInt8()
        guard enabled <= 1, busy <= 1 else { throw .invalidValue(field: "renewal worker flag", value: 2) }
        let queued = try reader.readUInt32()
        let renewed = try KCMWord64.read(from: &reader)
        let failed = try KCMWord64.read(from: &reader)
        let worker = Worker(enabled: enabled == 1, busy: busy == 1, queued: queued, renewed: renewed, failed: failed)
        let count = try reader.readCount(field: "renewal cache", minimumItemSize: Cache.minimumSize)
        var caches: [Cache] = []
        caches.reserveCapacity(count)
        for _ in 0..<count {
            let name = try reader.readName()
            let nextDue = try KCMWord64.read(from: &reader)
            let lastRenewal = try KCMWord64.read(from: &reader)
            let failures = try reader.readUInt32()
            let lastError = String(decoding: try reader.readData(), as: UTF8.self)
            let note = String(decoding: try reader.readData(), as: UTF8.self)
            caches.append(
                Cache(
                    cacheName: name, nextDue: nextDue, lastRenewal: lastRenewal, consecutiveFailures: failures,
                    lastError: lastError, note: note))
        }
        return KCMRenewalState(worker: worker, caches: caches)
    }
}
