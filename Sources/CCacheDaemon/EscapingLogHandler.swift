import Logging

/// Wraps the handler a program logs through so that no message can carry a control character:
/// each is escaped by ``LogText`` on its way out. ccached's and ccached-door's log lines name
/// caches, principals and ticket servers that clients chose freely; escaping here, once for every
/// line and every target (journal, syslog, stderr), means no call site can forget it. Metadata is
/// the programs' own (uids, pids, signals) and passes unchanged.
public struct EscapingLogHandler: LogHandler {
    public var base: any LogHandler

    public init(_ base: any LogHandler) { self.base = base }

    public var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = "\(LogText.escaped("\(event.message)"))"
        base.log(event: event)
    }
}
