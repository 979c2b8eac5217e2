import CSupport
import CredentialStore
import Glibc
import Logging
import SecureMemory
import SessionRuntime
import Synchronization
import SystemCalls
import TicketRenewal

/// The ccached server: listens on a Unix socket and serves every connection on its own thread
/// against one ``CredentialStore`` behind a mutex (``DaemonState``), so each request applies
/// atomically and connections never wait on one another's I/O.
///
/// The main thread only waits: for connections, signals, the end of the login session, and a
/// once-a-second tick for the background duties (purge, idle exit, systemd's watchdog and status).
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

    /// What the main loop waits on.
    private enum WakeSource: Hashable {
        case listener, handoff, signals, loginSession
    }

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
            guard signals >= 0 else { throw DaemonError.system(operation: "signalfd", errno: errno) }
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
        logger.info(
            "listening",
            metadata: [
                "socket": "\(listener.path)", "owner_uid": "\(configuration.ownerUID)",
                "root_allowed": "\(configuration.allowsRoot)", "idle_timeout": "\(configuration.idleTimeout)",
            ])
        reportReadiness("READY")
        var systemd = SystemdIntegration()
        systemd.notify("READY=1\nSTATUS=listening, no caches")
        defer { systemd.notify("STOPPING=1") }

        // ccached-door hands connections over here: a second source of connections, admitted alike.
        let handoff = openHandoff(besides: listener)
        defer { handoff?.close() }
        var wake = PollSet<WakeSource>()
        wake.add(.listener, fileDescriptor: listener.fileDescriptor)
        if let handoff { wake.add(.handoff, fileDescriptor: handoff.fileDescriptor) }
        wake.add(.signals, fileDescriptor: signals)
        // Logout ends the session's tickets: watch the login session when there is one.
        let sessionMonitor = watchedLoginSession()
        if let sessionMonitor {
            logger.info("watching login session \(sessionMonitor.session); its end wipes every cache")
            wake.add(.loginSession, fileDescriptor: sessionMonitor.fileDescriptor)
        }
        var idleExit = IdleExit(limit: configuration.idleTimeout)
        var purge = PurgeSchedule(
            grace: configuration.purgeGrace, interval: configuration.purgeInterval, now: MonotonicClock.seconds())
        if state.renewal.isEnabled {
            let policy = configuration.renewalPolicy
            let percent = Int((policy.thresholdFraction * 100).rounded())
            logger.info("renewing tickets when less than \(percent) % of their lifetime or \(policy.margin) s remains")
        }
        // Woken once a second for the background duties; otherwise poll sleeps.
        let periodic = idleExit.isEnabled || purge.isEnabled || systemd.isActive || state.renewal.isEnabled
        while true {
            let ready: [WakeSource]
            do {
                ready = try wake.wait(timeout: periodic ? 1000 : -1)
            } catch {
                throw .system(operation: "poll", errno: error.rawValue)
            }
            if ready.contains(.loginSession), let sessionMonitor, sessionMonitor.sessionHasEnded() {
                logger.info("login session \(sessionMonitor.session) ended; wiping every cache and exiting")
                return
            }
            let now = MonotonicClock.seconds()
            if purge.tick(now: now) { purgeExpired() }
            state.renewal.tick(store: state.store, now: UInt32(clamping: time(nil)))
            if periodic {
                let (caches, credentials) = state.store.withLock { ($0.cacheCount, $0.credentialCount) }
                systemd.tick(
                    status:
                        "\(caches) cache\(caches == 1 ? "" : "s"), \(credentials) credential\(credentials == 1 ? "" : "s")",
                    nowMicroseconds: MonotonicClock.microseconds())
                let idle = caches == 0 && state.openConnections.load(ordering: .relaxed) == 0
                if idleExit.tick(now: now, idle: idle) {
                    logger.info("exiting after \(idleExit.limit) s with no connections and no caches")
                    return
                }
            }
            if ready.contains(.signals) {
                let signal = ccached_read_signalfd(signals)
                if state.stopRequested.load(ordering: .relaxed) {
                    logger.info("stopping: a client asked (CCACHED_STOP)")
                } else {
                    logger.info("stopping", metadata: ["signal": "\(signal)"])
                }
                return
            }
            if ready.contains(.listener) { acceptOne(from: listener) }
            if ready.contains(.handoff), let handoff { handoff.acceptOne { [admission] fd in admission.admit(fd) } }
        }
    }

    /// The socket systemd passed, or a new one bound at the configured path.
    private func openListener() throws(DaemonError) -> UnixSocketListener {
        if let activated = try SystemdIntegration.activatedSocket() {
            return UnixSocketListener.adopt(fileDescriptor: activated, path: configuration.socketPath)
        }
        return try UnixSocketListener.bind(path: configuration.socketPath)
    }

    /// The hand-off socket beside the daemon's (always, for a socket with an absolute path), or nil
    /// with a warning when it cannot be bound: the daemon still serves its own socket.
    private func openHandoff(besides listener: UnixSocketListener) -> HandoffListener? {
        guard listener.path.hasPrefix("/") else { return nil }
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
        guard let session = configuration.loginSession ?? SessionIdentity.loginSession(ofProcess: 0) else {
            return nil
        }
        return LoginSessionMonitor(session: session)
    }

    private func acceptOne(from listener: UnixSocketListener) {
        do {
            if let fd = try listener.accept() { _ = admission.admit(fd) }
        } catch {
            // Out of descriptors and the like: say so, back off briefly, keep serving.
            logger.error("cannot accept a connection: \(error)")
            usleep(10_000)
        }
    }

    private func purgeExpired() {
        let now = UInt32(truncatingIfNeeded: time(nil))
        let grace = configuration.purgeGrace
        let purged = state.store.withLock { $0.purge(now: now, grace: grace) }
        if purged.credentials > 0 || purged.caches > 0 {
            state.changes.notify()
            logger.info(
                "purged \(purged.credentials) ticket(s) expired over \(grace) s ago and \(purged.caches) cache(s) left without tickets"
            )
        }
    }

    /// Tells whoever started the daemon (through `--ready-fd`) how the start went, once.
    private func reportReadiness(_ word: String) {
        guard let fd = configuration.readyDescriptor else { return }
        let line = Array((word + "\n").utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
