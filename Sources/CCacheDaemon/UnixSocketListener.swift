import Glibc
import SessionRuntime
import SystemCalls

/// The daemon's listening socket (and its hand-off socket) on a filesystem path: a
/// ``LinkedListener`` made 0600, in a directory that must be private:
///
/// - the directory is created 0700 if missing, and refused if it is a link, owned by someone else,
///   or writable by group or others, as is any ancestor another user could swap;
/// - a live daemon already answering at the path is never displaced; a stale socket file is removed;
/// - the path appears exactly when the daemon can accept on it, and is removed on close only if it
///   is still the socket this listener created.
public final class UnixSocketListener: Sendable {
    private let listener: LinkedListener
    public var path: String { listener.path }
    public var fileDescriptor: Int32 { listener.fileDescriptor }

    private init(_ listener: LinkedListener) { self.listener = listener }

    public static func bind(path: String) throws(DaemonError) -> UnixSocketListener {
        do throws(LinkedListener.Failure) {
            // The temporary name lives in the private 0700 directory; the socket is 0600.
            return UnixSocketListener(
                try LinkedListener.bind(path: path, temporary: path + ".\(getpid()).new", mode: 0o600) {
                    () throws(LinkedListener.Failure) in try prepareDirectory(of: path)
                })
        } catch {
            throw DaemonError(error, path: path)
        }
    }

    /// Adopts a socket that is already listening (passed by systemd). Its path belongs to whoever
    /// created it: closing never removes it, so the next connection can activate a new daemon.
    public static func adopt(fileDescriptor fd: Int32, path: String) -> UnixSocketListener {
        UnixSocketListener(LinkedListener.adopt(fileDescriptor: fd, path: path))
    }

    /// Adopts the listening socket a daemon handed over across `execve` (`--inherit`): one it bound
    /// itself keeps its path (removed on close if still its own), one systemd passed does not.
    public static func adoptInherited(fileDescriptor fd: Int32, path: String, ownsPath: Bool) -> UnixSocketListener {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let owned = ownsPath ? LinkedListener.adoptOwned(fileDescriptor: fd, path: path) : nil
        return UnixSocketListener(owned ?? LinkedListener.adopt(fileDescriptor: fd, path: path))
    }

    /// Whether the listener bound its path itself (rather than being passed by systemd).
    public var ownsPath: Bool { listener.ownsPath }

    /// Accepts one connection; nil when the call should simply be retried (``Socket/accept(_:)``).
    public func accept() throws(DaemonError) -> Int32? {
        do throws(Errno) {
            return try listener.accept()
        } catch {
            throw .system(operation: "accept", errno: error)
        }
    }

    /// Whether the path still names this listener's socket (always true for an adopted one, whose
    /// path belongs to systemd).
    public func isInPlace() -> Bool { listener.isInPlace }

    /// Stops listening and removes the path if it is still this listener's socket.
    public func close() { listener.close() }

    /// Creates the socket's directory 0700 if missing (and its parent, if that is missing too);
    /// refuses one that is a link, not owned by the daemon's user, or writable by group or others,
    /// and any ancestor another user could swap (SessionRuntime's one rule for these checks).
    private static func prepareDirectory(of path: String) throws(LinkedListener.Failure) {
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
        try? LinkedListener.removeStale(at: path)
        try? LinkedListener.removeStale(at: path + ".handoff")
    }
}

extension DaemonError {
    /// The daemon's words for why its listener at `path` could not be made.
    init(_ failure: LinkedListener.Failure, path: String) {
        switch failure {
        case .pathTooLong: self = .pathTooLong(path: path)
        case .notASocket: self = .pathOccupied(path: path)
        // Another daemon answers there (or took the path meanwhile): we step back.
        case .answered: self = .alreadyRunning(path: path)
        case .unsafeDirectory(let directory, let problem): self = .unsafeDirectory(path: directory, problem: problem)
        case .system(let operation, let code): self = .system(operation: operation, errno: code)
        }
    }
}
