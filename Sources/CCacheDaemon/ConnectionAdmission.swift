import Glibc
import Logging
import Synchronization
import SystemCalls

/// Takes a connected socket — accepted from the daemon's listener, or handed over by the front
/// door — identifies its peer, applies the connection limits and serves it on a thread of its own.
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

    /// Serves `fd` on a new thread, or closes it. Returns whether it is being served.
    func admit(_ fd: Int32) -> Bool {
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
            return false
        }
        adjustOpenCount(authorized: authorized, by: 1)
        let timeout = state.configuration.requestTimeout
        let logger = connectionLogger
        let result = ConnectionThread.start(stackSize: state.configuration.threadStackSize) { [self] in
            var session = session
            ConnectionLoop.serve(fd, session: &session, requestTimeout: timeout, logger: logger)
            close(fd)
            adjustOpenCount(authorized: authorized, by: -1)
        }
        if result != 0 {
            adjustOpenCount(authorized: authorized, by: -1)
            connectionLogger.error("cannot start a thread for a connection: \(Errno(rawValue: result)); closing it")
            close(fd)
            return false
        }
        return true
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
