/// The 12 bytes that start every reply frame, as a client reads them: `u32 L` (4 + the payload's
/// length), the transport word (not counted in L), then the `s32` status. ``KCMReplyWriter`` writes
/// them; this is the one place that reads them.
///
/// A non-zero transport word is an error from the transport itself: MIT's client treats it as the
/// status and ignores the body (ccached always sends 0, see ``KCMReplyWriter``).
public struct KCMReplyHeader: Equatable, Sendable {
    /// The header's size in bytes.
    public static let length = KCMReplyWriter.headerLength

    /// L: the status word and the payload, in bytes (at least 4).
    public let replyLength: UInt32
    /// The transport word.
    public let transport: UInt32
    /// The KCM status.
    public let status: KCMStatus

    /// The payload bytes that follow the header.
    public var payloadLength: Int { Int(replyLength) - 4 }

    /// The status the client acts on: the transport word when it is non-zero, else the KCM status.
    public var effectiveStatus: KCMStatus {
        transport == 0 ? status : KCMStatus(rawValue: Int32(bitPattern: transport))
    }

    public init(replyLength: UInt32, transport: UInt32 = 0, status: KCMStatus) {
        self.replyLength = replyLength
        self.transport = transport
        self.status = status
    }

    /// Reads the header from the first ``length`` bytes of `bytes`. Throws when fewer are there, or
    /// when L is too small to hold the status word it counts.
    public init(decoding bytes: [UInt8]) throws(KCMDecodingError) {
        var reader = KCMReader(bytes, end: min(bytes.count, Self.length))
        let replyLength = try reader.readUInt32()
        let transport = try reader.readUInt32()
        let status = KCMStatus(rawValue: try reader.readInt32())
        guard replyLength >= 4 else { throw .invalidValue(field: "reply length", value: replyLength) }
        self.init(replyLength: replyLength, transport: transport, status: status)
    }
}
