/// The payloads of ccached's CCACHED_WATCH opcode (0x5001): wait until the collection changes after
/// a counter, or a timeout, and return what changed (see `Docs/protocol.md`).
public enum KCMWatch {
    /// The opcode's value, for the lead's `KCMOpcode` case.
    public static let opcode: UInt16 = 0x5001

    /// `u64 epoch` (0 = none known yet), `u64 after` (the counter last seen), `u32 timeout` (ms; 0 =
    /// answer at once).
    public struct Request: Hashable, Sendable {
        public var epoch: UInt64
        public var after: UInt64
        public var timeoutMilliseconds: UInt32

        public init(epoch: UInt64 = 0, after: UInt64 = 0, timeoutMilliseconds: UInt32 = 0) {
            self.epoch = epoch
            self.after = after
            self.timeoutMilliseconds = timeoutMilliseconds
        }

        public func write(to writer: inout KCMWriter) {
            KCMWord64.write(epoch, to: &writer)
            KCMWord64.write(after, to: &writer)
            writer.write(timeoutMilliseconds)
        }

        public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> Request {
            let epoch = try KCMWord64.read(from: &reader)
            let after = try KCMWord64.read(from: &reader)
            return Request(epoch: epoch, after: after, timeoutMilliseconds: try reader.readUInt32())
        }
    }

    /// `u32 version` (1), `u64 epoch`, `u64 next` (the counter to send as `after` next time), `u32
    /// flags` (``resyncFlag``), `u32 count`, then `count` ``KCMChangeEvent``s, oldest first.
    public struct Reply: Hashable, Sendable {
        public var epoch: UInt64
        public var next: UInt64
        /// The daemon no longer knows what happened after `after` (or it is another daemon's
        /// counter): read the whole collection again, then watch from ``next``.
        public var resync: Bool
        public var events: [KCMChangeEvent]

        public static let version: UInt32 = 1
        public static let resyncFlag: UInt32 = 1
        /// The smallest encoded event (counter, kind and an empty name's NUL), for count checks.
        static let minimumEventSize = 10

        public init(epoch: UInt64, next: UInt64, resync: Bool = false, events: [KCMChangeEvent] = []) {
            self.epoch = epoch
            self.next = next
            self.resync = resync
            self.events = events
        }

        public func write(to writer: inout KCMWriter) {
            writer.write(Self.version)
            KCMWord64.write(epoch, to: &writer)
            KCMWord64.write(next, to: &writer)
            writer.write(resync ? Self.resyncFlag : 0)
            writer.write(UInt32(truncatingIfNeeded: events.count))
            for event in events { event.write(to: &writer) }
        }

        /// Reads version 1 or later (later versions may only append to each part).
        public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> Reply {
            let version = try reader.readUInt32()
            guard version >= 1 else { throw .invalidValue(field: "watch reply version", value: version) }
            let epoch = try KCMWord64.read(from: &reader)
            let next = try KCMWord64.read(from: &reader)
            let flags = try reader.readUInt32()
            let count = try reader.readCount(field: "change event", minimumItemSize: minimumEventSize)
            var events: [KCMChangeEvent] = []
            events.reserveCapacity(count)
            for _ in 0..<count { events.append(try KCMChangeEvent.read(from: &reader)) }
            return Reply(epoch: epoch, next: next, resync: flags & resyncFlag != 0, events: events)
        }
    }
}
