import CCacheDaemon
import CredentialStore
import Glibc
import Logging
import TicketRenewal

/// `ccached`: the per-session in-memory Kerberos credential cache daemon (KCM protocol).
///
/// The options are parsed by hand: the daemon starts once per login session, and a parsing
/// framework would bring Foundation into every one of them (startup time and idle memory, see
/// Docs/performance.md).
@main
struct CCached {
    /// The defaults the help shows are the code's own.
    private static let defaults = DaemonConfiguration(socketPath: "")

    static let usage = """
        USAGE: ccached --socket <path> [options]

        In-memory Kerberos credential cache daemon speaking the KCM protocol. Runs in the foreground \
        and serves MIT and Heimdal clients (KRB5CCNAME=KCM:) on a Unix socket. Only the daemon's own \
        user and root may use it. SIGTERM or SIGINT stops it: the socket is removed and every \
        credential is wiped.

        OPTIONS:
          --socket <path>          The Unix socket to listen on; its directory is created 0700 if
                                   missing. With systemd socket activation, the socket systemd passes
                                   is used and this path only names it.
          --log-level <level>      trace, debug, info (default), notice, warning, error or critical.
          --log-target <target>    journal, stderr, syslog, or auto (default: the journal when stderr is it
                                   or nobody reads stderr; see ccached(8)).
          --max-request-bytes <n>  The largest request accepted (default \(defaults.maximumRequestLength), at most 1 GiB).
          --idle-timeout <s>       Exit after this many seconds with no connections and no caches
                                   (default \(defaults.idleTimeout); 0: never).
          --max-connections <n>    Connections served at once (default \(defaults.maximumConnections)).
          --max-caches <n>         Caches held at once (default \(defaults.storeLimits.maximumCaches)).
          --max-credentials-per-cache <n>
                                   Credentials in one cache (default \(defaults.storeLimits.maximumCredentialsPerCache)).
          --max-credential-bytes <n>
                                   Bytes stored over all caches: credentials, cache names and
                                   principals (default \(defaults.storeLimits.maximumCredentialBytes)).
          --purge-grace <s>        Remove tickets expired longer ago than this, and caches left without
                                   tickets this long (default \(defaults.purgeGrace); 0: never).
          --purge-interval <s>     How often to look (default \(defaults.purgeInterval)).
          --request-timeout <s>    Seconds a request may take to arrive completely (default \(defaults.requestTimeout); 0: no limit).
          --renew, --no-renew      Renew renewable tickets in the background (default: --renew). With
                                   --no-renew nothing renews by itself; 'ccachectl renew' still works.
          --renew-threshold <f>    Renew when less than this fraction of a ticket's lifetime remains
                                   (default \(threeDecimals(defaults.renewalPolicy.thresholdFraction)); 0 < f < 1).
          --renew-margin <s>       ... and at the latest this many seconds before it expires (default \(defaults.renewalPolicy.margin)).
          --ready-fd <fd>          Write READY (or EXISTS, or ERROR and the reason) to this descriptor
                                   once listening, then close it.
          --state-fd <fd>          Restore the caches from this state file (a memfd a daemon of the
                                   same user wrote and died holding) before serving, and keep it;
                                   see Docs/state.md. Default: a new state file.
          --state-from-door        Take the state file from ccached-door over the hand-off socket
                                   (what the door passes to a daemon it starts as a systemd unit):
                                   serve nothing until it came, at most \(DaemonConfiguration.stateFromDoorSeconds) s.
          --no-state               Keep no state file: a crash loses every cache.
          --secret-memory          Hold the credentials in memfd_secret memory, which even the
                                   kernel's direct map lacks, and keep no state file (a crash loses
                                   every cache; SIGUSR2 does not re-execute). Off by default: while
                                   secret memory is in use the machine cannot hibernate. Where the
                                   kernel refuses it, says why and runs as without the option.
          --inherit <list>         What a daemon handed over when it re-executed itself (SIGUSR2,
                                   an upgrade): listen=FD[,handoff=FD][,state=FD][,clients=FD:FD…]
                                   [,handoffs=FD:FD…]; the daemon adopts them instead of binding.
          --check-state-layout <v> Do not serve: exit 0 if this binary reads state files of layout
                                   version v (what a daemon asks before it re-executes).
          --login-session <id>     Wipe and exit when this logind session ends (ccached-door passes it
                                   for daemons it starts outside the session); default: the
                                   daemon's own session, if any.
          --audit-session <n>      Wipe and exit when no process of audit session n is left (a cron or
                                   at job's daemon; checked every 10 s).
          --per-user               Wipe and exit when the user has had no logind session for 30 s and
                                   does not linger (the per-user daemon; only where logind runs).
          --remove-stale           Do not serve: remove the socket and its hand-off socket if no
                                   daemon listens on them (what a daemon's unit runs when it stops).
          --deny-root              Refuse root too; serve only the daemon's own uid.
          -h, --help               Show this help.

        See ccached(8).
        """

