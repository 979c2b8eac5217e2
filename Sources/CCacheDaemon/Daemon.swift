import CSupport
import CredentialStore
import Glibc
import KCM
import Logging
import SecureMemory
import Synchronization

/// The ccached server: listens on a Unix socket, authorises each peer by SO_PEERCRED, and serves
/// every connection on its own thread against one ``CredentialStore`` behind a mutex, so each
/// request applies atomically and connections never wait on one another's I/O.
public final class Daemon: Sendable {
    public let configuration: DaemonConfiguration
    private let logger: Logger
    private let store: Mutex<CredentialStore>
    private let authorizer: PeerAuthorizer
    private let openConnections = Atomic<Int>(0)
    /// For `ccachectl status`: the largest request body accepted, and what each limit enforced
    /// here (not in the store) refused since the start.
    private let largestRequest = Atomic<Int>(0)
    private let oversizedRequests = Atomic<Int>(0)
    private let refusedConnections = Atomic<Int>(0)
    private let stalledRequests = Atomic<Int>(0)
    private let startedAt = UInt64(time(nil))
    private let pid = UInt32(getpid())

    public init(configuration: DaemonConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.store = Mutex(CredentialStore(ownerUID: configuration.ownerUID, limits: configuration.storeLimits))
        self.authorizer = PeerAuthorizer(ownerUID: configuration.ownerUID, allowsRoot: configuration.allowsRoot)
    }

    /// Listens and serves until SIGTERM, SIGINT or SIGHUP, or until idle (no connections and no
    /// caches) for the idle timeout; then stops listening, removes the socket, wipes the store and
    /// returns. If another daemon already answers on the socket, returns at once (nothing to do).
    public func run() throws(DaemonError) {
        // Before any credential arrives: no core file, and no ptrace or /proc/PID/mem by our own uid.
        if ccached_forbid_core_dumps() != 0 {
            let error = DaemonError.system(operation: "prctl(PR_SET_DUMPABLE, 0)", errno: errno)
            reportReadiness("ERROR \(error)")
            throw error
        }
        signal(SIGPIPE, SIG_IGN)
        SecureArena.shared.setLockFailureHandler { [logger] error, limit in
            let allowed = limit.map { "\($0 / 1024) KiB" } ?? "unlimited"
            logger.warning(
                "cannot lock more credential memory in RAM (\(errorText(error)); RLIMIT_MEMLOCK is \(allowed)): credentials stored from now on may be written to swap. Raise the limit (LimitMEMLOCK= in the unit, or ulimit -l) to keep them in RAM."
            )
        }
        let fileLimit = ccached_raise_descriptor_limit()
        if fileLimit >= 0 && fileLimit < configuration.maximumConnections + 16 {
            logger.notice(
                "only \(fileLimit) open files are allowed (RLIMIT_NOFILE); fewer than --max-connections \(configuration.maximumConnections) connections can be served")
        }
        // Blocked before any thread starts, so only this thread ever sees these signals.
        let signals = ccached_termination_signalfd()
        guard signals >= 0 else {
            let error = DaemonError.system(operation: "signalfd", errno: errno)
            reportReadiness("ERROR \(error)")
            throw error
        }
        defer { close(signals) }

        var systemd = SystemdIntegration()
        let listener: UnixSocketListener
        do {
            if let activated = try SystemdIntegration.activatedSocket() {
                listener = UnixSocketListener.adopt(fileDescriptor: activated, path: configuration.socketPath)
            } else {
                listener = try UnixSocketListener.bind(path: configuration.socketPath)
            }
        } catch .alreadyRunning(let path) {
            logger.notice("a ccached daemon already answers at \(path); leaving it be")
            reportReadiness("EXISTS")
            return
        } catch {
            reportReadiness("ERROR \(error)")
            throw error
        }
        defer { listener.close() }
        logger.info(
            "listening",
            metadata: [
                "socket": "\(listener.path)", "owner_uid": "\(configuration.ownerUID)",
                "root_allowed": "\(configuration.allowsRoot)", "idle_timeout": "\(configuration.idleTimeout)",
            ])
        reportReadiness("READY")
        systemd.notify("READY=1\nSTATUS=listening, no caches")
        defer { systemd.notify("STOPPING=1") }
        // Logout ends the session's tickets: watch the login session when there is one.
        let sessionMonitor = LoginSessionMonitor(session: configuration.loginSession)
        if let sessionMonitor {
            logger.info("watching login session \(sessionMonitor.session); its end wipes every cache")
        }

        var descriptors = [
            pollfd(fd: listener.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
        ]
        if let sessionMonitor {
            descriptors.append(pollfd(fd: sessionMonitor.fileDescriptor, events: Int16(POLLIN), revents: 0))
        }
        // ccached-door hands connections over here (contract: always bound, root peers only).
        var handoff: HandoffListener?
        do {
            if listener.path.hasPrefix("/") {
                handoff = try HandoffListener.bind(besides: listener.path, logger: logger)
            }
        } catch {
            logger.warning("no hand-off socket, so ccached-door cannot reach this daemon: \(error)")
        }
        defer { handoff?.close() }
        let handoffIndex = descriptors.count
        if let handoff { descriptors.append(pollfd(fd: handoff.fileDescriptor, events: Int16(POLLIN), revents: 0)) }
        let idleLimit = configuration.idleTimeout
        // Woken once a second for the idle timeout, the watchdog and STATUS=; otherwise poll sleeps.
        let purging = configuration.purgeGrace > 0
        var nextPurge = monotonicSeconds() + UInt64(configuration.purgeInterval)
        let periodic =
            idleLimit > 0 || purging || systemd.watchdogMicroseconds != nil || getenv("NOTIFY_SOCKET") != nil
        let pollTimeout: Int32 = periodic ? 1000 : -1
        var idleSince: UInt64?
        while true {
            let ready = poll(&descriptors, nfds_t(descriptors.count), pollTimeout)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .system(operation: "poll", errno: errno)
            }
            if sessionMonitor != nil, descriptors[2].revents != 0, let sessionMonitor,
                sessionMonitor.sessionHasEnded()
            {
                logger.info("login session \(sessionMonitor.session) ended; wiping every cache and exiting")
                break
            }
            if purging, monotonicSeconds() >= nextPurge {
                nextPurge = monotonicSeconds() + UInt64(max(1, configuration.purgeInterval))
                let now = UInt32(truncatingIfNeeded: time(nil))
                let purged = store.withLock { $0.purge(now: now, grace: configuration.purgeGrace) }
                if purged.credentials > 0 || purged.caches > 0 {
                    logger.info(
                        "purged \(purged.credentials) ticket(s) expired over \(configuration.purgeGrace) s ago and \(purged.caches) cache(s) left without tickets")
                }
            }
            if periodic {
                let counts = store.withLock { ($0.cacheCount, $0.credentialCount) }
                systemd.tick(
                    status: "\(counts.0) cache\(counts.0 == 1 ? "" : "s"), \(counts.1) credential\(counts.1 == 1 ? "" : "s")",
                    nowMicroseconds: monotonicSeconds() * 1_000_000)
            }
            if idleLimit > 0 {
                let idle = openConnections.load(ordering: .relaxed) == 0 && store.withLock { $0.cacheCount == 0 }
                let now = monotonicSeconds()
                if !idle {
                    idleSince = nil
                } else if let since = idleSince {
                    if now - since >= UInt64(idleLimit) {
                        logger.info("exiting after \(idleLimit) s with no connections and no caches")
                        break
                    }
                } else {
                    idleSince = now
                }
            }
            if descriptors[1].revents != 0 {
                let number = ccached_read_signalfd(signals)
                logger.info("stopping", metadata: ["signal": "\(number)"])
                break
            }
            if let handoff, descriptors[handoffIndex].revents != 0 {
                handoff.acceptOne { [self] fd in startConnection(fd) }
            }
            if descriptors[0].revents != 0 {
                do {
                    if let fd = try listener.accept() { startConnection(fd) }
                } catch {
                    // Out of descriptors and the like: say so, back off briefly, keep serving.
                    logger.error("cannot accept a connection: \(error)")
                    usleep(10_000)
                }
            }
        }
        store.withLock { $0.destroyAll() }
        // Every credential block was zeroed as the store let go of it; zero whatever a connection
        // still held as well.
        SecureArena.shared.wipeEverything()
    }

