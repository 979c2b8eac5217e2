import Glibc
import SessionRuntime

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

    /// `/run/ccached/N`, made safely by the rule pam_ccached shares (RuntimeDirectory, in C).
    static func ensureFallbackBase(for account: UserAccount, runRoot: String) throws(DoorError) -> String {
        do {
            return try RuntimeDirectory.ensureRootManaged(runRoot: runRoot, uid: account.uid, gid: account.gid)
        } catch {
            switch error {
            case .unsafePath(let path, let problem): throw .unsafeDirectory(path: path, problem: problem)
            default: throw .unsafeDirectory(path: runRoot, problem: error.description)
            }
        }
    }
}