    /// `0.333` for a third (no Foundation here, see above).
    static func threeDecimals(_ fraction: Double) -> String {
        let thousandths = Int((fraction * 1000).rounded())
        let digits = String(thousandths % 1000)
        return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - digits.count) + digits
    }

    /// What the command line asked for.
    struct Options {
        var socket: String?
        /// `--remove-stale`: only remove the socket (and its hand-off socket) if nobody listens.
        var removeStaleOnly = false
        var logLevel = Logger.Level.info
        var logTarget = "auto"
        var configuration = DaemonConfiguration(socketPath: "")
        var renewThreshold = DaemonConfiguration.defaultRenewalPolicy.thresholdFraction
        var renewMargin = DaemonConfiguration.defaultRenewalPolicy.margin
    }

    static func parse(_ arguments: [String]) throws(UsageError) -> Options? {
        let parsed = try OptionReader.read(arguments, into: Options()) {
            argument, options, reader throws(UsageError) -> Bool in
            switch argument {
            case "--socket": options.socket = try reader.value(for: argument)
            case "--log-level": options.logLevel = try reader.logLevel(for: argument)
            case "--log-target":
                options.logTarget = try reader.choice(for: argument, among: ["auto", "stderr", "journal", "syslog"])
            case "--max-request-bytes":
                options.configuration.maximumRequestLength = try reader.number(for: argument, in: 1024...(1 << 30))
            case "--idle-timeout":
                options.configuration.idleTimeout = try reader.number(for: argument, in: 0...UInt32.max)
            case "--max-connections":
                options.configuration.maximumConnections = try reader.number(for: argument, in: 1...1_000_000)
            case "--max-caches":
                options.configuration.storeLimits.maximumCaches = try reader.number(for: argument, in: 1...1_000_000)
            case "--max-credentials-per-cache":
                options.configuration.storeLimits.maximumCredentialsPerCache = try reader.number(
                    for: argument, in: 1...10_000_000)
            case "--max-credential-bytes":
                options.configuration.storeLimits.maximumCredentialBytes = try reader.number(
                    for: argument, in: 1024...(1 << 40))
            case "--purge-grace":
                options.configuration.purgeGrace = try reader.number(for: argument, in: 0...UInt32.max)
            case "--purge-interval":
                options.configuration.purgeInterval = try reader.number(for: argument, in: 1...86_400)
            case "--request-timeout":
                options.configuration.requestTimeout = try reader.number(for: argument, in: 0...UInt32.max)
            case "--ready-fd":
                let fd: Int32 = try reader.number(for: argument, in: 0...Int32.max)
                guard fcntl(fd, F_GETFD) >= 0 else {
                    throw UsageError(message: "--ready-fd \(fd) is not an open file descriptor")
                }
                options.configuration.readyDescriptor = fd
            case "--login-session":
                let session = try reader.value(for: argument)
                guard !session.isEmpty, session.utf8.count <= 64, !session.contains("/") else {
                    throw UsageError(message: "--login-session takes a logind session id, not '\(session)'")
                }
                options.configuration.loginSession = session
            case "--audit-session":
                options.configuration.auditSession = try reader.number(for: argument, in: 0...(UInt32.max - 1))
            case "--state-fd":
                let fd: Int32 = try reader.number(for: argument, in: 0...Int32.max)
                guard fcntl(fd, F_GETFD) >= 0 else {
                    throw UsageError(message: "--state-fd \(fd) is not an open file descriptor")
                }
                options.configuration.stateDescriptor = fd
            case "--state-from-door": options.configuration.stateFromDoor = true
            case "--no-state": options.configuration.keepsState = false
            case "--secret-memory": options.configuration.secretMemory = true
            case "--inherit":
                let inherited: InheritedDescriptors
                switch InheritedDescriptors.parse(try reader.value(for: argument)) {
                case .success(let value): inherited = value
                case .failure(let error): throw error
                }
                for fd in inherited.all where fcntl(fd, F_GETFD) < 0 {
                    throw UsageError(message: "--inherit: \(fd) is not an open file descriptor")
                }
                options.configuration.inherited = inherited
                if let state = inherited.state { options.configuration.stateDescriptor = state }
            case "--per-user": options.configuration.perUser = true
            case "--remove-stale": options.removeStaleOnly = true
            case "--deny-root": options.configuration.allowsRoot = false
            case "--renew": options.configuration.renewsInBackground = true
            case "--no-renew": options.configuration.renewsInBackground = false
            case "--renew-threshold":
                let text = try reader.value(for: argument)
                guard let fraction = Double(text), fraction > 0, fraction < 1 else {
                    throw UsageError(
                        message:
                            "--renew-threshold must be a fraction between 0 and 1 (exclusive), such as 0.33; got \(text)"
                    )
                }
                options.renewThreshold = fraction
            case "--renew-margin": options.renewMargin = try reader.number(for: argument, in: 0...UInt32.max)
            default: return false
            }
            return true
        }
        guard var options = parsed else { return nil }
        guard options.socket != nil || getenv("LISTEN_FDS") != nil || options.configuration.inherited != nil else {
            throw UsageError(message: "--socket PATH is required (unless systemd passes the socket)")
        }
        options.configuration.socketPath = options.socket ?? "(socket passed by systemd)"
        if options.configuration.stateFromDoor
            && (options.configuration.stateDescriptor != nil || !options.configuration.keepsState)
        {
            throw UsageError(message: "--state-from-door goes with neither --state-fd nor --no-state")
        }
        do {
            options.configuration.renewalPolicy = try RenewalPolicy(
                thresholdFraction: options.renewThreshold, margin: options.renewMargin)
        } catch {
            throw UsageError(message: "\(error)")
        }
        return options
    }

    static func main() {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "--check-state-layout" {
            exit(UInt32(arguments[2]).map { Daemon.readsStateLayout(version: $0) } == true ? 0 : 2)
        }
        let options = OptionReader.parseCommandLine(
            program: "ccached", usage: usage, synopsis: "ccached --socket <path> [options]", parse)
        if options.removeStaleOnly, let socket = options.socket {
            UnixSocketListener.removeStale(socket: socket)
            exit(0)
        }
        let level = options.logLevel
        let target = LogTarget(rawValue: options.logTarget) ?? LogTarget.automatic()
        LoggingSystem.bootstrap { label in
            if target == .journal {
                var handler = JournalLogHandler(identifier: "ccached")
                handler.logLevel = level
                return EscapingLogHandler(handler)
            }
            if target == .syslog {
                var handler = SyslogLogHandler()
                handler.logLevel = level
                return EscapingLogHandler(handler)
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return EscapingLogHandler(handler)
        }
        let logger = Logger(label: "ccached")
        do {
            try Daemon(configuration: options.configuration, logger: logger).run()
        } catch {
            logger.critical("cannot serve: \(error)")
            exit(1)
        }
        exit(0)
    }
}