    /// The daemon's side of CCACHED_STATUS, as of now.
    private func serverFacts() -> ServerFacts {
        ServerFacts(
            pid: pid, startedAt: startedAt, connections: UInt32(clamping: openConnections.load(ordering: .relaxed)),
            idleTimeout: configuration.idleTimeout, maximumRequestLength: configuration.maximumRequestLength,
            largestRequestLength: UInt32(clamping: largestRequest.load(ordering: .relaxed)),
            oversizedRequests: UInt64(clamping: oversizedRequests.load(ordering: .relaxed)),
            maximumConnections: UInt32(clamping: configuration.maximumConnections),
            refusedConnections: UInt64(clamping: refusedConnections.load(ordering: .relaxed)),
            requestTimeout: configuration.requestTimeout,
            stalledRequests: UInt64(clamping: stalledRequests.load(ordering: .relaxed)),
            credentialMemory: SecureArena.shared.statistics, memlockLimit: Self.memlockLimit())
    }

    /// The soft `RLIMIT_MEMLOCK` in bytes, `UInt64.max` when unlimited — as for root, whose
    /// CAP_IPC_LOCK lets it lock past the limit.
    private static func memlockLimit() -> UInt64 {
        geteuid() == 0 ? .max : SecureArena.memlockLimit ?? .max
    }

