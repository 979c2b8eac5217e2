/// The failures of one credential's renewals in a row, and when the next attempt may start.
public struct RenewalFailureState: Hashable, Sendable {
    /// Failures since the last success (at least 1).
    public var consecutiveFailures: Int
    /// No attempt before this time (KDC clock, Unix seconds).
    public var retryAt: UInt32
    /// The last failure's message, to log each cause once.
    public var lastCause: String
}
