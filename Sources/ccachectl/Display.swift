import Glibc
import KCM

/// How times, flags and enctypes are shown, the way klist shows them.
enum Display {
    /// Local time, `YYYY-MM-DD HH:MM:SS`.
    static func time(_ value: UInt32) -> String {
        value == 0 ? "-" : format(value, "%Y-%m-%d %H:%M:%S", localtime_r)
    }

    /// ISO 8601 UTC for JSON.
    static func isoTime(_ value: UInt32) -> String? {
        value == 0 ? nil : format(value, "%Y-%m-%dT%H:%M:%SZ", gmtime_r)
    }

    /// `value` (seconds since the epoch) broken down by `breakDown` (local or UTC) and formatted.
    private static func format(
        _ value: UInt32, _ pattern: String,
        _ breakDown: (UnsafePointer<time_t>, UnsafeMutablePointer<tm>) -> UnsafeMutablePointer<tm>?
    ) -> String {
        var seconds = time_t(value)
        var parts = tm()
        _ = breakDown(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// MIT klist's letters in klist's order (klist.c, flags_string): F f P p D d i R I H A T O a.
    /// `H` (hardware-authenticated, 0x00100000) comes before `A` (pre-authenticated, 0x00200000),
    /// and `T` is transit policy checked (0x00080000).
    static let flagLetters: [(UInt32, Character)] = [
        (0x4000_0000, "F"), (0x2000_0000, "f"), (0x1000_0000, "P"), (0x0800_0000, "p"), (0x0400_0000, "D"),
        (0x0200_0000, "d"), (0x0100_0000, "i"), (0x0080_0000, "R"), (0x0040_0000, "I"), (0x0010_0000, "H"),
        (0x0020_0000, "A"), (0x0008_0000, "T"), (0x0004_0000, "O"), (0x0002_0000, "a"),
    ]

    /// klist's flag string for `value` (what `klist -f` prints after "Flags:").
    static func flags(_ value: UInt32) -> String {
        String(flagLetters.compactMap { value & $0.0 != 0 ? $0.1 : nil })
    }

    static func enctype(_ value: Int16) -> String {
        switch value {
        case 17: "aes128-cts-hmac-sha1-96"
        case 18: "aes256-cts-hmac-sha1-96"
        case 19: "aes128-cts-hmac-sha256-128"
        case 20: "aes256-cts-hmac-sha384-192"
        case 23: "arcfour-hmac"
        case 25: "camellia128-cts-cmac"
        case 26: "camellia256-cts-cmac"
        case 16: "des3-cbc-sha1"
        default: "enctype \(value)"
        }
    }

    /// A duration such as `3d 04:05:06` or `04:05:06`.
    static func duration(_ seconds: UInt64) -> String {
        let days = seconds / 86_400
        let rest = seconds % 86_400
        let clock = String(format2(rest / 3600)) + ":" + format2(rest % 3600 / 60) + ":" + format2(rest % 60)
        return days > 0 ? "\(days)d \(clock)" : clock
    }

    private static func format2(_ value: UInt64) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// A byte count for people: `812 B`, `5.2 KiB`, `52 KiB`, `256 MiB` (one decimal below 10 units).
    static func bytes(_ value: UInt64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        guard value >= 1024 else { return "\(value) B" }
        var unit: UInt64 = 1024
        var index = 0
        while index + 1 < units.count, value / 1024 >= unit {
            unit *= 1024
            index += 1
        }
        // Tenths of the unit, rounded to nearest (the remainder times 10 stays far below 2^64).
        let tenths = (value / unit) * 10 + ((value % unit) * 10 + unit / 2) / unit
        if tenths < 100 && tenths % 10 != 0 { return "\(tenths / 10).\(tenths % 10) \(units[index])" }
        return "\((tenths + 5) / 10) \(units[index])"
    }

    /// Pads `text` to `width` columns.
    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
