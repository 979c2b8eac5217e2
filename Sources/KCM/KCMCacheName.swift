/// A cache name (the residual after `KCM:`) as raw bytes: any byte but NUL, no prefix.
public struct KCMCacheName: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var bytes: [UInt8]

    /// The longest name a client may create; longer names get ``KCMStatus/ccBadName``.
    public static let maximumLength = 4096

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    public init(stringLiteral value: String) { self.init(value) }

    /// Whether a client may create a cache of this name: non-empty, at most ``maximumLength`` bytes,
    /// and without a NUL (which would end the name on the wire).
    public var isValidForCreation: Bool {
        !bytes.isEmpty && bytes.count <= Self.maximumLength && !bytes.contains(0)
    }

    /// The name as text, with invalid UTF-8 repaired (for logs and display only).
    public var description: String { String(decoding: bytes, as: UTF8.self) }
}
