import KCM

/// Issues UUIDs that never repeat within the daemon's life and are never all-zero: a random
/// 64-bit prefix chosen at start and a counter.
public struct UUIDGenerator {
    private let prefix: UInt64
    private var counter: UInt64 = 0

    public init() {
        var generator = SystemRandomNumberGenerator()
        prefix = generator.next() | 1
    }

    public mutating func next() -> KCMUUID {
        counter &+= 1
        return KCMUUID(high: prefix, low: counter)
    }
}
