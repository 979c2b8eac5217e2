import Glibc
import SessionRuntime

/// Where the daemon of one (uid, session) lives: `<base>/ccached/<session key>/.heim_org.h5l.kcm-socket`,
/// the hand-off socket beside it, `<base>` being the user's ``RuntimeBase`` (SessionRuntime: the one
/// definition the client and ccachectl use too, precedence in its doc comment). The door trusts no
/// client's environment, so the base is `/run/user/N` when it is N's directory, else `/run/ccached/N`,
/// which the door (root) creates: `/run/ccached` root:root 0755, `/run/ccached/N` N:gid 0700.
/// Everything below the base belongs to the user and is created by the daemon's process after the
/// privilege drop, never by root: root never creates or follows anything inside a directory a user
/// controls.
package struct SessionDaemonLocation: Sendable, Hashable {
    package let base: String
    package let directory: String
    package let socket: String
    package var handoffSocket: String { socket + ".handoff" }
    /// Whether `/run/user/N` is the base (it is then also the daemon's `XDG_RUNTIME_DIR`).
    package let isUserRuntimeDirectory: Bool

    /// Computes the location, creating `/run/ccached/N` when `/run/user/N` is missing.
    /// `runRoot` is `/run` outside tests.
    package static func prepare(for account: UserAccount, session: SessionIdentity, runRoot: String = "/run")
        throws(DoorError) -> SessionDaemonLocation
    {
        let base: RuntimeBase
        do {
            base = try RuntimeBase.locate(
                uid: account.uid, gid: account.gid, environment: [:], runRoot: runRoot, mayCreate: true)
        } catch {
            switch error {
            case .unsafePath(let path, let problem): throw .unsafeDirectory(path: path, problem: problem)
            default: throw .unsafeDirectory(path: runRoot, problem: error.description)
            }
        }
        let directory = SessionPaths.sessionDirectory(base: base.path, sessionKey: session.key)
        let socket = directory + "/" + SessionPaths.socketName
        guard (socket + ".handoff").utf8.count < 108 else { throw .pathTooLong(path: socket + ".handoff") }
        return SessionDaemonLocation(
            base: base.path, directory: directory, socket: socket, isUserRuntimeDirectory: base.isUserRuntimeDirectory)
    }
}
