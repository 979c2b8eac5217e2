import Glibc
import Logging
import SecureMemory
import Synchronization
import SystemCalls

/// A connection admitted and counted: its socket, its protocol state and its logger. Whoever holds
/// it serves it, then gives it back with ``ConnectionAdmission/finish(_:)``.
struct AdmittedConnection: Sendable {
    let fileDescriptor: Int32
    var session: ConnectionSession
    let logger: Logger
}

/// Takes a connected socket — accepted from the daemon's listener, or handed over by the front
/// door — identifies its peer and applies the connection limits. The daemon's event loop serves
/// what it admits (``ServedConnections``) and moves a connection to a thread of its own when it
/// must wait (``serveOnThread(_:backlog:)``).
final class ConnectionAdmission: Sendable {
    let state: DaemonState
    let logger: Logger
    /// Connections of refused peers open now. They never count against the owner's
    /// `--max-connections`, and have a small cap of their own.
    private let refusedOpen = Atomic<Int>(0)
    /// When the last "refused peer" warning was logged (monotonic seconds), to rate-limit them.
    private let lastRefusalWarning = Atomic<UInt64>(0)

    /// Refused peers served at once; more are closed at once.
    static let refusedPeerLimit = 64
    /// At most one warning about a refused peer in this many seconds.
    static let refusalWarningInterval: UInt64 = 10

    init(state: DaemonState, logger: Logger) {
        self.state = state
        self.logger = logger
    }

    /// Identifies `fd`'s peer and counts the connection, or closes it (peer unknown, over a
    /// limit) and returns nil.
    func admit(_ fd: Int32) -> AdmittedConnection? {
        let peer: PeerCredentials
        do throws(Errno) {
            peer = try PeerCredentials(socket: fd)
        } catch {
            logger.warning(
                "closing a connection whose peer cannot be identified: getsockopt(SO_PEERCRED) failed: \(error)")
            close(fd)
            return nil
        }
        var connectionLogger = logger
        connectionLogger[metadataKey: "peer_pid"] = "\(peer.pid)"
        connectionLogger[metadataKey: "peer_uid"] = "\(peer.uid)"
        let session = ConnectionSession(peer: peer, state: state, logger: connectionLogger)
        let authorized = session.isAuthorized
        let limit = authorized ? state.configuration.maximumConnections : Self.refusedPeerLimit
        if !authorized { warnAboutRefusedPeer(peer, logger: connectionLogger) }
        let open = openCount(authorized: authorized)
        if open >= limit {
            if session.isAuthorized {
                connectionLogger.warning(
                    "refusing a connection: \(open) are open, the limit (--max-connections) is \(limit)")
                state.refusedConnections.add(1, ordering: .relaxed)
            }
            close(fd)
            return nil
        }
        adjustOpenCount(authorized: authorized, by: 1)
        connectionLogger.debug("connection opened")
        return AdmittedConnection(fileDescriptor: fd, session: session, logger: connectionLogger)
    }

    /// Zeroes what the connection holds, closes it and stops counting it.
    func finish(_ connection: AdmittedConnection) {
        var session = connection.session
        session.wipe()
        close(connection.fileDescriptor)
        adjustOpenCount(authorized: session.isAuthorized, by: -1)
        connection.logger.debug("connection closed")
    }

    /// Serves the connection on a thread of its own until it ends (``ConnectionLoop``), sending
    /// `backlog` first. Returns false, having finished it, when no thread could be started.
    func serveOnThread(_ connection: AdmittedConnection, backlog: [UInt8] = []) -> Bool {
        let timeout = state.configuration.requestTimeout
        let logger = connection.logger
        // The thread takes the connection out of the hand-over, so the one copy it serves is the
        // only one: a reply frame sent (its credentials referenced from the store) or a connection
        // ended is let go of at once, not kept by the closure for as long as the thread lives.
        let handover = Handover(connection, backlog: backlog)
        let result = ConnectionThread.start(stackSize: state.configuration.threadStackSize) { [self] in
            guard var (served, backlog) = handover.take() else { return }
            ConnectionLoop.serve(
                served.fileDescriptor, session: &served.session, backlog: backlog, requestTimeout: timeout,
                logger: served.logger)
            backlog = []
            finish(served)
        }
        if result != 0 {
            logger.error(
                "cannot start a thread for a connection that must wait: \(Errno(rawValue: result)); closing it")
            if let (connection, backlog) = handover.take() {
                backlog.wipeStorage()
                finish(connection)
            }
            return false
        }
        return true
    }

    /// A connection on its way to the thread that serves it, taken out exactly once.
    private final class Handover: Sendable {
        private let contents: Mutex<(AdmittedConnection, [UInt8])?>

        init(_ connection: AdmittedConnection, backlog: [UInt8]) {
            contents = Mutex((connection, backlog))
        }

        func take() -> (AdmittedConnection, [UInt8])? {
            contents.withLock { $0.take() }
        }
    }

    private func openCount(authorized: Bool) -> Int {
        authorized ? state.openConnections.load(ordering: .relaxed) : refusedOpen.load(ordering: .relaxed)
    }

    private func adjustOpenCount(authorized: Bool, by delta: Int) {
        if authorized {
            state.openConnections.add(delta, ordering: .relaxed)
        } else {
            refusedOpen.add(delta, ordering: .relaxed)
        }
    }

    private func warnAboutRefusedPeer(_ peer: PeerCredentials, logger: Logger) {
        let now = MonotonicClock.seconds()
        let last = lastRefusalWarning.load(ordering: .relaxed)
        guard last == 0 || now - last >= Self.refusalWarningInterval,
            lastRefusalWarning.compareExchange(expected: last, desired: max(now, 1), ordering: .relaxed).exchanged
        else { return }
        logger.warning(
            "peer uid \(peer.uid) is neither the owner (uid \(state.configuration.ownerUID)) nor root; every request will be refused with KRB5_FCC_PERM (further refusals are logged at most every \(Self.refusalWarningInterval) s)"
        )
    }
}
