import SystemCalls

/// A probe's samples, sorted, and the figures its output line shows. Each rank is taken the way the
/// script the probe replaced took it (connect-probe.c, coldstart.py, bench-door.sh's and
/// bench-renewal.sh's Python), so that new figures stay comparable with Docs/performance-log.md.
struct ProbeSamples {
    let sorted: [Double]

    init(_ values: [Double]) {
        precondition(!values.isEmpty, "a probe with no samples")
        sorted = values.sorted()
    }

    /// Times `body` `count` times one after the other, in microseconds: a probe's measuring loop.
    @inline(__always)
    init(timing count: Int, _ body: () throws -> Void) rethrows {
        var values: [Double] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            let start = MonotonicClock.nanoseconds()
            try body()
            values.append(Double(MonotonicClock.nanoseconds() - start) / 1000)
        }
        self.init(values)
    }

    var count: Int { sorted.count }

    /// `sorted[count × percent / 100]`, integer arithmetic (p50 is the upper median).
    func index(percent: Int) -> Double { sorted[min(count - 1, count * percent / 100)] }

    /// `sorted[⌊q × (count − 1)⌋]`.
    func lowerRank(_ fraction: Double) -> Double { sorted[Int(fraction * Double(count - 1))] }

    /// `sorted[round(q × (count − 1))]`.
    func nearestRank(_ fraction: Double) -> Double {
        sorted[Int((fraction * Double(count - 1)).rounded(.toNearestOrEven))]
    }

    /// The median, the two middle values averaged when the count is even.
    var median: Double {
        count % 2 == 1 ? sorted[count / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2
    }
}
