import SystemCalls

/// Latencies of one phase, in nanoseconds, and the figures a report shows for them.
struct LatencySamples {
    private(set) var nanoseconds: [UInt64] = []

    init(capacity: Int = 0) {
        nanoseconds.reserveCapacity(capacity)
    }

    var count: Int { nanoseconds.count }
    var isEmpty: Bool { nanoseconds.isEmpty }

    mutating func add(_ value: UInt64) { nanoseconds.append(value) }

    /// Times `body` once and records it; returns what `body` returned.
    @inline(__always)
    mutating func measure<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let start = MonotonicClock.nanoseconds()
        let result = try body()
        nanoseconds.append(MonotonicClock.nanoseconds() - start)
        return result
    }

    /// The value below which `fraction` of the samples fall (nearest rank).
    func percentile(_ fraction: Double) -> Double {
        guard !nanoseconds.isEmpty else { return .nan }
        let sorted = nanoseconds.sorted()
        let rank = Int((Double(sorted.count) * fraction).rounded(.up)) - 1
        return Double(sorted[min(max(rank, 0), sorted.count - 1)])
    }

    var p50: Double { percentile(0.5) }
    var p99: Double { percentile(0.99) }

    /// Operations per second of time spent inside the operations.
    var operationsPerSecond: Double {
        let total = nanoseconds.reduce(0, +)
        return total == 0 ? .nan : Double(nanoseconds.count) * 1e9 / Double(total)
    }
}
