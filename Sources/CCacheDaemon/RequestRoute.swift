import KCM
import Synchronization

/// How the daemon answers a decoded request: the one place each opcode is sorted into an operation
/// on the caches, one on the daemon itself, or one that waits. Decided on the event loop, once per
/// request, before any lock is taken; nothing after it looks at the opcode again.
enum RequestRoute: Sendable {
    /// Applied to the caches under the store's lock (``RequestDispatcher/perform(_:store:)``).
    case store(KCMRequest)
    /// Answered from the daemon's own state (``RequestDispatcher/perform(_:daemon:)``).
    case daemon(DaemonOperation)
    /// Waits (for a change, for the KDC) with no lock held: on a thread of the connection's own,
    /// never on the event loop.
    case waiting(WaitingOperation)

    /// Routes `request`; an opcode this daemon does not implement is refused here.
    init(_ request: KCMRequest) throws(RequestFailure) {
        switch request {
        case .noop, .genNew, .initialize, .destroy, .store, .retrieve, .getPrincipal, .getCredUUIDList,
            .getCredByUUID, .removeCred, .setFlags, .moveCache, .getCacheUUIDList, .getCacheByUUID, .getDefaultCache,
            .setDefaultCache, .getKDCOffset, .setKDCOffset, .getCredList, .replace:
            self = .store(request)
        case .daemonStatus: self = .daemon(.status)
        case .renewalState: self = .daemon(.renewalState)
        case .stop: self = .daemon(.stop)
        case .attachSession: self = .daemon(.attachSession)
        case .detachSession: self = .daemon(.detachSession)
        case .watch(let watch): self = .waiting(.watch(watch))
        case .renew(let renew): self = .waiting(.renew(renew))
        case .unsupported(let opcode): throw .unsupportedOpcode(opcode)
        }
    }
}

/// ccached's own requests about the daemon rather than the caches.
enum DaemonOperation: Sendable {
    /// CCACHED_STATUS.
    case status
    /// CCACHED_RENEWAL_STATE.
    case renewalState
    /// CCACHED_STOP: answered with the pid, then the daemon stops.
    case stop
    /// CCACHED_ATTACH: one more login session uses the daemon.
    case attachSession
    /// CCACHED_DETACH: one fewer; at none the daemon stops.
    case detachSession

    /// Why the daemon stops once `reply` to this operation is sent, if it does.
    func stopReason(after reply: KCMReply) -> DaemonState.StopReason? {
        switch (self, reply) {
        case (.stop, _): .stopAsked
        case (.detachSession, .attachedSessions(0)): .lastSessionDetached
        default: nil
        }
    }
}

/// The requests whose answer waits: never answered on the event loop.
enum WaitingOperation: Sendable {
    /// CCACHED_WATCH waits for a change to the collection.
    case watch(KCMWatch.Request)
    /// CCACHED_RENEW waits for the renewal worker and the KDC.
    case renew(KCMRenew.Request)
}

/// What the dispatcher asks of the daemon for a ``DaemonOperation``: the facts and counters kept
/// outside the caches. ``DaemonState`` provides them; a test can provide others.
protocol DaemonOperations {
    /// The CCACHED_STATUS payload.
    func status() -> KCMDaemonStatus
    /// The CCACHED_RENEWAL_STATE payload.
    func renewalState() -> KCMRenewalState
    /// The daemon's pid, for CCACHED_STOP's reply.
    var processID: UInt32 { get }
    /// Counts one more login session; returns how many there are.
    func attachSession() -> Int
    /// Counts one fewer (never below 0); returns how many remain.
    func detachSession() -> Int
}

extension DaemonState: DaemonOperations {
    func status() -> KCMDaemonStatus { store.withLock { status(of: $0) } }
    func renewalState() -> KCMRenewalState { store.withLock { renewal.state(of: $0) } }
}
