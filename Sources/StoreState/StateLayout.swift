import CStateFile
import KCM

/// The layout of a daemon's state file (Docs/state.md): a header page with two slots, each naming
/// a generation and where its area starts, and the areas: checksummed records, appended in order.
///
/// A generation's area begins with a snapshot (``RecordKind/begin`` and one ``RecordKind/cache`` per
/// cache) and continues with the outcome of every change since. A new generation (compaction) is
/// written elsewhere in the file and then named by the slot not in use: until that 32-byte slot is
/// whole (its checksum), the old generation is the state. Every record carries its generation and a
/// CRC32C, so a loader stops at the first torn record, and never reads the records an older
/// generation left behind in reused space as this one's. A credential's bytes have a checksum of
/// their own: when the store lets the credential go, they are zeroed in the file, in place.
///
/// All integers are big-endian, as in KCM.
public enum StateLayout {
    /// "CCACHEDS".
    public static let magic: [UInt8] = Array("CCACHEDS".utf8)
    /// The layout this code writes, and the newest it reads. Version 1: this file's records.
    public static let version: UInt32 = 1
    /// Bytes before the first area: the header (magic, two slots), padded to a page.
    public static let headerSize = 4096
    /// Where the two slots sit.
    public static let slotOffsets = [16, 48]
    public static let slotSize = 32
    /// A record's head: CRC32C (of everything after it), payload length, generation, kind.
    public static let recordHeadSize = 17
    /// A part's head inside a ``RecordKind/batch``: kind, payload length.
    public static let partHeadSize = 5
    /// The largest payload a record may have: a whole cache at the largest credential limit.
    public static let maximumPayload = 1 << 31 - 1

    /// A slot: which generation is the state, where its area starts, its layout version and owner.
    public struct Slot: Equatable, Sendable {
        public var generation: UInt64
        public var areaOffset: UInt64
        public var version: UInt32
        public var ownerUID: UInt32

        public init(generation: UInt64, areaOffset: UInt64, version: UInt32 = StateLayout.version, ownerUID: UInt32) {
            self.generation = generation
            self.areaOffset = areaOffset
            self.version = version
            self.ownerUID = ownerUID
        }

        /// The slot's 32 bytes, the last four the CRC32C of the first 28.
        public var encoded: [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(StateLayout.slotSize)
            StateLayout.append(generation, to: &bytes)
            StateLayout.append(areaOffset, to: &bytes)
            StateLayout.append(version, to: &bytes)
            StateLayout.append(ownerUID, to: &bytes)
            StateLayout.append(UInt32(0), to: &bytes)
            StateLayout.append(StateLayout.crc(bytes), to: &bytes)
            return bytes
        }

        /// The slot in `bytes` (32 of them), or nil when its checksum fails or it names no generation.
        public init?(decoding bytes: UnsafeRawBufferPointer) {
            guard bytes.count >= StateLayout.slotSize else { return nil }
            let body = UnsafeRawBufferPointer(rebasing: bytes[0..<28])
            guard StateLayout.crc(body) == StateLayout.readUInt32(bytes, at: 28) else { return nil }
            generation = StateLayout.readUInt64(bytes, at: 0)
            areaOffset = StateLayout.readUInt64(bytes, at: 8)
            version = StateLayout.readUInt32(bytes, at: 16)
            ownerUID = StateLayout.readUInt32(bytes, at: 20)
            guard generation != 0 else { return nil }
        }
    }

    /// What a record says happened. The payloads (KCM encodings: `data` is a u32 length and bytes,
    /// names are `data`, principals as in KCM, UUIDs 16 bytes; a *credential field* is u32 length,
    /// u32 CRC32C of the bytes, the bytes — the record's own checksum leaves those bytes out, so that
    /// a released credential's bytes are zeroed in place and the record stays whole):
    public enum RecordKind: UInt8, Sendable, CaseIterable {
        /// First in every area: u32 owner uid, u64 name counter, data default name.
        case begin = 1
        /// A whole cache, created or replacing its namesake: name, uuid, principal, i32 KDC offset,
        /// u32 n, n × (uuid, credential field).
        case cache = 2
        /// INITIALIZE: name, uuid, principal.
        case initialized = 3
        /// DESTROY: name.
        case destroyed = 4
        /// STORE: name, uuid, credential field (what it superseded is a ``removed`` before it).
        case stored = 5
        /// REMOVE_CRED, or what a STORE superseded: name, u32 n, n × uuid.
        case removed = 6
        /// The primary name: data name.
        case defaultName = 7
        /// SET_KDC_OFFSET: name, i32 offset.
        case kdcOffset = 8
        /// MOVE_CACHE: from, to, uuid of the destination.
        case moved = 9
        /// GEN_NEW: u64 name counter.
        case nameCount = 10
        /// Everything one request changed, applied together: parts of u8 kind, u32 length and that
        /// kind's payload (any kind but ``begin`` and ``batch``).
        case batch = 11
    }

    /// The CRC32C of `bytes`, as records and slots carry it.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { crc(bytes) }

    static func crc(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        ccached_state_crc32c(0, bytes.baseAddress, bytes.count)
    }

    static func crc(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { crc($0) }
    }

    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    static func readUInt32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    static func readUInt64(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}
