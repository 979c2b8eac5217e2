import SecureMemory

/// Appends KCM wire types to a growing byte array, big-endian.
///
/// Replies carry credential bytes, so the buffer never leaves a copy behind: when it must grow, the
/// old storage is zeroed after the move, and bytes dropped by ``truncate(to:)`` are zeroed first.
public struct KCMWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    /// Makes room for `additional` more bytes without a later reallocation (zeroing the old storage
    /// if it has to move).
    public mutating func reserve(_ additional: Int) {
        if bytes.count + additional > bytes.capacity { grow(toAtLeast: bytes.count + additional) }
    }

    private mutating func grow(toAtLeast minimum: Int) {
        var larger: [UInt8] = []
        larger.reserveCapacity(max(minimum, bytes.capacity * 2, 64))
        larger.append(contentsOf: bytes)
        bytes.wipeStorage()
        bytes = larger
    }

    public mutating func write(_ value: UInt8) {
        reserve(1)
        bytes.append(value)
    }

    public mutating func write(_ value: UInt16) {
        reserve(2)
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func write(_ value: UInt32) {
        reserve(4)
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func write(_ value: Int16) { write(UInt16(bitPattern: value)) }
    public mutating func write(_ value: Int32) { write(UInt32(bitPattern: value)) }

    /// Appends raw bytes with no length prefix.
    public mutating func writeBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        reserve(data.count)
        let copied: Void? = data.withContiguousStorageIfAvailable { bytes.append(contentsOf: $0) }
        if copied == nil { bytes.append(contentsOf: data) }
    }

    /// Appends a `data` field: `u32 length`, then the bytes.
    public mutating func writeData<C: Collection>(_ data: C) where C.Element == UInt8 {
        write(UInt32(truncatingIfNeeded: data.count))
        writeBytes(data)
    }

    /// Appends a cache name and its terminating NUL.
    public mutating func write(_ name: KCMCacheName) {
        reserve(name.bytes.count + 1)
        bytes.append(contentsOf: name.bytes)
        bytes.append(0)
    }

    /// Appends a 16-byte UUID.
    public mutating func write(_ uuid: KCMUUID) {
        write(UInt32(truncatingIfNeeded: uuid.high >> 32))
        write(UInt32(truncatingIfNeeded: uuid.high))
        write(UInt32(truncatingIfNeeded: uuid.low >> 32))
        write(UInt32(truncatingIfNeeded: uuid.low))
    }

    /// Overwrites four bytes at `offset` with `value`, big-endian (for length and status words).
    public mutating func patch(_ value: UInt32, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 24)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: value)
    }

    /// Drops everything after the first `count` bytes, zeroing them first.
    public mutating func truncate(to count: Int) {
        bytes.wipeStorage(from: count)
        bytes.removeSubrange(count...)
    }

    /// Zeroes everything written (the buffer keeps its length): before the writer is dropped.
    public func wipe() {
        bytes.wipeStorage()
    }
}
