/// A renewal option out of range; the message names the option.
public enum RenewalPolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    case threshold(Double)
    case initialBackoff(UInt32)
    case maximumBackoff(UInt32, initial: UInt32)

    public var description: String {
        switch self {
        case .threshold(let value):
            "--renew-threshold must be a fraction between 0 and 1 (exclusive), such as 0.33; got \(value)"
        case .initialBackoff(let value): "the first renewal back-off must be at least 1 second; got \(value)"
        case .maximumBackoff(let value, let initial):
            "the longest renewal back-off (\(value) s) must not be shorter than the first (\(initial) s)"
        }
    }
}
