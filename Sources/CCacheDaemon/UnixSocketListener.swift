import CSupport
import Glibc
import SessionRuntime

/// The daemon's listening socket on a filesystem path, created safely:
///
/// - the directory is created 0700 if missing, and refused if it is a link, owned by someone else,
///   or writable by group or others;
/// - a live daemon already answering at the path is never displaced; a stale socket file is removed;
/// - the socket is bound under a temporary name, made 0600, set listening, and only then linked to
///   the final path, so the path appears exactly when the daemon can accept on it;
/// - on close, the path is removed only if it is still the socket this listener created.
public final class UnixSocketListener: Sendable {
    public let path: String
    public let fileDescriptor: Int32
    private let device: UInt64
    private let inode: UInt64
    /// Whether this listener created its path (and so removes it on close).
    private let ownsPath: Bool

    public static func bind(path: String) throws(DaemonError) -> UnixSocketListener {
        guard path.utf8.count < 108, !path.isEmpty else { throw .pathTooLong(path: path) }
        try prepareDirectory(of: path)
        try removeStaleSocket(at: path)

        let fd = ccached_unix_stream_socket()
        guard fd >= 0 else { throw .system(operation: "socket(AF_UNIX)", errno: errno) }
        let temporary = path + ".\(getpid()).new"
        guard temporary.utf8.count < 108 else {
            Glibc.close(fd)
            throw .pathTooLong(path: path)
        }
        unlink(temporary)
        // No umask games (the umask is process-wide): the temporary name lives in the private 0700
        // directory and is made 0600 before it is linked to the path clients see.
        let bound = ccached_bind_unix(fd, temporary)
        let bindErrno = errno
        guard bound == 0 else {
            Glibc.close(fd)
            throw .system(operation: "bind(\(temporary))", errno: bindErrno)
        }
        var info = stat()
        guard chmod(temporary, 0o600) == 0, listen(fd, SOMAXCONN) == 0, lstat(temporary, &info) == 0 else {
            let code = errno
            unlink(temporary)
            Glibc.close(fd)
            throw .system(operation: "listen(\(temporary))", errno: code)
        }
        // link() never replaces: if another daemon took the path meanwhile, we step back.
        if link(temporary, path) != 0 {
            let code = errno
            unlink(temporary)
            Glibc.close(fd)
            if code == EEXIST { throw .alreadyRunning(path: path) }
            throw .system(operation: "link(\(path))", errno: code)
        }
        unlink(temporary)
        return UnixSocketListener(path: path, fd: fd, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    private init(path: String, fd: Int32, device: UInt64, inode: UInt64, ownsPath: Bool = true) {
        self.path = path
        self.fileDescriptor = fd
        self.device = device
        self.inode = inode
        self.ownsPath = ownsPath
    }

    /// Adopts a socket that is already listening (passed by systemd). Its path belongs to whoever
    /// created it: closing never removes it, so the next connection can activate a new daemon.
    public static func adopt(fileDescriptor fd: Int32, path: String) -> UnixSocketListener {
        UnixSocketListener(path: path, fd: fd, device: 0, inode: 0, ownsPath: false)
    }

    /// Accepts one connection; nil when the call should simply be retried.
    ///
    /// The corresponding C call is `accept4(fd, NULL, NULL, SOCK_CLOEXEC)`.
    public func accept() throws(DaemonError) -> Int32? {
        let fd = ccached_accept_cloexec(fileDescriptor)
        if fd >= 0 { return fd }
        switch errno {
        case EINTR, EAGAIN, ECONNABORTED, EPROTO: return nil
        case let code: throw .system(operation: "accept", errno: code)
        }
    }

    /// Whether the path still names this listener's socket (always true for an adopted one, whose
    /// path belongs to systemd).
    public func isInPlace() -> Bool {
        guard ownsPath else { return true }
        var info = stat()
        return lstat(path, &info) == 0 && UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// Stops listening and removes the path if it is still this listener's socket.
    public func close() {
        var info = stat()
        if ownsPath, lstat(path, &info) == 0, UInt64(info.st_dev) == device, UInt64(info.st_ino) == inode {
            unlink(path)
        }
        Glibc.close(fileDescriptor)
    }

    /// Creates the socket's directory 0700 if missing (and its parent, if that is missing too); refuses one that is a link, not owned by the
    /// daemon's user, or writable by group or others, and any ancestor another user could swap
    /// (SessionRuntime's one rule for these checks).
    private static func prepareDirectory(of path: String) throws(DaemonError) {
        let directory = RuntimeDirectory.parent(of: path)
        do {
            // A daemon systemd starts for ccached-door (a unit of its own) makes the session layout
            // itself: `<runtime>/ccached/` too, when it is missing.
            let sessions = RuntimeDirectory.parent(of: directory)
            var info = stat()
            if lstat(directory, &info) != 0, lstat(sessions, &info) != 0, errno == ENOENT {
                try RuntimeDirectory.ensure(sessions, uid: geteuid(), mustBePrivate: false)
            }
            try RuntimeDirectory.ensure(directory, uid: geteuid(), mustBePrivate: false)
        } catch {
            switch error {
            case .unsafePath(let path, let problem), .cannotWrite(let path, let problem):
                throw .unsafeDirectory(path: path, problem: problem)
            case .invalidSessionName, .noRuntimeDirectory, .foreignSocket:
                throw .unsafeDirectory(path: directory, problem: error.description)
            }
        }
        // Every ancestor too: one that another user owns or can write lets them swap the path below it.
        if let unsafe = AncestorCheck.firstProblem(in: directory, uid: geteuid()) {
            throw .unsafeDirectory(path: unsafe.path, problem: unsafe.problem)
        }
    }

    /// Removes a socket file nobody listens on; refuses to touch a live one or a non-socket.
    private static func removeStaleSocket(at path: String) throws(DaemonError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .pathOccupied(path: path) }
        let probe = ccached_unix_stream_socket()
        guard probe >= 0 else { throw .system(operation: "socket(AF_UNIX)", errno: errno) }
        defer { Glibc.close(probe) }
        if ccached_connect_unix(probe, path) == 0 { throw .alreadyRunning(path: path) }
        guard errno == ECONNREFUSED else {
            throw .system(operation: "probing the existing socket \(path)", errno: errno)
        }
        unlink(path)
    }
}
