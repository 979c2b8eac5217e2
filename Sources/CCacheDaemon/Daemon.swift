import CSupport
import CredentialStore
import Glibc
import Logging
import SecureMemory
import SessionRuntime
import StoreState
import Synchronization
import SystemCalls
import TicketRenewal

/// The ccached server: listens on a Unix socket and serves its connections against one
/// ``CredentialStore`` behind a mutex (``DaemonState``), so each request applies atomically.
///
/// The main thread runs one event loop (epoll): it accepts, reads, answers and sends without ever
/// waiting on a connection (``ServedConnections``), and watches signals, the end of the login
/// session and the hand-off from ccached-door, with a once-a-second tick for the background duties
/// (purge, renewal, idle exit, systemd's watchdog and status, request timeouts). A connection that
/// must wait — a CCACHED_WATCH, a CCACHED_RENEW, a reply its socket does not take at once — moves
/// to a thread of its own, so connections never wait on one another's I/O.
public final class Daemon: Sendable {
    public let configuration: DaemonConfiguration
    private let logger: Logger
    private let state: DaemonState
    private let admission: ConnectionAdmission

    public init(configuration: DaemonConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        // The main loop already waits for SIGTERM: a stop request becomes one.
        state = DaemonState(configuration: configuration, logger: logger) { kill(getpid(), SIGTERM) }
        admission = ConnectionAdmission(state: state, logger: logger)
    }

    /// What the main loop waits on besides connections (their tokens: ``ServedConnections``).
    private enum WakeSource: UInt64 {
        case listener, handoff, signals, loginSession
    }

    /// Tokens of the hand-off connections from ccached-door: this bit and the descriptor (below
    /// ``ServedConnections/tokenBase``, above every ``WakeSource``).
    private static let handoffTokenBit: UInt64 = 1 << 31

