/// Reads KCM wire types from a byte array, big-endian, checking every length against what is left.
///
/// The reader never traps on hostile input: every read either succeeds within `bytes[offset..<end]`
/// or throws ``KCMDecodingError``.
public struct KCMReader: Sendable {
    public let bytes: [UInt8]
    /// The index of the next byte to read.
    public private(set) var offset: Int
    /// One past the last byte this reader may read.
    public let end: Int

    public init(_ bytes: [UInt8], offset: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.offset = min(max(0, offset), bytes.count)
        self.end = min(max(self.offset, end ?? bytes.count), bytes.count)
    }

    /// The number of unread bytes.
    public var remaining: Int { end - offset }

    @inline(__always)
    mutating func need(_ n: Int) throws(KCMDecodingError) {
        guard n >= 0, n <= end - offset else { throw .truncated(offset: offset, needed: n - (end - offset)) }
    }

    public mutating func readUInt8() throws(KCMDecodingError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt16() throws(KCMDecodingError) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    public mutating func readUInt32() throws(KCMDecodingError) -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    public mutating func readInt16() throws(KCMDecodingError) -> Int16 { Int16(bitPattern: try readUInt16()) }
    public mutating func readInt32() throws(KCMDecodingError) -> Int32 { Int32(bitPattern: try readUInt32()) }

    /// Skips `count` bytes.
    public mutating func skip(_ count: Int) throws(KCMDecodingError) {
        try need(count)
        offset += count
    }

    /// Reads a `data` field (`u32 length`, then the bytes) and returns the range of its contents.
    public mutating func readDataRange() throws(KCMDecodingError) -> Range<Int> {
        let length = try readUInt32()
        guard length <= UInt32(remaining) else { throw .truncated(offset: offset, needed: Int(length) - remaining) }
        let start = offset
        offset += Int(length)
        return start..<offset
    }

    /// Reads a `data` field (`u32 length`, then the bytes).
    public mutating func readData() throws(KCMDecodingError) -> [UInt8] {
        Array(bytes[try readDataRange()])
    }

    /// Reads a NUL-terminated cache name.
    public mutating func readName() throws(KCMDecodingError) -> KCMCacheName {
        let start = offset
        var index = offset
        while index < end {
            if bytes[index] == 0 {
                offset = index + 1
                return KCMCacheName(bytes: Array(bytes[start..<index]))
            }
            index += 1
        }
        throw .unterminatedName(offset: start)
    }

    /// Reads a 16-byte UUID.
    public mutating func readUUID() throws(KCMDecodingError) -> KCMUUID {
        try need(16)
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(bytes[offset + i]) }
        for i in 8..<16 { low = low << 8 | UInt64(bytes[offset + i]) }
        offset += 16
        return KCMUUID(high: high, low: low)
    }

    /// Reads a count that precedes `count` items of at least `minimumItemSize` bytes each,
    /// refusing counts that the remaining bytes could not hold (so no huge allocation follows).
    public mutating func readCount(field: String, minimumItemSize: Int) throws(KCMDecodingError) -> Int {
        let count = try readUInt32()
        guard UInt64(count) * UInt64(max(1, minimumItemSize)) <= UInt64(remaining) else {
            throw .implausibleCount(field: field, count: count)
        }
        return Int(count)
    }
}
