/// One change to a daemon's collection as CCACHED_WATCH reports it: the change counter, what
/// happened and to which cache. It never carries credential bytes.
///
/// Wire form (big-endian): `u64 counter`, `u8 kind`, `name` (NUL-terminated; for ``Kind/defaultSwitched``
/// the new default's name).
public struct KCMChangeEvent: Hashable, Sendable, CustomStringConvertible {
    /// What happened. A struct rather than an enum so that a reader keeps kinds a newer daemon adds.
    public struct Kind: RawRepresentable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        public static let cacheCreated = Kind(rawValue: 1)
        public static let cacheDestroyed = Kind(rawValue: 2)
        public static let defaultSwitched = Kind(rawValue: 3)
        public static let credentialsStored = Kind(rawValue: 4)
        public static let credentialsRemoved = Kind(rawValue: 5)
        public static let credentialsRenewed = Kind(rawValue: 6)
        public static let purged = Kind(rawValue: 7)

        /// The kinds this code knows, in wire order, each with the word `ccachectl watch` prints.
        private static let known: [(kind: Kind, word: String)] = [
            (.cacheCreated, "created"), (.cacheDestroyed, "destroyed"), (.defaultSwitched, "default"),
            (.credentialsStored, "stored"), (.credentialsRemoved, "removed"), (.credentialsRenewed, "renewed"),
            (.purged, "purged"),
        ]

        /// The kinds this code knows, in wire order.
        public static let allCases: [Kind] = known.map(\.kind)

        /// One word, as `ccachectl watch` prints it; `kind-N` for a kind this code does not know.
        public var description: String { Self.known.first { $0.kind == self }?.word ?? "kind-\(rawValue)" }
    }

    public var counter: UInt64
    public var kind: Kind
    public var cacheName: KCMCacheName

    public init(counter: UInt64, kind: Kind, cacheName: KCMCacheName) {
        self.counter = counter
        self.kind = kind
        self.cacheName = cacheName
    }

    /// `counter kind name`, for logs.
    public var description: String { "\(counter) \(kind) \(cacheName)" }

    public func write(to writer: inout KCMWriter) {
        KCMWord64.write(counter, to: &writer)
        writer.write(kind.rawValue)
        writer.write(cacheName)
    }

    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMChangeEvent {
        let counter = try KCMWord64.read(from: &reader)
        let kind = Kind(rawValue: try reader.readUInt8())
        return KCMChangeEvent(counter: counter, kind: kind, cacheName: try reader.readName())
    }
}

/// `u64` fields of ccached's own payloads: two big-endian words, high first (``KCMWriter`` and
/// ``KCMReader`` go up to 32 bits).
enum KCMWord64 {
    static func write(_ value: UInt64, to writer: inout KCMWriter) {
        writer.write(UInt32(truncatingIfNeeded: value >> 32))
        writer.write(UInt32(truncatingIfNeeded: value))
    }

    static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> UInt64 {
        let high = try reader.readUInt32()
        return UInt64(high) << 32 | UInt64(try reader.readUInt32())
    }
}
