/// Why one renewal failed: libkrb5's error code and message (the KDC's own words when it refused).
public struct RenewalError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The `krb5_error_code`, 0 when the failure happened before libkrb5 was asked.
    public let code: Int32
    public let message: String
    /// Retrying cannot help (for example a ticket for another realm's service): stop, do not back off.
    public let isPermanent: Bool

    public init(code: Int32 = 0, message: String, isPermanent: Bool = false) {
        self.code = code
        self.message = message
        self.isPermanent = isPermanent
    }

    public var description: String { message }
}