    /// Listens and serves until SIGTERM, SIGINT or SIGHUP, the end of the login session, or until
    /// idle (no connections and no caches) for the idle timeout; then stops listening, removes the
    /// socket, wipes the store and returns. If another daemon already answers on the socket,
    /// returns at once (nothing to do).
    public func run() throws(DaemonError) {
        // Every credential block is zeroed as the store lets go of it; whatever a connection still
        // holds is zeroed as well, however the loop ends.
        defer {
            state.store.withLock { $0.destroyAll() }
            SecureArena.shared.wipeEverything()
        }
        // Runs first: the worker stops (and an apply in progress ends) before the store is wiped.
        defer { state.renewal.shutdown() }
        let signals: Int32
        let listener: UnixSocketListener
        do throws(DaemonError) {
            try ProcessSetup.prepare(configuration: configuration, logger: logger)
            // Blocked before any thread starts, so only this thread ever sees these signals.
            signals = ccached_termination_signalfd()
            guard signals >= 0 else { throw DaemonError.system(operation: "signalfd", errno: .current) }
            // SIGUSR2: re-execute the installed binary (an upgrade; only root and the owner may send it).
            guard ccached_signalfd_add_reexec(signals) == 0 else {
                throw DaemonError.system(operation: "signalfd", errno: .current)
            }
            listener = try openListener()
        } catch .alreadyRunning(let path) {
            logger.notice("a ccached daemon already answers at \(path); leaving it be")
            reportReadiness("EXISTS")
            return
        } catch {
            reportReadiness("ERROR \(error)")
            throw error
        }
        defer {
            listener.close()
            close(signals)
        }
        // Restored before the first connection is served; wiped first at every normal end below (a
        // crash leaves it for the next daemon). With --state-from-door it comes later, over the
        // hand-off socket, and nothing is served until it came (``StateWait``).
        var stateWait = StateWait(
            deadline: configuration.stateFromDoor
                ? MonotonicClock.seconds() + DaemonConfiguration.stateFromDoorSeconds : nil)
        if !stateWait.isWaiting { openStateJournal(from: configuration.stateDescriptor) }
        defer { wipeStateJournal() }
        logger.info(
            "listening",
            metadata: [
                "socket": "\(listener.path)", "owner_uid": "\(configuration.ownerUID)",
                "root_allowed": "\(configuration.allowsRoot)", "idle_timeout": "\(configuration.idleTimeout)",
            ])
        // ccached-door hands connections over here: a second source of connections, received,
        // admitted and served by this loop. Bound before READY: the door connects to it as soon as
        // the daemon is ready (with --state-from-door, to hand over the state file), and a socket
        // file a killed daemon left there would refuse it meanwhile.
        let handoff = openHandoff(besides: listener)
        defer { handoff?.close() }
        reportReadiness("READY")
        var systemd = SystemdIntegration()
        systemd.notify("READY=1\nSTATUS=listening, no caches")
        defer { systemd.notify("STOPPING=1") }

        let poll: EventPoll
        do {
            poll = try EventPoll()
        } catch {
            throw .system(operation: "epoll", errno: error)
        }
        // The daemon's own socket is watched once the store is what it will serve.
        if !stateWait.isWaiting { try watch(listener.fileDescriptor, as: .listener, in: poll) }
        try watch(signals, as: .signals, in: poll)
        let served = ServedConnections(poll: poll, admission: admission)
        // Runs before the store is wiped: every connection's buffers are zeroed as it closes.
        defer { served.closeAll() }
        defer { for fd in stateWait.takeWaiting() { close(fd) } }
        // Ends the wait for the door's state file: restores it (or makes a state file of its own
        // when `fd` is nil), then serves what waited and the daemon's own socket.
        func endStateWait(restoring fd: Int32?) throws(DaemonError) {
            openStateJournal(from: fd)
            for client in stateWait.takeWaiting() {
                if let connection = admission.admit(client) { served.add(connection) }
            }
            stateWait.deadline = nil
            try watch(listener.fileDescriptor, as: .listener, in: poll)
        }
        if let handoff { try watch(handoff.fileDescriptor, as: .handoff, in: poll) }
        var handoffConnections = HandoffListener.Connections()
        let maximumWaiting = configuration.maximumConnections
        defer { for fd in handoffConnections.removeAll() { close(fd) } }
        if let inherited = configuration.inherited {
            adopt(inherited, into: served, handoffConnections: &handoffConnections, poll: poll)
        }
        /// When a SIGUSR2 asked for a re-exec: the deadline (monotonic ms) for the requests in
        /// flight to finish.
        var reexecDeadline: UInt64?
        // Logout ends the session's tickets: watch the login session when there is one.
        let sessionMonitor = watchedLoginSession()
        if let sessionMonitor {
            logger.info("watching login session \(sessionMonitor.session); its end wipes every cache")
            try watch(sessionMonitor.fileDescriptor, as: .loginSession, in: poll)
        }
        var idleExit = IdleExit(limit: configuration.idleTimeout)
        var lifetime = LifetimeWatch(
            configuration: configuration,
            probe: .system(listener: listener, uid: configuration.ownerUID, state: state))
        if let job = configuration.auditSession {
            logger.info("serving the job of audit session \(job); its end wipes every cache")
        }
        if configuration.perUser { logger.info("the per-user daemon: it ends when its user has no login left") }
        var purge = PurgeSchedule(
            grace: configuration.purgeGrace, interval: configuration.purgeInterval, now: MonotonicClock.seconds())
        if state.renewal.isEnabled {
            let policy = configuration.renewalPolicy
            let percent = Int((policy.thresholdFraction * 100).rounded())
            logger.info("renewing tickets when less than \(percent) % of their lifetime or \(policy.margin) s remains")
        }
        // Woken once a second for the background duties (and to time out half-sent requests);
        // otherwise the loop sleeps until a descriptor is ready.
        // The lifetime checks (the socket still in place, the job, the user's logins) need it too.
        let periodic = true
        var nextTick = MonotonicClock.microseconds() / 1000 + 1000
        while true {
            let ready: ArraySlice<UInt64>
            do throws(Errno) {
                let left = nextTick.subtractingReportingOverflow(MonotonicClock.microseconds() / 1000)
                ready = try poll.wait(timeout: periodic ? (left.overflow ? 0 : Int32(clamping: left.partialValue)) : -1)
            } catch {
                throw .system(operation: "epoll_wait", errno: error)
            }
            if ready.contains(WakeSource.signals.rawValue) {
                let signal = ccached_read_signalfd(signals)
                if signal == SIGUSR2 {
                    if reexecDeadline == nil {
                        logger.notice(
                            "asked to re-execute (SIGUSR2): moving to the installed binary once no request is in flight"
                        )
                        reexecDeadline = MonotonicClock.microseconds() / 1000 + Self.reexecGraceMilliseconds
                    }
                } else {
                    if let reason = state.stopReason {
                        logger.info("\(reason.logLine)")
                    } else {
                        logger.info("stopping", metadata: ["signal": "\(signal)"])
                    }
                    return
                }
            }
            if ready.contains(WakeSource.loginSession.rawValue), let sessionMonitor, sessionMonitor.sessionHasEnded() {
                logger.info("login session \(sessionMonitor.session) ended; wiping every cache and exiting")
                return
            }
            for token in ready {
                if let fd = ServedConnections.descriptor(of: token) {
                    served.serve(fd)
                    continue
                }
                if token & Self.handoffTokenBit != 0, let handoff {
                    let fd = Int32(truncatingIfNeeded: token & (Self.handoffTokenBit - 1))
                    guard handoffConnections.contains(fd) else { continue }
                    var restored: Int32?
                    let handlers = HandoffListener.Handlers(
                        serve: { [admission] client in
                            // Before the state file came, a client waits (answered: it will be served).
                            if stateWait.isWaiting { return stateWait.hold(client, limit: maximumWaiting) }
                            guard let connection = admission.admit(client) else { return false }
                            served.add(connection)
                            // Its request is nearly always there already (the client wrote it
                            // before the door accepted): answered now, not after another epoll_wait.
                            served.serve(client)
                            return true
                        },
                        restore: { file in
                            guard stateWait.isWaiting, restored == nil else {
                                close(file)
                                return false
                            }
                            restored = file
                            return true
                        },
                        stateFile: { [state] in
                            state.store.withLock { _ in state.stateJournal.journal?.file.fileDescriptor }
                        }
                    )
                    let receipt = handoff.receive(on: fd, handlers: handlers)
                    if let restored {
                        logger.info("the state file came from ccached-door")
                        try endStateWait(restoring: restored)
                    }
                    if receipt == .open {
                        handoffConnections.touch(fd, now: MonotonicClock.seconds())
                    } else {
                        handoffConnections.remove(fd)
                        poll.remove(fd)
                        close(fd)
                    }
                    continue
                }
                switch WakeSource(rawValue: token) {
                case .listener: acceptOne(from: listener, into: served)
                case .handoff:
                    guard let fd = handoff?.acceptConnection() else { break }
                    do throws(Errno) {
                        try poll.add(fd, token: Self.handoffTokenBit | UInt64(UInt32(bitPattern: fd)))
                        handoffConnections.add(fd, now: MonotonicClock.seconds())
                    } catch {
                        logger.error("cannot watch a hand-off connection (epoll: \(error)); closing it")
                        close(fd)
                    }
                case .signals, .loginSession, nil: break
                }
            }
            let nowMilliseconds = MonotonicClock.microseconds() / 1000
            if let deadline = reexecDeadline,
                served.allBetweenRequests && state.openConnections.load(ordering: .relaxed) <= served.count
                    || nowMilliseconds >= deadline
            {
                reexecDeadline = nil
                reexecute(
                    listener: listener, handoff: handoff, handoffConnections: Array(handoffConnections.lastUsed.keys),
                    served: served)
            }
            guard periodic, nowMilliseconds >= nextTick else { continue }
            nextTick = nowMilliseconds + 1000
            let now = MonotonicClock.seconds()
            if let deadline = stateWait.deadline, now >= deadline {
                logger.warning(
                    "no state file came from ccached-door within \(DaemonConfiguration.stateFromDoorSeconds) s; serving with a state file of this daemon's own"
                )
                try endStateWait(restoring: nil)
            }
            served.closeStalled(now: now)
            for fd in handoffConnections.removeIdle(now: now) {
                poll.remove(fd)
                close(fd)
            }
            if purge.tick(now: now) { purgeExpired() }
            state.renewal.tick(store: state.store, now: UInt32(clamping: time(nil)))
            let (caches, credentials) = state.store.withLock { ($0.cacheCount, $0.credentialCount) }
            systemd.tick(
                status:
                    "\(caches) cache\(caches == 1 ? "" : "s"), \(credentials) credential\(credentials == 1 ? "" : "s")",
                nowMicroseconds: MonotonicClock.microseconds())
            let idle = caches == 0 && state.openConnections.load(ordering: .relaxed) == 0
            if let ending = lifetime.tick(now: now) {
                logger.info("wiping every cache and exiting: \(ending)")
                return
            }
            if idleExit.tick(now: now, idle: idle) {
                logger.info("exiting after \(idleExit.limit) s with no connections and no caches")
                return
            }
        }
    }

