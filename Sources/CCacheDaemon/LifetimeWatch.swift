import CSupport
import Glibc
import SessionRuntime
import Synchronization

/// What ends a daemon besides a signal, a stop request, idle exit and the end of its login session:
/// its socket gone from the file system (nobody can reach it any more), the end of the job it serves
/// (`--audit-session`), or, for the per-user daemon (`--per-user`), its user having no login left.
/// Driven by ``tick(now:)`` once a second; it looks every ``DaemonConfiguration/lifetimeCheckInterval``
/// seconds, through ``Probe`` so that tests can answer for the system.
struct LifetimeWatch {
    /// What the watch asks the system.
    struct Probe {
        /// Whether the daemon's socket is still its own at its path.
        var socketIsInPlace: () -> Bool
        /// Whether a process (other than this daemon) of the audit session is left.
        var auditSessionHasProcesses: (UInt32) -> Bool
        /// Whether the user has a logind session, or lingers; nil when logind does not run (then the
        /// per-user daemon has nothing to be tied to, and ends only when idle).
        var userHasLogin: () -> Bool?
        /// Whether a PAM session is attached (CCACHED_ATTACH) to the daemon.
        var hasAttachedSessions: () -> Bool
    }

    /// Why the daemon ends, for the log.
    enum Ending: Equatable, CustomStringConvertible {
        case socketGone(String)
        case jobEnded(UInt32)
        case noLogin(UInt32, grace: UInt32)

        var description: String {
            switch self {
            case .socketGone(let path): "its socket \(path) was removed or replaced, so no client can reach it"
            case .jobEnded(let session): "no process of audit session \(session) (the job it served) is left"
            case .noLogin(let uid, let grace):
                "uid \(uid) has had no login for \(grace) s and does not linger ('loginctl enable-linger' keeps it)"
            }
        }
    }

    let socketPath: String
    let uid: UInt32
    let auditSession: UInt32?
    let perUser: Bool
    let interval: UInt32
    let grace: UInt32
    let probe: Probe
    private var nextCheck: UInt64?
    private var withoutLoginSince: UInt64?

    init(configuration: DaemonConfiguration, probe: Probe) {
        socketPath = configuration.socketPath
        uid = configuration.ownerUID
        auditSession = configuration.auditSession
        perUser = configuration.perUser
        interval = max(1, configuration.lifetimeCheckInterval)
        grace = configuration.perUserGrace
        self.probe = probe
    }

    /// Looks, when a check is due at `now` (monotonic seconds); returns why the daemon must end.
    mutating func tick(now: UInt64) -> Ending? {
        if let nextCheck, now < nextCheck { return nil }
        nextCheck = now + UInt64(interval)
        if !probe.socketIsInPlace() { return .socketGone(socketPath) }
        if let auditSession, !probe.auditSessionHasProcesses(auditSession) { return .jobEnded(auditSession) }
        if perUser {
            if probe.userHasLogin() == false && !probe.hasAttachedSessions() {
                let since = withoutLoginSince ?? now
                withoutLoginSince = since
                if now - since >= UInt64(grace) { return .noLogin(uid, grace: grace) }
            } else {
                withoutLoginSince = nil
            }
        }
        return nil
    }
}

extension LifetimeWatch.Probe {
    /// The system's answers for a daemon listening on `listener`, serving `uid`, with `state`.
    static func system(listener: UnixSocketListener, uid: UInt32, state: DaemonState) -> Self {
        Self(
            socketIsInPlace: { listener.isInPlace() },
            auditSessionHasProcesses: { SessionLiveness.anyProcess(inAuditSession: $0, excluding: getpid()) },
            userHasLogin: { SessionLiveness.userHasLogin(uid: uid) },
            hasAttachedSessions: { state.attachedSessions.load(ordering: .relaxed) > 0 })
    }
}
