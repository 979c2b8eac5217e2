import Glibc

/// An immutable run of secret bytes held in the ``SecureArena``: locked in RAM where allowed, never
/// in a core dump, and zeroed when the last copy of the value goes away.
///
/// Copies of the value share one block (it is never mutated), so a credential passed around or
/// returned in a reply is never duplicated in ordinary heap memory by this type.
public struct SecureBytes: RandomAccessCollection, Sendable, Hashable {
    /// The block and its length; zeroes and returns the block on deinit.
    final class Storage: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
        let count: Int
        let arena: SecureArena

        init(count: Int, arena: SecureArena) {
            guard let base = arena.allocate(count) else {
                fatalError("out of memory: cannot map \(count) bytes for a credential")
            }
            self.base = base
            self.count = count
            self.arena = arena
        }

        deinit { arena.free(base, size: count) }
    }

    /// Nil for an empty value (no block is allocated).
    private let storage: Storage?

    public typealias Index = Int
    public typealias Element = UInt8
    public typealias SubSequence = Slice<SecureBytes>
    public typealias Indices = Range<Int>

    public init() { storage = nil }

    /// Copies `bytes` into a new block of `arena`.
    public init(copying bytes: UnsafeRawBufferPointer, arena: SecureArena = .shared) {
        guard bytes.count > 0, let source = bytes.baseAddress else {
            storage = nil
            return
        }
        let storage = Storage(count: bytes.count, arena: arena)
        storage.base.copyMemory(from: source, byteCount: bytes.count)
        self.storage = storage
    }

    /// Copies a collection of bytes (contiguous ones by `memcpy`).
    public init<C: Collection>(copying bytes: C, arena: SecureArena = .shared) where C.Element == UInt8 {
        let copied: SecureBytes? = bytes.withContiguousStorageIfAvailable { buffer in
            SecureBytes(copying: UnsafeRawBufferPointer(buffer), arena: arena)
        }
        if let copied {
            self = copied
            return
        }
        // Byte by byte into the block: a temporary array would leave a copy in ordinary memory.
        let count = bytes.count
        guard count > 0 else {
            storage = nil
            return
        }
        let storage = Storage(count: count, arena: arena)
        for (offset, byte) in bytes.enumerated() {
            storage.base.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
        }
        self.storage = storage
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage?.count ?? 0 }
    public var count: Int { storage?.count ?? 0 }
    public var indices: Range<Int> { 0..<count }

    @inline(__always)
    public func index(after i: Int) -> Int { i + 1 }
    @inline(__always)
    public func index(before i: Int) -> Int { i - 1 }

    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < count, "SecureBytes index out of range")
        return storage!.base.load(fromByteOffset: position, as: UInt8.self)
    }

    public subscript(bounds: Range<Int>) -> Slice<SecureBytes> {
        precondition(bounds.lowerBound >= 0 && bounds.upperBound <= count, "SecureBytes range out of range")
        return Slice(base: self, bounds: bounds)
    }

    /// Calls `body` with the bytes in place (valid only during the call).
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        guard let storage else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try withExtendedLifetime(storage) { () throws(E) -> R in
            try body(UnsafeRawBufferPointer(start: storage.base, count: storage.count))
        }
    }

    public func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        try withUnsafeBytes { raw in try body(raw.bindMemory(to: UInt8.self)) }
    }

    public static func == (lhs: SecureBytes, rhs: SecureBytes) -> Bool {
        lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in equalBytes(a, b) } }
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

extension Slice where Base == SecureBytes {
    /// Calls `body` with the slice's bytes in place (valid only during the call).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try base.withUnsafeBytes { whole in
            try body(UnsafeRawBufferPointer(rebasing: whole[startIndex..<endIndex]))
        }
    }

    /// Whether the slice holds exactly `other`'s bytes (a `memcmp`, not an element-wise walk).
    public func bytesEqual<C: Collection>(_ other: C) -> Bool where C.Element == UInt8 {
        guard count == other.count else { return false }
        return withUnsafeBytes { mine in
            other.withContiguousStorageIfAvailable { theirs in
                equalBytes(mine, UnsafeRawBufferPointer(theirs))
            } ?? mine.elementsEqual(other)
        }
    }
}

/// `memcmp` of two buffers of any length.
@inline(__always)
func equalBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    guard a.count > 0 else { return true }
    return memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
}

extension Array where Element == UInt8 {
    /// Overwrites the array's storage with zeros in place, without copying it first even when other
    /// copies share it: for receive and reply buffers about to be dropped or reused, whose every
    /// sharer is done with them.
    public func wipeStorage(from start: Int = 0) {
        withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, start < buffer.count else { return }
            SecureArena.wipe(UnsafeMutableRawPointer(mutating: base + start), count: buffer.count - start)
        }
    }
}

extension SecureBytes {
    /// Calls `body` with the bytes of every value in place, in order (valid only during the call):
    /// for sending many stored credentials in one gathered write, without copying them.
    public static func withUnsafeBytes<R, E: Error>(
        of values: [SecureBytes], _ body: ([UnsafeRawBufferPointer]) throws(E) -> R
    ) throws(E) -> R {
        try withExtendedLifetime(values) { () throws(E) -> R in
            try body(
                values.map { value in
                    guard let storage = value.storage else { return UnsafeRawBufferPointer(start: nil, count: 0) }
                    return UnsafeRawBufferPointer(start: storage.base, count: storage.count)
                })
        }
    }
}
