/// Why the session's runtime location cannot be used, worded for the person who sees it.
public enum SessionRuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `CCACHED_SESSION` is not usable as a directory name.
    case invalidSessionName(String)
    /// A directory on the way to the socket is unsafe or unusable.
    case unsafePath(path: String, problem: String)
    /// A file could not be written.
    case cannotWrite(path: String, problem: String)
    /// Neither `$XDG_RUNTIME_DIR`, `/run/user/<uid>` nor `/run/ccached/<uid>` exists, and only root
    /// may create the last.
    case noRuntimeDirectory(uid: UInt32)
    /// `CCACHED_SOCKET` names a socket in another user's directory: an environment inherited from
    /// their session (`su`, `sudo -E`, a tmux server of theirs).
    case foreignSocket(path: String, owner: UInt32, uid: UInt32)

    public var description: String {
        switch self {
        case .invalidSessionName(let name):
            "CCACHED_SESSION='\(name)' is not a valid session name: use 1 to 64 letters, digits, '.', '_' or '-'"
        case .unsafePath(let path, let problem):
            "refusing to use \(path): \(problem). ccached keeps its socket only in a directory that "
                + "belongs to you alone (mode 0700); fix or remove that path"
        case .cannotWrite(let path, let problem): "cannot write \(path): \(problem)"
        case .foreignSocket(let path, let owner, let uid):
            "CCACHED_SOCKET=\(path) is another user's socket (its directory belongs to uid \(owner), you are uid "
                + "\(uid)): the variable was inherited from their session (su, sudo -E, tmux). Unset CCACHED_SOCKET "
                + "(and KRB5_CONFIG and HEIM_IPC_DIR if they name it) to reach your own tickets"
        case .noRuntimeDirectory(let uid):
            "no runtime directory for uid \(uid): XDG_RUNTIME_DIR is unset and neither /run/user/\(uid) nor "
                + "/run/ccached/\(uid) exists. Log in through PAM with pam_systemd or pam_ccached (which "
                + "create one), ask root to run 'install -d -o \(uid) -m 0700 /run/ccached/\(uid)', or set "
                + "XDG_RUNTIME_DIR (or CCACHED_SOCKET) to a directory of yours with mode 0700"
        }
    }
}
