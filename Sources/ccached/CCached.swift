import ArgumentParser
import CCacheDaemon
import Glibc
import Logging

/// `ccached`: the per-session in-memory Kerberos credential cache daemon (KCM protocol).
@main
struct CCached: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccached",
        abstract: "In-memory Kerberos credential cache daemon speaking the KCM protocol.",
        discussion: """
            Runs in the foreground and serves MIT and Heimdal clients (KRB5CCNAME=KCM:) on a Unix \
            socket. Only the daemon's own user and root may use it. Logs go to standard error. \
            SIGTERM or SIGINT stops it: the socket is removed and every credential is wiped.
            """)

    @Option(
        name: .long,
        help: "The Unix socket to listen on. Its directory is created 0700 if missing. With systemd socket activation, the socket systemd passes is used and this path only names it.")
    var socket: String?

    enum LogTarget: String, ExpressibleByArgument, CaseIterable {
        case auto, stderr, journal
    }

    @Option(name: .long, help: "Where logs go: the journal, stderr, or auto (the journal when stderr is connected to it).")
    var logTarget: LogTarget = .auto

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "The largest request accepted, in bytes.")
    var maxRequestBytes: UInt32 = DaemonConfiguration.defaultMaximumRequestLength

    @Flag(name: .long, help: "Refuse root too; serve only the daemon's own uid.")
    var denyRoot = false

    @Option(name: .long, help: "Exit after this many seconds with no connections and no caches (0: never).")
    var idleTimeout: UInt32 = DaemonConfiguration.defaultIdleTimeout

    @Option(name: .long, help: "Connections served at once; further ones are closed and logged.")
    var maxConnections: Int = DaemonConfiguration.defaultMaximumConnections

    @Option(name: .long, help: "Seconds a request may take to arrive completely (0: no limit).")
    var requestTimeout: UInt32 = DaemonConfiguration.defaultRequestTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write READY (or EXISTS, or ERROR and the reason) to this descriptor once listening, then close it.",
            valueName: "fd"))
    var readyFd: Int32?

    func validate() throws {
        if socket == nil && getenv("LISTEN_FDS") == nil {
            throw ValidationError("--socket PATH is required (unless systemd passes the socket)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        guard maxRequestBytes >= 1024, maxRequestBytes <= 1 << 30 else {
            throw ValidationError("--max-request-bytes must be between 1024 and 1073741824 (1 GiB)")
        }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        if let readyFd, fcntl(readyFd, F_GETFD) < 0 {
            throw ValidationError("--ready-fd \(readyFd) is not an open file descriptor")
        }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let journal = logTarget == .journal || (logTarget == .auto && JournalLogHandler.standardErrorIsJournal)
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournalLogHandler(identifier: "ccached")
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "ccached")
        let daemon = Daemon(
            configuration: DaemonConfiguration(
                socketPath: socket ?? "(socket passed by systemd)", allowsRoot: !denyRoot, maximumRequestLength: maxRequestBytes,
                idleTimeout: idleTimeout, readyDescriptor: readyFd, maximumConnections: maxConnections,
                requestTimeout: requestTimeout),
            logger: logger)
        do {
            try daemon.run()
        } catch {
            logger.critical("cannot serve: \(error)")
            throw ExitCode(1)
        }
    }
}
