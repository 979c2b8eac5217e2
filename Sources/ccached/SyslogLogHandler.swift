import CCacheDaemon
import Glibc
import Logging

/// A swift-log handler that writes to syslog(3) (facility `LOG_DAEMON`, identifier `ccached`, with
/// the pid): where `--log-target auto` sends the daemon's lines when nobody reads its standard error
/// and there is no journal to send them to.
struct SyslogLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    /// Opens the connection to syslog once, for the whole process.
    init() {
        // openlog keeps the pointer, so the identifier must live as long as the process: a static C
        // string literal does.
        openlog("ccached", LOG_PID | LOG_NDELAY, LOG_DAEMON)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var text = "\(event.message)"
        if !merged.isEmpty {
            text += " " + merged.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        let priority = Int32(JournalLogHandler.priority(event.level))
        // Through "%s": the message is data, never a format string.
        text.withCString { line in
            withVaList([line]) { vsyslog(priority, "%s", $0) }
        }
    }
}