    /// How long a re-exec waits for the requests in flight (and the connections served on threads of
    /// their own) to finish; a connection still in the middle of a request then is closed.
    static let reexecGraceMilliseconds: UInt64 = 2000

    /// Whether this binary reads state files of layout `version` (`--check-state-layout`).
    public static func readsStateLayout(version: UInt32) -> Bool {
        version >= 1 && version <= StateLayout.version
    }

    /// Re-executes the installed binary (SIGUSR2), handing over the listening sockets, the
    /// connections between two requests, the hand-off connections and the state file
    /// (Docs/state.md, "Re-exec"). Returns only when it could not: the daemon then serves on, as before.
    private func reexecute(
        listener: UnixSocketListener, handoff: HandoffListener?, handoffConnections: [Int32],
        served: ServedConnections
    ) {
        func refuse(_ why: String) { logger.error("not re-executing: \(why); this daemon keeps serving") }
        guard let path = Reexecution.installPath() else { return refuse("cannot read /proc/self/exe") }
        guard access(path, X_OK) == 0 else { return refuse("\(path): \(Errno.current)") }
        // A journal that stopped (it emptied its file) would hand the new code an empty store.
        let stateFile = state.store.withLock { _ -> Int32? in
            guard let journal = state.stateJournal.journal, journal.failure == nil else { return nil }
            return journal.file.fileDescriptor
        }
        guard let stateFile else {
            return refuse(
                "there is no state file (--no-state, --secret-memory, or it stopped) to carry the caches over")
        }
        if let why = Reexecution.checkLayout(of: path, version: StateLayout.version) { return refuse(why) }
        let inherited = InheritedDescriptors(
            listener: listener.fileDescriptor, listenerOwnsPath: listener.ownsPath, handoff: handoff?.fileDescriptor,
            state: stateFile, clients: served.descriptorsBetweenRequests, handoffConnections: handoffConnections)
        let arguments = Reexecution.arguments(from: CommandLine.arguments, inheriting: inherited)
        logger.notice(
            "re-executing \(path) with \(inherited.clients.count) connection(s) and the state file (generation \(state.store.withLock { _ in state.stateJournal.journal?.generation ?? 0 }))"
        )
        // Under the store's lock: no thread is in the middle of a change, or of writing the state file.
        let error = state.store.withLock { _ in
            Reexecution.execute(path: path, arguments: arguments, inherited: inherited)
        }
        refuse("execve \(path): \(error)")
    }

