/// One JSON object written on one line, keys in the order they were added. Enough JSON for the
/// results file: strings, numbers, booleans, null for numbers that are not finite.
struct JSONLine {
    private var fields: [(String, String)] = []

    init(record: String) { add("record", record) }

    mutating func add(_ key: String, _ value: String?) {
        fields.append((key, value.map(Self.quote) ?? "null"))
    }

    mutating func add(_ key: String, _ value: Double?) {
        guard let value, value.isFinite else {
            fields.append((key, "null"))
            return
        }
        fields.append((key, value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"))
    }

    mutating func add(_ key: String, _ value: Int?) {
        fields.append((key, value.map { String($0) } ?? "null"))
    }

    mutating func add(_ key: String, _ value: Bool?) {
        fields.append((key, value.map { $0 ? "true" : "false" } ?? "null"))
    }

    var text: String {
        "{" + fields.map { "\(Self.quote($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    private static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
