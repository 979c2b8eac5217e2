import CSupport
import Glibc
import SessionRuntime
import SystemCalls

/// Where the daemon of one (uid, session) lives, by the rules every part of ccached shares
/// (contract: `<base>/ccached/<session key>/.heim_org.h5l.kcm-socket`, hand-off socket beside it).
///
/// The base is `/run/user/N` when it exists and is owned by N; otherwise `/run/ccached/N`, which
/// the door (root) creates: `/run/ccached` root:root 0755, `/run/ccached/N` N:gid 0700. Everything
/// below the base belongs to the user and is created by the daemon's process after the privilege
/// drop, never by root: root never creates or follows anything inside a directory a user controls.
public struct SessionDaemonLocation: Sendable, Hashable {
    public let base: String
    public let directory: String
    public let socket: String
    public var handoffSocket: String { socket + ".handoff" }
    /// Whether `/run/user/N` is the base (it is then also the daemon's `XDG_RUNTIME_DIR`).
    public let isUserRuntimeDirectory: Bool

    /// Computes the location, creating `/run/ccached/N` when `/run/user/N` is missing.
    /// `runRoot` is `/run` outside tests.
    public static func prepare(for account: UserAccount, session: SessionIdentity, runRoot: String = "/run")
        throws(DoorError) -> SessionDaemonLocation
    {
        let runUser = runRoot + "/user/\(account.uid)"
        var info = stat()
        let base: String
        let isRunUser: Bool
        if lstat(runUser, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == account.uid {
            base = runUser
            isRunUser = true
        } else {
            base = try ensureFallbackBase(for: account, runRoot: runRoot)
            isRunUser = false
        }
        let directory = base + "/ccached/" + session.key
        let socket = directory + "/" + SessionPaths.socketName
        guard (socket + ".handoff").utf8.count < 108 else { throw .pathTooLong(path: socket + ".handoff") }
        return SessionDaemonLocation(
            base: base, directory: directory, socket: socket, isUserRuntimeDirectory: isRunUser)
    }

    /// `/run/ccached/N`, made safely: each level is created (or checked) through a descriptor
    /// opened with O_NOFOLLOW relative to its parent, so no link can redirect root.
    static func ensureFallbackBase(for account: UserAccount, runRoot: String) throws(DoorError) -> String {
        let root = open(runRoot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw .unsafeDirectory(path: runRoot, problem: Errno.current.message) }
        defer { close(root) }
        let top = ccached_ensure_private_directory(root, "ccached", 0o755, 0, 0)
        guard top >= 0 else {
            throw .unsafeDirectory(path: runRoot + "/ccached", problem: explain(errno, owner: 0, mode: "0755"))
        }
        defer { close(top) }
        let mine = ccached_ensure_private_directory(top, "\(account.uid)", 0o700, account.uid, account.gid)
        let path = runRoot + "/ccached/\(account.uid)"
        guard mine >= 0 else {
            throw .unsafeDirectory(path: path, problem: explain(errno, owner: account.uid, mode: "0700"))
        }
        close(mine)
        return path
    }

    private static func explain(_ code: Int32, owner: UInt32, mode: String) -> String {
        switch code {
        case EPERM: "it is not a directory owned by uid \(owner) with mode \(mode); remove it"
        case ELOOP: "it is a symbolic link; remove it"
        default: Errno(rawValue: code).message
        }
    }
}
