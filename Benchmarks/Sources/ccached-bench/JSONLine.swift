import FoundationEssentials

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

    /// `text` as a JSON string, escaped by Foundation's encoder (a string always encodes).
    private static func quote(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}
