/// Fixed-point and padded text for table cells (no Foundation in this program).
enum NumberFormat {
    /// `value` with `digits` decimals.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "–" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let fraction = Int(scaled) - whole * Int(scale)
        let sign = value < 0 && scaled > 0 ? "-" : ""
        guard digits > 0 else { return sign + grouped(whole) }
        let fractionText = String(fraction)
        return sign + grouped(whole) + "." + String(repeating: "0", count: digits - fractionText.count) + fractionText
    }

    /// `value` with `digits` decimals and no grouping: for lines that scripts read back.
    static func plain(_ value: Double, _ digits: Int) -> String {
        fixed(value, digits).filter { $0 != "," }
    }

    /// A latency in nanoseconds shown in microseconds, with fewer decimals as it grows.
    static func microseconds(_ nanoseconds: Double) -> String {
        guard nanoseconds.isFinite else { return "–" }
        let us = nanoseconds / 1000
        return fixed(us, us < 10 ? 2 : us < 1000 ? 1 : 0)
    }

    /// A rate with a k/M suffix.
    static func rate(_ perSecond: Double) -> String {
        guard perSecond.isFinite else { return "–" }
        if perSecond >= 1e6 { return fixed(perSecond / 1e6, 2) + "M" }
        if perSecond >= 1e4 { return fixed(perSecond / 1e3, 1) + "k" }
        return fixed(perSecond, 0)
    }

    static func ratio(_ value: Double) -> String { value.isFinite ? fixed(value, 2) + "×" : "–" }

    static func mebibytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 1) + " MiB" }

    static func grouped(_ value: Int) -> String {
        let digits = String(value)
        var result = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
            result.append(character)
        }
        return result
    }

    static func pad(_ text: String, _ width: Int, right: Bool = true) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }
}
