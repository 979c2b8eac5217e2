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

    /// As root: makes `base` (root's, 0755) and `base/<uid>` (owned by uid:gid, 0700) if missing,
    /// never following a link (`mkdirat`/`fchownat` relative to a descriptor opened with
    /// `O_NOFOLLOW | O_DIRECTORY`), and refuses either when it exists as anything else — someone
    /// else's directory, a link, a group/other mode. The C twin is in pam/pam_ccached.c.
    public static func ensureRootManaged(base: String, uid: UInt32, gid: UInt32) throws(SessionRuntimeError) {
        if mkdir(base, 0o755) == 0 {
            chmod(base, 0o755)  // whatever the umask
        } else if errno != EEXIST {
            throw .unsafePath(path: base, problem: "cannot create it: \(Errno.current.message)")
        }
        try check(base, uid: 0, mustBePrivate: false)
        let parent = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard parent >= 0 else { throw .unsafePath(path: base, problem: Errno.current.message) }
        defer { close(parent) }
        let name = "\(uid)"
        let path = base + "/" + name
        if mkdirat(parent, name, 0o700) == 0 {
            guard fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) == 0,
                fchmodat(parent, name, 0o700, 0) == 0
            else {
                let problem = Errno.current.message
                unlinkat(parent, name, AT_REMOVEDIR)
                throw .unsafePath(path: path, problem: "cannot give it to uid \(uid): \(problem)")
            }
        } else if errno != EEXIST {
            throw .unsafePath(path: path, problem: "cannot create it: \(Errno.current.message)")
        }
        try check(path, uid: uid, mustBePrivate: true)
    }
}
