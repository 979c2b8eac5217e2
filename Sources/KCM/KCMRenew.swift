/// The payloads of ccached's CCACHED_RENEW opcode (0x5002): renew the renewable tickets of one
/// cache, or of every cache, now, and say per cache what happened (see `Docs/protocol.md`).
public enum KCMRenew {
    /// The opcode's value, for the lead's `KCMOpcode` case.
    public static let opcode: UInt16 = 0x5002

    /// `name` (NUL-terminated): the cache, or the empty name for every cache.
    public struct Request: Hashable, Sendable {
        /// nil = every cache.
        public var cacheName: KCMCacheName?

        public init(cacheName: KCMCacheName? = nil) { self.cacheName = cacheName }

        public func write(to writer: inout KCMWriter) {
            writer.write(cacheName ?? KCMCacheName(bytes: []))
        }

        public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> Request {
            let name = try reader.readName()
            return Request(cacheName: name.bytes.isEmpty ? nil : name)
        }
    }

    /// What happened to one cache.
    public struct Outcome: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Every renewable ticket of the cache was renewed.
        public static let renewed = Outcome(rawValue: 0)
        /// The cache holds no ticket that can be renewed; ``CacheResult/message`` says why.
        public static let nothingToRenew = Outcome(rawValue: 1)
        /// At least one renewal failed; ``CacheResult/message`` carries the KDC's or libkrb5's error.
        public static let failed = Outcome(rawValue: 2)

        public var description: String {
            switch rawValue {
            case 0: "renewed"
            case 1: "nothing to renew"
            case 2: "failed"
            default: "outcome-\(rawValue)"
            }
        }
    }

    /// `name`, `u8 outcome`, `u32 renewed` (tickets), `u32 failed` (tickets), `u32 endtime` (the
    /// latest end time of the cache's renewed tickets, Unix seconds; 0 = none renewed), `data
    /// message` (UTF-8; empty when there is nothing to say).
    public struct CacheResult: Hashable, Sendable {
        public var cacheName: KCMCacheName
        public var outcome: Outcome
        public var renewedCount: UInt32
        public var failedCount: UInt32
        public var endtime: UInt32
        public var message: String

        public init(
            cacheName: KCMCacheName, outcome: Outcome, renewedCount: UInt32 = 0, failedCount: UInt32 = 0,
            endtime: UInt32 = 0, message: String = ""
        ) {
            self.cacheName = cacheName
            self.outcome = outcome
            self.renewedCount = renewedCount
            self.failedCount = failedCount
            self.endtime = endtime
            self.message = message
        }

        /// The smallest encoding: empty name's NUL, outcome, three words, an empty message.
        static let minimumSize = 1 + 1 + 12 + 4

        public func write(to writer: inout KCMWriter) {
            writer.write(cacheName)
            writer.write(outcome.rawValue)
            writer.write(renewedCount)
            writer.write(failedCount)
            writer.write(endtime)
            writer.writeData(Array(message.utf8))
        }

        public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> CacheResult {
            let name = try reader.readName()
            let outcome = Outcome(rawValue: try reader.readUInt8())
            let renewed = try reader.readUInt32()
            let failed = try reader.readUInt32()
            let endtime = try reader.readUInt32()
            let message = String(decoding: try reader.readData(), as: UTF8.self)
            return CacheResult(
                cacheName: name, outcome: outcome, renewedCount: renewed, failedCount: failed, endtime: endtime,
                message: message)
        }
    }

    /// `u32 count`, then `count` ``CacheResult``s in the collection's order.
    public struct Reply: Hashable, Sendable {
        public var results: [CacheResult]

        public init(results: [CacheResult]) { self.results = results }

        public func write(to writer: inout KCMWriter) {
            writer.write(UInt32(truncatingIfNeeded: results.count))
            for result in results { result.write(to: &writer) }
        }

        public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> Reply {
            let count = try reader.readCount(field: "renew result", minimumItemSize: CacheResult.minimumSize)
            var results: [CacheResult] = []
            results.reserveCapacity(count)
            for _ in 0..<count { results.append(try CacheResult.read(from: &reader)) }
            return Reply(results: results)
        }
    }
}
