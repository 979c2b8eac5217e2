import SecureMemory

/// Splits a byte stream into request frames (`u32 length` + body), however the bytes arrive.
///
/// A frame whose declared length exceeds the limit is never buffered: its body is read and thrown
/// away as it arrives, and the decoder then reports ``Frame/oversized(length:)`` so the server can
/// answer it. Answering only after the whole body was consumed keeps the stream in step: the client
/// writes its whole request before it reads the reply, and closing with unread input would reset it.
public struct KCMFrameDecoder: Sendable {
    /// What the decoder produced.
    public enum Frame: Equatable, Sendable {
        /// A complete request body (version, opcode, arguments).
        case request([UInt8])
        /// A request that was over the limit, fully discarded.
        case oversized(length: UInt32)
    }

    /// The largest request body accepted.
    public let maximumLength: UInt32
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var discarding: (length: UInt32, left: UInt64)?

    public init(maximumLength: UInt32) {
        self.maximumLength = maximumLength
    }

    /// Bytes buffered and not yet returned in a frame.
    public var bufferedCount: Int { buffer.count - readIndex }

    /// Whether a frame has been started but not finished (bytes buffered or a body being discarded).
    public var isMidFrame: Bool { bufferedCount > 0 || discarding != nil }

    /// Adds bytes read from the peer.
    /// (``nextFrame()`` always compacts, so a fully consumed buffer is already empty here.)
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let needed = buffer.count + bytes.count
        if needed > buffer.capacity {
            // Grown by hand so that the old storage, which may hold part of a credential, is zeroed.
            replaceBuffer(capacity: max(needed, buffer.capacity * 2, 256))
        }
        let copied: Void? = bytes.withContiguousStorageIfAvailable { buffer.append(contentsOf: $0) }
        if copied == nil { buffer.append(contentsOf: bytes) }
    }

    /// Returns the next complete frame, or nil when more bytes are needed.
    ///
    /// The buffer keeps no copy of a returned or discarded frame: its bytes are zeroed as they are
    /// consumed. The returned body is the caller's to zero (`wipeStorage()`) once answered.
    public mutating func nextFrame() -> Frame? {
        if let state = discarding {
            let drop = Int(min(UInt64(bufferedCount), state.left))
            consume(drop)
            let left = state.left - UInt64(drop)
            compact()
            if left > 0 {
                discarding = (state.length, left)
                return nil
            }
            discarding = nil
            return .oversized(length: state.length)
        }
        guard bufferedCount >= 4 else {
            compact()
            return nil
        }
        let length =
            UInt32(buffer[readIndex]) << 24 | UInt32(buffer[readIndex + 1]) << 16 | UInt32(buffer[readIndex + 2]) << 8
            | UInt32(buffer[readIndex + 3])
        if length > maximumLength {
            consume(4)
            discarding = (length, UInt64(length))
            return nextFrame()
        }
        guard bufferedCount >= 4 + Int(length) else {
            compact()
            return nil
        }
        let start = readIndex + 4
        let body = Array(buffer[start..<start + Int(length)])
        consume(4 + Int(length))
        compact()
        return .request(body)
    }

    /// Zeroes whatever is buffered (a half-received frame) and empties the decoder: call it when
    /// the connection ends.
    public mutating func wipe() {
        buffer.wipeStorage()
        buffer = []
        readIndex = 0
        discarding = nil
    }

    /// Zeroes the next `count` buffered bytes and moves past them.
    private mutating func consume(_ count: Int) {
        guard count > 0 else { return }
        buffer.withUnsafeMutableBytes { raw in
            SecureArena.wipe(raw.baseAddress! + readIndex, count: count)
        }
        readIndex += count
    }

    private mutating func compact() {
        if readIndex == buffer.count {
            // Everything before readIndex is already zero.
            buffer.removeAll(keepingCapacity: buffer.capacity <= 65536)
            readIndex = 0
        } else if readIndex > 65536 {
            replaceBuffer(capacity: buffer.capacity)
        }
    }

    /// Moves the unread bytes into new storage and zeroes the old (shifting in place would leave a
    /// copy of them past the new end).
    private mutating func replaceBuffer(capacity: Int) {
        var fresh: [UInt8] = []
        fresh.reserveCapacity(max(capacity, buffer.count - readIndex))
        fresh.append(contentsOf: buffer[readIndex...])
        buffer.wipeStorage()
        buffer = fresh
        readIndex = 0
    }
}
