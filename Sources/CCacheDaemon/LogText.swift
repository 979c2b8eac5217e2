/// Text from clients made safe for one log line.
enum LogText {
    /// `text` with control characters (newlines, escapes, DEL, C1) written as `\n`, `\t`, `\r` or
    /// `\u{XX}`, and backslashes doubled: a cache name cannot start a second log line or recolour a
    /// terminal.
    static func escaped(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value < 0xA0):
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
