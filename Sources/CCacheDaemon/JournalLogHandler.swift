import CSupport
import Glibc
import Logging

/// A swift-log handler that writes structured entries to the systemd journal
/// (`sd_journal_sendv`): MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC, and each
/// metadata key as an upper-case field (`peer_pid` → `PEER_PID`). libsystemd is loaded by the
/// first entry, not when the daemon starts (CSupport's `ccached_sd_journal_sendv`).
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let identifier: String

    public init(identifier: String) {
        self.identifier = identifier
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Whether standard error is connected to the journal (systemd sets `JOURNAL_STREAM` to its
    /// device and inode), so that logging should go there directly.
    public static var standardErrorIsJournal: Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// syslog priorities, as the journal expects them.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A journal field name from a metadata key: upper case, `[A-Z0-9_]`, not starting with `_`
    /// or a digit (fields starting with `_` are trusted fields only journald may set).
    public static func fieldName(_ key: String) -> String {
        var name = String(
            key.uppercased().map { ($0.isLetter && $0.isASCII) || ($0.isNumber && $0.isASCII) ? $0 : "_" })
        while name.first == "_" || name.first?.isNumber == true { name.removeFirst() }
        return name.isEmpty ? "FIELD" : String(name.prefix(64))
    }

    /// The journal entry's fields, in order.
    public static func fields(
        message: String, level: Logger.Level, identifier: String, metadata: Logger.Metadata, file: String,
        function: String, line: UInt
    ) -> [String] {
        var result = [
            "MESSAGE=\(message)", "PRIORITY=\(priority(level))", "SYSLOG_IDENTIFIER=\(identifier)",
            "CODE_FILE=\(file)", "CODE_LINE=\(line)", "CODE_FUNC=\(function)",
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { result.append("\(fieldName(key))=\(value)") }
        return result
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let entries = Self.fields(
            message: "\(event.message)", level: event.level, identifier: identifier, metadata: merged,
            file: event.file, function: event.function, line: event.line)
        // One buffer for every field, and the vectors built while its storage is pinned: no
        // pointer outlives the closure that lent it.
        var storage: [UInt8] = []
        var ranges: [Range<Int>] = []
        for entry in entries {
            let start = storage.count
            storage.append(contentsOf: entry.utf8)
            ranges.append(start..<storage.count)
        }
        storage.withUnsafeMutableBytes { raw in
            var vectors = ranges.map { iovec(iov_base: raw.baseAddress! + $0.lowerBound, iov_len: $0.count) }
            _ = ccached_sd_journal_sendv(&vectors, Int32(vectors.count))
        }
    }
}
