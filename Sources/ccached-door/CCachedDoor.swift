import CCacheDaemon
import CCacheDoor
import CSupport
import CSystemd
import Glibc
import Logging
import SystemCalls

/// `ccached-door`: the root front door on the standard KCM socket. Parsing and wiring only; the
/// routing is ``Door`` in CCacheDoor.
@main
struct CCachedDoor {
    static let usage = """
        USAGE: ccached-door [options]

        Listens on the standard KCM socket (/run/.heim_org.h5l.kcm-socket, mode 0666) as root and hands \
        every connection, unread, to the ccached daemon of the peer's user and login session, starting \
        that daemon (as the user) when none answers. Adopts the socket systemd passes (LISTEN_FDS). \
        Refuses to start when another KCM server already answers on the path.

        OPTIONS:
          --socket <path>            Where to listen (default /run/.heim_org.h5l.kcm-socket).
          --ccached <path>           The ccached binary to start (default: the one beside ccached-door).
          --routing-timeout <s>      Seconds one connection may take to be routed, a daemon start
                                     included (default 15).
          --max-pending <n>          Connections routed at once (default 1024).
          --max-pending-per-user <n> Connections of one uid routed at once (default 128).
          --daemon-arg <argument>    Pass this argument to every ccached started (repeatable).
          --jobs-share-login         Route cron and at jobs to the user's primary login instead of a
                                     daemon of their own.
          --max-daemons-per-user <n> Session daemons started for one uid at most (default 16).
          --daemon-start <how>       systemd (a transient unit in user-UID.slice), fork (a child of
                                     the door), or auto (default: systemd when it runs the system).
          --log-level <level>        trace, debug, info (default), notice, warning, error or critical.
          --log-target <target>      journal, stderr, or auto (default: the journal when stderr is it).
          -h, --help                 Show this help.

        See ccached-door(8).
        """

    struct Options {
        var configuration = DoorConfiguration(
            socketPath: DoorConfiguration.standardSocketPath, daemonPath: CCachedDoor.besideMe("ccached"))
        var logLevel = Logger.Level.info
        var logTarget = "auto"
    }

    /// `name` in the directory of this executable (/proc/self/exe).
    static func besideMe(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "/usr/local/bin/" + name }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return name }
        return String(path[...slash]) + name
    }

    static func parse(_ arguments: [String]) throws(UsageError) -> Options? {
        let parsed = try OptionReader.read(arguments, into: Options()) {
            argument, options, reader throws(UsageError) -> Bool in
            switch argument {
            case "--socket": options.configuration.socketPath = try reader.value(for: argument)
            case "--ccached": options.configuration.daemonPath = try reader.value(for: argument)
            case "--routing-timeout":
                options.configuration.routingTimeoutMilliseconds = Int32(
                    try reader.number(for: argument, in: 1...600) * 1000)
            case "--max-pending":
                options.configuration.maximumPending = try reader.number(for: argument, in: 1...1_000_000)
            case "--max-pending-per-user":
                options.configuration.maximumPendingPerUser = try reader.number(for: argument, in: 1...1_000_000)
            case "--daemon-arg": options.configuration.daemonArguments.append(try reader.value(for: argument))
            case "--jobs-share-login": options.configuration.jobsShareLogin = true
            case "--max-daemons-per-user":
                options.configuration.maximumDaemonsPerUser = try reader.number(for: argument, in: 1...100_000)
            case "--daemon-start":
                let text = try reader.value(for: argument)
                guard let method = DoorConfiguration.DaemonStartMethod(rawValue: text) else {
                    throw UsageError(message: "--daemon-start is auto, systemd or fork, not '\(text)'")
                }
                options.configuration.daemonStart = method
            case "--log-level": options.logLevel = try reader.logLevel(for: argument)
            case "--log-target":
                options.logTarget = try reader.choice(for: argument, among: ["auto", "stderr", "journal"])
            default: return false
            }
            return true
        }
        guard let options = parsed else { return nil }
        guard options.configuration.daemonPath.hasPrefix("/") else {
            throw UsageError(message: "--ccached needs an absolute path, not '\(options.configuration.daemonPath)'")
        }
        return options
    }

    static func fail(_ text: String, status: Int32) -> Never {
        let bytes = Array("ccached-door: \(text)\n".utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(status)
    }

    /// The socket systemd passed, if any (``SocketActivation``).
    static func activatedSocket() throws(DoorError) -> Int32? {
        do throws(SocketActivation.Failure) {
            return try SocketActivation.listeningSocket()
        } catch {
            throw .activation(error.message(program: "ccached-door"))
        }
    }

    static func main() {
        // One malloc arena for every thread (glibc makes up to eight per CPU). Routing threads come
        // and go with bursts and each freed into its own arena, which no other reused: the door's
        // resident memory crept up with connections (about 300 KiB per 50,000 from 100 sessions,
        // scripts/bench-door-memory.sh), flat with one arena. Set before any thread starts.
        _ = ccached_limit_malloc_arenas(1)
        let options = OptionReader.parseCommandLine(
            program: "ccached-door", usage: usage, synopsis: "ccached-door [options]", parse)
        guard geteuid() == 0 else {
            fail("must run as root: it starts each user's daemon as that user (see ccached-door(8))", status: 77)
        }
        guard access(options.configuration.daemonPath, X_OK) == 0 else {
            fail(
                "cannot run \(options.configuration.daemonPath): \(Errno.current.message); give --ccached PATH",
                status: 66)
        }
        let level = options.logLevel
        let journal =
            options.logTarget == "journal" || (options.logTarget == "auto" && JournalLogHandler.standardErrorIsJournal)
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournalLogHandler(identifier: "ccached-door")
                handler.logLevel = level
                return EscapingLogHandler(handler)
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return EscapingLogHandler(handler)
        }
        var configuration = options.configuration
        configuration.daemonLogsToJournal = access("/run/systemd/journal/socket", F_OK) == 0
        let logger = Logger(label: "ccached-door")
        let listener: DoorListener
        do {
            if let fd = try activatedSocket() {
                listener = DoorListener.adopt(fileDescriptor: fd, path: configuration.socketPath)
            } else {
                listener = try DoorListener.bind(path: configuration.socketPath)
            }
        } catch {
            fail("cannot listen: \(error)", status: 1)
        }
        defer { listener.close() }
        _ = sd_notify(0, "READY=1\nSTATUS=routing \(listener.path)")
        do {
            try Door(configuration: configuration, logger: logger).run(listener: listener)
        } catch {
            logger.critical("cannot route: \(error)")
            listener.close()
            exit(1)
        }
        listener.close()
        exit(0)
    }
}