    /// Serves `fd` on its own thread; false when it was refused (and closed).
    @discardableResult
    private func startConnection(_ fd: Int32) -> Bool {
        let peer: PeerCredentials
        do {
            peer = try PeerCredentials.of(socket: fd)
        } catch {
            logger.warning("closing a connection whose peer cannot be identified: \(error)")
            close(fd)
            return false
        }
        var connectionLogger = logger
        connectionLogger[metadataKey: "peer_pid"] = "\(peer.pid)"
        connectionLogger[metadataKey: "peer_uid"] = "\(peer.uid)"
        let authorized = authorizer.isAuthorized(peer)
        if !authorized {
            connectionLogger.warning(
                "peer uid \(peer.uid) is neither the owner (uid \(configuration.ownerUID)) nor root; every request will be refused with KRB5_FCC_PERM"
            )
        }
        let logger = connectionLogger
        let open = openConnections.load(ordering: .relaxed)
        if open >= configuration.maximumConnections {
            logger.warning(
                "refusing a connection: \(open) are open, the limit (--max-connections) is \(configuration.maximumConnections)")
            refusedConnections.add(1, ordering: .relaxed)
            close(fd)
            return false
        }
        openConnections.add(1, ordering: .relaxed)
        let result = ConnectionThread.start(stackSize: configuration.threadStackSize) { [self] in
            serve(fd, authorized: authorized, logger: logger)
            openConnections.subtract(1, ordering: .relaxed)
        }
        if result != 0 {
            openConnections.subtract(1, ordering: .relaxed)
            logger.error("cannot start a thread for a connection: \(errorText(result)); closing it")
            close(fd)
            return false
        }
        return true
    }

    /// Reads frames and answers each one until the peer closes. Runs on the connection's thread.
    private func serve(_ fd: Int32, authorized: Bool, logger: Logger) {
        defer { close(fd) }
        logger.debug("connection opened")
        var decoder = KCMFrameDecoder(maximumLength: configuration.maximumRequestLength)
        // Left uninitialised: only the pages a read actually fills become resident, so a thousand
        // idle connections do not cost a thousand zeroed 64 KiB buffers.
        var input = [UInt8](unsafeUninitializedCapacity: 65536) { _, count in count = 65536 }
        var reply = KCMReplyWriter()
        // Nothing this connection received or sent outlives it.
        defer {
            input.wipeStorage()
            decoder.wipe()
            reply.wipe()
        }
        // Reads wake at least this often, so that a request left half-sent can be timed out.
        let limit = configuration.requestTimeout
        var timeout = timeval(tv_sec: limit > 0 ? Int(limit) : 0, tv_usec: 0)
        if limit > 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        var frameStarted: UInt64?
        /// Whether the request under way has taken longer than the limit (and says so).
        func stalled() -> Bool {
            guard limit > 0, let started = frameStarted, monotonicSeconds() - started >= UInt64(limit) else {
                return false
            }
            logger.warning("closing a connection whose request stayed incomplete for \(limit) s (--request-timeout)")
            stalledRequests.add(1, ordering: .relaxed)
            return true
        }
        while true {
            let count = input.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                // Idle between requests is fine; a request stalled midway is not.
                if stalled() { return }
                continue
            }
            guard count > 0 else { break }
            decoder.append(input[0..<count])
            input.withUnsafeMutableBytes { SecureArena.wipe($0.baseAddress!, count: count) }
            while let frame = decoder.nextFrame() {
                reply.reset()
                let outcome: RequestOutcome
                switch frame {
                case .request(let body):
                    // Read first: the shared cache line is written only when a record is set.
                    if body.count > largestRequest.load(ordering: .relaxed) {
                        largestRequest.max(body.count, ordering: .relaxed)
                    }
                    outcome = store.withLock { store in
                        // The facts are gathered only for a CCACHED_STATUS request.
                        RequestDispatcher.respond(
                            to: body, authorized: authorized, store: store, server: serverFacts(), reply: &reply)
                    }
                    // The stored credential is a copy in secure memory; the request's bytes go now.
                    body.wipeStorage()
                case .oversized(let length):
                    oversizedRequests.add(1, ordering: .relaxed)
                    outcome = RequestDispatcher.respondToOversized(
                        length: length, limit: configuration.maximumRequestLength, reply: &reply)
                    logger.warning("refused an oversized request: \(outcome.problem ?? "")")
                }
                if outcome.problem != nil && outcome.status != .ccNotFound && outcome.status != .fccNoFile {
                    logger.notice("\(outcome)")
                } else {
                    logger.debug("\(outcome)")
                }
                guard writeAll(fd, reply.bytes) else {
                    logger.debug("connection lost while replying")
                    return
                }
                // Zeroes the payload now rather than at the next request: an idle connection keeps
                // no copy of the credentials it was sent.
                reply.reset()
            }
            if !decoder.isMidFrame {
                frameStarted = nil
            } else if frameStarted == nil {
                frameStarted = monotonicSeconds()
            } else if stalled() {
                return
            }
        }
        logger.debug("connection closed")
    }

    /// Tells whoever started the daemon (through `--ready-fd`) how the start went, once.
    private func reportReadiness(_ word: String) {
        guard let fd = configuration.readyDescriptor else { return }
        let line = Array((word + "\n").utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    private func monotonicSeconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec)
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var sent = 0
            while sent < buffer.count {
                let n = send(fd, buffer.baseAddress! + sent, buffer.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                sent += n
            }
            return true
        }
    }
}
