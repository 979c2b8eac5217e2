import CSupport
import Glibc
import SystemCalls

/// Creating and checking the directories on the way to a session's socket.
public enum RuntimeDirectory {
    /// Creates `path` with mode 0700 if it is missing, then checks it (see ``check(_:uid:mustBePrivate:)``):
    /// one that already existed must be private too unless `mustBePrivate` is false.
    public static func ensure(_ path: String, uid: UInt32, mustBePrivate: Bool = true) throws(SessionRuntimeError) {
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT else { throw .unsafePath(path: path, problem: Errno.current.message) }
            if mkdir(path, 0o700) == 0 {
                chmod(path, 0o700)  // whatever the umask
            } else if errno != EEXIST {
                throw .unsafePath(path: path, problem: "cannot create it: \(Errno.current.message)")
            }
        }
        try check(path, uid: uid, mustBePrivate: mustBePrivate)
    }

    /// The directory that holds `path` ("/" for a top-level name, "." for a bare name).
    public static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    /// Checks with `lstat` (never following a link) that `path` is a directory owned by `uid`, not
    /// writable by group or others, and — when `mustBePrivate` — not readable or searchable by them.
    public static func check(_ path: String, uid: UInt32, mustBePrivate: Bool) throws(SessionRuntimeError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw .unsafePath(path: path, problem: Errno.current.message)
        }
        let mode = String(info.st_mode & 0o7777, radix: 8)
        if info.st_mode & S_IFMT == S_IFLNK { throw .unsafePath(path: path, problem: "it is a symbolic link") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw .unsafePath(path: path, problem: "it is not a directory") }
        guard info.st_uid == uid else {
            throw .unsafePath(path: path, problem: "it is owned by uid \(info.st_uid), not uid \(uid)")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw .unsafePath(path: path, problem: "it is writable by group or others (mode \(mode))")
        }
        if mustBePrivate && info.st_mode & 0o077 != 0 {
            throw .unsafePath(path: path, problem: "it is open to group or others (mode \(mode), expected 700)")
        }
    }

    /// As root: makes `<runRoot>/ccached` (root's, 0755) and `<runRoot>/ccached/<uid>` (uid:gid,
    /// 0700) if missing, or checks them, and returns the latter's path. The rule is C's
    /// (`ccached_ensure_root_managed_base`, Sources/CSupport/private_directory.c), which pam_ccached
    /// compiles in too: every step through a descriptor opened with `O_NOFOLLOW`, so no link is
    /// followed, and anything already there that is not exactly that (a link, another owner, another
    /// mode) is refused, never changed. `runRoot` itself must be root's and not writable by others.
    public static func ensureRootManaged(runRoot: String, uid: UInt32, gid: UInt32) throws(SessionRuntimeError)
        -> String
    {
        let run = open(runRoot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard run >= 0 else { throw .unsafePath(path: runRoot, problem: Errno.current.message) }
        defer { close(run) }
        var failure = ccached_directory_failure()
        let made = ccached_ensure_root_managed_base(run, uid, gid, &failure)
        let path = runRoot + "/ccached/\(uid)"
        guard made >= 0 else {
            let code = Errno.current
            let level = Int(failure.level)
            let shown = [runRoot, runRoot + "/ccached", path][min(max(level, 0), 2)]
            let owner = level == 2 ? uid : 0
            let problem: String
            switch code.rawValue {
            case EPERM where level == 0: problem = "it is not root's or is writable by group or others"
            case EPERM where failure.owner != UInt32.max:
                let mode = String(failure.mode, radix: 8)
                problem =
                    "it is owned by uid \(failure.owner) with mode \(mode), not uid \(owner) with mode "
                    + (level == 2 ? "700" : "755") + "; remove it"
            case ELOOP: problem = "it is a symbolic link; remove it"
            case ENOTDIR: problem = "it is not a directory; remove it"
            default: problem = code.message
            }
            throw .unsafePath(path: shown, problem: problem)
        }
        close(made)
        return path
    }
}