    /// Serves what the daemon before the `execve` handed over: its connections and ccached-door's
    /// hand-off connections (the sockets were adopted when opened, the state file restored).
    private func adopt(
        _ inherited: InheritedDescriptors, into served: ServedConnections,
        handoffConnections: inout HandoffListener.Connections, poll: EventPoll
    ) {
        for fd in inherited.clients {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            if let connection = admission.admit(fd) { served.add(connection) }
        }
        for fd in inherited.handoffConnections {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            do throws(Errno) {
                try poll.add(fd, token: Self.handoffTokenBit | UInt64(UInt32(bitPattern: fd)))
                handoffConnections.add(fd, now: MonotonicClock.seconds())
            } catch {
                close(fd)
            }
        }
        logger.notice(
            "re-executed: serving \(served.count) connection(s) and \(inherited.handoffConnections.count) hand-off connection(s) handed over"
        )
    }

    /// Adds one of the loop's own descriptors to its epoll set.
    private func watch(_ fd: Int32, as source: WakeSource, in poll: EventPoll) throws(DaemonError) {
        do throws(Errno) {
            try poll.add(fd, token: source.rawValue)
        } catch {
            throw .system(operation: "epoll", errno: error)
        }
    }

    /// The socket systemd passed, or a new one bound at the configured path.
    private func openListener() throws(DaemonError) -> UnixSocketListener {
        if let inherited = configuration.inherited {
            return UnixSocketListener.adoptInherited(
                fileDescriptor: inherited.listener, path: configuration.socketPath, ownsPath: inherited.listenerOwnsPath
            )
        }
        if let activated = try SystemdIntegration.activatedSocket() {
            return UnixSocketListener.adopt(fileDescriptor: activated, path: configuration.socketPath)
        }
        return try UnixSocketListener.bind(path: configuration.socketPath)
    }

