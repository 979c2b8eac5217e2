import Glibc
import SystemCalls

/// Why the door cannot start or cannot route one connection, worded for whoever reads the log.
package enum DoorError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A live server already answers on the door's path (sssd-kcm, Heimdal's kcm, another door).
    case occupied(path: String)
    /// Something other than a socket sits on the door's path.
    case notASocket(path: String)
    /// The socket path does not fit in `sun_path`.
    case pathTooLong(path: String)
    /// systemd passed sockets the door cannot use.
    case activation(String)
    /// A system call failed.
    case system(operation: String, errno: Errno)
    /// The peer has no passwd entry: no home, groups or name to start its daemon with.
    case unknownUser(uid: UInt32)
    /// A directory on the way to the user's daemon is unsafe.
    case unsafeDirectory(path: String, problem: String)
    /// The session daemon could not be started (its own words, from `--ready-fd`).
    case daemonStart(String)
    /// The peer is the door itself: a link led one of its connects back to its own socket.
    case selfConnection
    /// The user already has as many daemons as the door starts for one uid.
    case tooManyDaemons(uid: UInt32, limit: Int)

    package var description: String {
        switch self {
        case .occupied(let path):
            "another KCM server already answers on \(path) (sssd-kcm or Heimdal's kcm?). Stop and disable it "
                + "first (e.g. 'systemctl disable --now sssd-kcm.socket sssd-kcm.service'; see Docs/integration.md), "
                + "or give ccached-door another --socket"
        case .notASocket(let path): "\(path) exists and is not a socket; remove it or choose another --socket"
        case .pathTooLong(let path): "the socket path \(path) is longer than a Unix socket address allows (107 bytes)"
        case .activation(let text): text
        case .system(let operation, let code): "\(operation) failed: \(code.message)"
        case .unknownUser(let uid):
            "uid \(uid) has no passwd entry, so no daemon can be started for it (add the user, or check NSS)"
        case .unsafeDirectory(let path, let problem): "refusing to use \(path): \(problem)"
        case .daemonStart(let text): "the session daemon did not start: \(text)"
        case .selfConnection:
            "the peer is ccached-door itself (a symbolic link pointed a session's hand-off socket at the door); "
                + "refusing to route it"
        case .tooManyDaemons(let uid, let limit):
            "uid \(uid) already has \(limit) session daemons, the most ccached-door starts for one user "
                + "(--max-daemons-per-user); not starting another. Each login, cron or at job and the per-user "
                + "daemon count one; they end with what they serve"
        }
    }
}
