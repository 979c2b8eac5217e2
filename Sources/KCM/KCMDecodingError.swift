/// Why a request body (or, in a client, a reply) could not be decoded. A daemon answers every case
/// with ``KCMStatus/ccIO``.
public enum KCMDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The body ended before a field that must be there; `needed` more bytes at `offset`.
    case truncated(offset: Int, needed: Int)
    /// The protocol version is not 2.x.
    case unsupportedVersion(major: UInt8, minor: UInt8)
    /// A cache name had no terminating NUL.
    case unterminatedName(offset: Int)
    /// A count is larger than the bytes left could possibly hold.
    case implausibleCount(field: String, count: UInt32)
    /// A value that must be 0 or 1 was something else, or another field was out of range.
    case invalidValue(field: String, value: UInt32)
    /// A reply's payload is not of the shape its opcode's reply has.
    case unexpectedReply(expected: String)
    /// A field is larger than any real client sends (`size` against `limit`), e.g. a principal of
    /// 838,860 components: refused before it is stored (issue 12, item 3).
    case tooLarge(field: String, size: Int, limit: Int)

    public var description: String {
        switch self {
        case .truncated(let offset, let needed): "request truncated at byte \(offset) (\(needed) more bytes needed)"
        case .unsupportedVersion(let major, let minor): "unsupported KCM protocol version \(major).\(minor)"
        case .unterminatedName(let offset): "cache name at byte \(offset) has no terminating NUL"
        case .implausibleCount(let field, let count): "\(field) count \(count) exceeds the bytes that follow"
        case .invalidValue(let field, let value): "invalid \(field) value \(value)"
        case .unexpectedReply(let expected): "the reply does not hold \(expected)"
        case .tooLarge(let field, let size, let limit): "\(field) is \(size), more than the limit of \(limit)"
        }
    }
}
