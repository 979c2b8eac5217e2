import CSupport
import Glibc
import SessionRuntime
import SystemCalls

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
    /// The socket file this listener made, removed on close if still its own (nil for one systemd
    /// passed: its path belongs to whoever created it).
    private let linked: LinkedListener?

    public static func bind(path: String) throws(DaemonError) -> UnixSocketListener {
        guard path.utf8.count < 108, !path.isEmpty else { throw .pathTooLong(path: path) }
        try prepareDirectory(of: path)
        try removeStaleSocket(at: path)
        do throws(LinkedListener.Failure) {
            // The temporary name lives in the private 0700 directory; the socket is 0600.
            let bound = try LinkedListener.bind(path: path, temporary: path + ".\(getpid()).new", mode: 0o600)
            return UnixSocketListener(path: path, fd: bound.fileDescriptor, linked: bound)
        } catch {
            switch error {
            case .pathTooLong: throw .pathTooLong(path: path)
            // Another daemon took the path meanwhile: we step back.
            case .pathTaken: throw .alreadyRunning(path: path)
            case .system(let operation, let code): throw .system(operation: operation, errno: code)
            }
        }
    }

    private init(path: String, fd: Int32, linked: LinkedListener?) {
        self.path = path
        self.fileDescriptor = fd
        self.linked = linked
    }

    /// Adopts a socket that is already listening (passed by systemd). Its path belongs to whoever
    /// created it: closing never removes it, so the next connection can activate a new daemon.
    public static func adopt(fileDescriptor fd: Int32, path: String) -> UnixSocketListener {
        UnixSocketListener(path: path, fd: fd, linked: nil)
    }

    /// Accepts one connection; nil when the call should simply be retried (``Socket/accept(_:)``).
    public func accept() throws(DaemonError) -> Int32? {
        do throws(Errno) {
            return try Socket.accept(fileDescriptor)
        } catch {
            throw .system(operation: "accept", errno: error)
        }
    }

    /// Whether the path still names this listener's socket (always true for an adopted one, whose
    /// path belongs to systemd).
    public func isInPlace() -> Bool { linked?.isInPlace ?? true }

    /// Stops listening and removes the path if it is still this listener's socket.
    public func close() {
        linked?.removePathIfOwn()
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

    /// Removes the socket file at `path` and its hand-off socket beside it when nobody listens on
    /// them (a daemon that was killed leaves both behind); never a live one, never a non-socket.
    /// What a daemon's unit runs when it stops (`ccached --remove-stale --socket PATH`).
    public static func removeStale(socket path: String) {
        try? removeStaleSocket(at: path)
        try? removeStaleSocket(at: path + ".handoff")
    }

    /// Removes a socket file nobody listens on; refuses to touch a live one or a non-socket.
    private static func removeStaleSocket(at path: String) throws(DaemonError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .pathOccupied(path: path) }
        let probe = ccached_unix_stream_socket()
        guard probe >= 0 else { throw .system(operation: "socket(AF_UNIX)", errno: .current) }
        defer { Glibc.close(probe) }
        if ccached_connect_unix(probe, path) == 0 { throw .alreadyRunning(path: path) }
        guard errno == ECONNREFUSED else {
            throw .system(operation: "probing the existing socket \(path)", errno: .current)
        }
        unlink(path)
    }
}