    /// The hand-off socket beside the daemon's (always, for a socket with an absolute path), or nil
    /// with a warning when it cannot be bound: the daemon still serves its own socket.
    private func openHandoff(besides listener: UnixSocketListener) -> HandoffListener? {
        guard listener.path.hasPrefix("/") else { return nil }
        if let fd = configuration.inherited?.handoff {
            return HandoffListener.adoptInherited(fileDescriptor: fd, besides: listener.path, logger: logger)
        }
        do {
            return try HandoffListener.bind(besides: listener.path, logger: logger)
        } catch {
            logger.warning("no hand-off socket, so ccached-door cannot reach this daemon: \(error)")
            return nil
        }
    }

    /// The configured login session (a daemon the front door starts is not inside it), else the
    /// daemon's own, if logind can watch it.
    private func watchedLoginSession() -> LoginSessionMonitor? {
        // A job's or the per-user daemon is not its caller's login's, wherever it was started.
        let own = configuration.auditSession == nil && !configuration.perUser
        guard let session = configuration.loginSession ?? (own ? SessionIdentity.loginSession(ofProcess: 0) : nil)
        else {
            return nil
        }
        return LoginSessionMonitor(session: session)
    }

    private func acceptOne(from listener: UnixSocketListener, into served: ServedConnections) {
        do {
            if let fd = try listener.accept(), let connection = admission.admit(fd) { served.add(connection) }
        } catch {
            // Out of descriptors and the like: say so, back off briefly, keep serving.
            logger.error("cannot accept a connection: \(error)")
            usleep(10_000)
        }
    }

    private func purgeExpired() {
        let now = UInt32(truncatingIfNeeded: time(nil))
        let grace = configuration.purgeGrace
        let purged = state.store.withLock { store in
            let purged = store.purge(now: now, grace: grace)
            if purged.credentials > 0 || purged.caches > 0 { state.saveState(of: store) }
            return purged
        }
        if purged.credentials > 0 || purged.caches > 0 {
            state.changes.notify()
            logger.info(
                "purged \(purged.credentials) ticket(s) expired over \(grace) s ago and \(purged.caches) cache(s) left without tickets"
            )
        }
    }

