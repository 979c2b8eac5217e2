/// Builds one reply frame in place: `u32 L`, `u32 0` (transport status, always 0), `s32 status`,
/// payload, with L = 4 + payload length.
///
/// The transport word is always 0: MIT's client reads a non-zero one as an error *without* reading
/// the body, which desynchronises the connection.
public struct KCMReplyWriter: Sendable {
    /// Header size: length, transport status and KCM status.
    public static let headerLength = 12
    /// The largest reply MIT accepts (its L limit).
    public static let mitMaximumReplyLength = 10_485_760

    public var writer: KCMWriter

    public init(capacity: Int = 256) {
        writer = KCMWriter(capacity: capacity)
        writer.writeBytes(repeatElement(0 as UInt8, count: Self.headerLength))
    }

    /// The payload bytes written so far.
    public var payloadCount: Int { writer.count - Self.headerLength }

    /// Fills in the header for `status`; on an error status the payload is dropped (replies to errors
    /// are empty). ``bytes`` is then the whole frame.
    public mutating func finish(status: KCMStatus) {
        if status != .success { writer.truncate(to: Self.headerLength) }
        writer.patch(UInt32(truncatingIfNeeded: 4 + payloadCount), at: 0)
        writer.patch(0, at: 4)
        writer.patch(UInt32(bitPattern: status.rawValue), at: 8)
    }

    /// Fills in a success header whose payload is what was written plus `trailing` bytes that the
    /// caller sends right after ``bytes`` (credentials sent from where they are stored).
    public mutating func finishSuccess(followedBy trailing: Int) {
        writer.patch(UInt32(truncatingIfNeeded: 4 + payloadCount + trailing), at: 0)
        writer.patch(0, at: 4)
        writer.patch(UInt32(bitPattern: KCMStatus.success.rawValue), at: 8)
    }

    /// The frame built so far (complete after ``finish(status:)``).
    public var bytes: [UInt8] { writer.bytes }

    /// Starts over for the next reply, keeping the buffer; the last reply's payload is zeroed.
    public mutating func reset() {
        writer.truncate(to: Self.headerLength)
    }

    /// Zeroes the buffer: before the writer is dropped, so no reply outlives its connection.
    public func wipe() {
        writer.wipe()
    }
}
