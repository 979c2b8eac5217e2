import FoundationEssentials

/// How every `--json` output is written: one line, keys sorted, `/` left as it is.
enum JSONOutput {
    static func line(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Plain structs of strings, numbers and booleans: encoding them cannot fail.
        guard let data = try? encoder.encode(value) else { preconditionFailure("unencodable \(type(of: value))") }
        return String(decoding: data, as: UTF8.self)
    }
}

/// An optional field that JSON writes as `null` when absent (the synthesized encoder would leave
/// the key out, and scripts read `null`).
@propertyWrapper
struct NullWhenAbsent<Value: Encodable>: Encodable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}