    /// Opens the state file (Docs/state.md): restores `descriptor` (`--state-fd`, or the door's),
    /// or, when there is none or it cannot be used, makes a new one. Without one the daemon serves
    /// anyway.
    private func openStateJournal(from descriptor: Int32?) {
        // Secret memory keeps no state file: its pages would hold the tickets in ordinary memory.
        // A file handed over is emptied unread (the door then drops it, as an ended daemon's).
        if SecureArena.shared.backing == .secret {
            if let descriptor, let bytes = StateMemoryFile.empty(descriptor), bytes > 0 {
                logger.notice("emptied the state file handed over (\(bytes) bytes) unread: secret memory keeps none")
            }
            return
        }
        guard configuration.keepsState else {
            if let descriptor { close(descriptor) }
            return
        }
        let reservation = StateJournal.reservation(for: configuration.storeLimits)
        let uid = configuration.ownerUID
        if let fd = descriptor {
            do throws(StateFileError) {
                let journal = StateJournal(
                    file: try StateMemoryFile(adopting: fd, reservation: reservation), ownerUID: uid)
                let started = MonotonicClock.microseconds()
                let result = state.store.withLock { store -> Result<StateLoadReport, StateLoadError> in
                    do throws(StateLoadError) {
                        let report = try journal.restore(into: store)
                        state.stateJournal.journal = journal
                        return .success(report)
                    } catch {
                        store.destroyAll()
                        return .failure(error)
                    }
                }
                switch result {
                case .success(let report):
                    let (caches, credentials) = state.store.withLock { ($0.cacheCount, $0.credentialCount) }
                    let took = (MonotonicClock.microseconds() - started) / 1000
                    logger.notice(
                        "restored \(caches) cache(s) and \(credentials) credential(s) from the state file (generation \(report.generation), \(report.records) record(s), \(took) ms)\(report.stoppedAt.map { "; the last change was lost: \($0)" } ?? "")"
                    )
                    return
                case .failure(let error):
                    // Left as it is (a newer daemon may read it); this daemon starts empty with its own.
                    logger.error("not restoring the state file (descriptor \(fd)): \(error); starting with no caches")
                }
            } catch {
                logger.error("cannot use the state descriptor \(fd): \(error); starting with a new state file")
            }
        }
        do throws(StateFileError) {
            let journal = StateJournal(file: try StateMemoryFile.create(reservation: reservation), ownerUID: uid)
            state.store.withLock { _ = try? journal.restore(into: $0) }
            state.attachStateJournal(journal)
        } catch {
            logger.warning("no state file, so a crash loses this daemon's caches: \(error)")
        }
    }

    /// Zeroes and empties the state file: the store is about to be wiped at a normal end.
    private func wipeStateJournal() {
        state.store.withLock { _ in state.stateJournal.journal?.wipe() }
        state.attachStateJournal(nil)
    }

    /// Tells whoever started the daemon (through `--ready-fd`) how the start went, once.
    private func reportReadiness(_ word: String) {
        guard let fd = configuration.readyDescriptor else { return }
        let line = Array((word + "\n").utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

/// A `--state-from-door` daemon's wait for the door's state file: until it came (or the deadline
/// passed), the daemon's own socket is not watched and clients handed off are held, unserved, so
/// that no client is ever served from an empty store that the state file would then replace.
struct StateWait {
    /// When the daemon stops waiting (monotonic seconds); nil: not waiting.
    var deadline: UInt64?
    /// Clients handed off meanwhile, served once the state is restored.
    private var waiting: [Int32] = []

    init(deadline: UInt64?) { self.deadline = deadline }

    var isWaiting: Bool { deadline != nil }

    /// Holds a client handed off during the wait; false (and closed) beyond `limit` of them.
    mutating func hold(_ client: Int32, limit: Int) -> Bool {
        guard waiting.count < limit else {
            close(client)
            return false
        }
        waiting.append(client)
        return true
    }

    /// The clients held, forgotten here.
    mutating func takeWaiting() -> [Int32] {
        defer { waiting = [] }
        return waiting
    }
}
