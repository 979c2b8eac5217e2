/// A request body read once, the way a daemon reads it: the opcode word it carries, and the
/// request it decodes to or why it does not.
///
/// The opcode word is there whenever the body is long enough to hold one (four bytes), even when
/// the version is one this protocol does not speak or the arguments are malformed: a daemon names
/// every request in its log by it, and reads it nowhere else.
public struct KCMDecodedRequest: Sendable {
    /// The `u16` after the version bytes; nil for a body shorter than the header.
    public let opcode: UInt16?
    /// The request, or why the body does not decode.
    public let request: Result<KCMRequest, KCMDecodingError>

    /// Decodes a request body (everything after the length word). Trailing bytes are ignored.
    public init(decoding body: [UInt8]) {
        var reader = KCMReader(body)
        var opcode: UInt16?
        do throws(KCMDecodingError) {
            let major = try reader.readUInt8()
            let minor = try reader.readUInt8()
            // Read before the version is checked, so that a request of another version is named too.
            if reader.remaining >= 2 { opcode = try reader.readUInt16() }
            guard major == KCMRequest.versionMajor else { throw .unsupportedVersion(major: major, minor: minor) }
            // A body of two or three bytes is cut short in its opcode word.
            guard let raw = opcode else { throw .truncated(offset: reader.offset, needed: 2 - reader.remaining) }
            request = .success(try KCMRequest(opcode: raw, reading: &reader))
        } catch {
            request = .failure(error)
        }
        self.opcode = opcode
    }
}
