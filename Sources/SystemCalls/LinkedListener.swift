import CSupport
import Glibc

/// A Unix stream socket listening on a file-system path: the one listener of the daemon, its
/// hand-off socket and the door, which differ only in the socket's mode and in the rule their
/// directory must meet (parameters of ``bind(path:temporary:mode:checkDirectory:)``).
///
/// - The directory is checked first, by the caller's rule.
/// - A live server already answering at the path is never displaced; a stale socket file (nobody
///   listens) is removed; anything that is not a socket is refused.
/// - The socket is bound under a temporary name, given its mode, set listening, and only then
///   hard-linked to the path (`link` fails if the path exists, where `rename` would replace a live
///   server's socket): the path appears exactly when the socket accepts.
/// - On close, the path is removed only if it is still this listener's socket file.
public final class LinkedListener: Sendable {
    public let path: String
    public let fileDescriptor: Int32
    /// The socket file's identity, so that only this listener's own socket is ever removed (nil for
    /// a socket systemd passed: its path belongs to whoever created it).
    private let identity: (device: UInt64, inode: UInt64)?

    /// Why a listener could not be made.
    public enum Failure: Error, Equatable, Sendable {
        /// The path (or its temporary name) does not fit in `sun_path` (107 bytes).
        case pathTooLong
        /// Something that is not a socket is at the path.
        case notASocket
        /// A live server answers on the path, or one appeared there meanwhile (`link` found it taken).
        case answered
        /// The directory (or an ancestor) fails the caller's rule.
        case unsafeDirectory(path: String, problem: String)
        /// A system call failed.
        case system(operation: String, errno: Errno)
    }

    private init(path: String, fileDescriptor: Int32, identity: (device: UInt64, inode: UInt64)?) {
        self.path = path
        self.fileDescriptor = fileDescriptor
        self.identity = identity
    }

    /// Adopts a socket that is already listening (passed by systemd, ``SocketActivation``). Its path
    /// belongs to whoever created it: closing never removes it.
    public static func adopt(fileDescriptor: Int32, path: String) -> LinkedListener {
        LinkedListener(path: path, fileDescriptor: fileDescriptor, identity: nil)
    }

    /// Checks the path's directory with `checkDirectory` (the caller's rule), removes a stale
    /// socket at `path`, binds at `temporary` (beside `path`, removed whatever happens), makes it
    /// `mode`, listens, and links it to `path`.
    public static func bind(
        path: String, temporary: String, mode: mode_t,
        checkDirectory: () throws(Failure) -> Void = { () throws(Failure) in }
    ) throws(Failure) -> LinkedListener {
        guard !path.isEmpty, path.utf8.count < 108, temporary.utf8.count < 108 else { throw .pathTooLong }
        try checkDirectory()
        try removeStale(at: path)
        let fd = ccached_unix_stream_socket()
        guard fd >= 0 else { throw .system(operation: "socket(AF_UNIX)", errno: .current) }
        unlink(temporary)
        // No umask games (the umask is process-wide): the temporary name is made `mode` before the
        // path clients see exists.
        guard ccached_bind_unix(fd, temporary) == 0 else {
            let code = Errno.current
            Glibc.close(fd)
            throw .system(operation: "bind(\(temporary))", errno: code)
        }
        var info = stat()
        guard chmod(temporary, mode) == 0, listen(fd, SOMAXCONN) == 0, lstat(temporary, &info) == 0 else {
            let code = Errno.current
            unlink(temporary)
            Glibc.close(fd)
            throw .system(operation: "listen(\(temporary))", errno: code)
        }
        if link(temporary, path) != 0 {
            let code = Errno.current
            unlink(temporary)
            Glibc.close(fd)
            if code == .fileExists { throw .answered }
            throw .system(operation: "link(\(path))", errno: code)
        }
        unlink(temporary)
        return LinkedListener(
            path: path, fileDescriptor: fd, identity: (device: UInt64(info.st_dev), inode: UInt64(info.st_ino)))
    }

    /// A listener made by ``bind(path:temporary:mode:checkDirectory:)`` in the process this one was
    /// before an `execve`, its descriptor inherited: the socket file now at `path` is taken as its
    /// own. Nil if no socket is there.
    public static func adoptOwned(fileDescriptor fd: Int32, path: String) -> LinkedListener? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return nil }
        return LinkedListener(
            path: path, fileDescriptor: fd, identity: (device: UInt64(info.st_dev), inode: UInt64(info.st_ino)))
    }

    /// Whether this listener bound its path itself (rather than being passed by systemd).
    public var ownsPath: Bool { identity != nil }

    /// Removes the socket file at `path` when nobody listens on it (a server that was killed leaves
    /// it behind); refuses a live one (``Failure/answered``) and anything that is not a socket.
    /// The probe gives up after 2 s: a live server whose queue is full is not taken for a stale one.
    public static func removeStale(at path: String) throws(Failure) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket }
        let probe = ccached_unix_stream_socket()
        guard probe >= 0 else { throw .system(operation: "socket(AF_UNIX)", errno: .current) }
        defer { Glibc.close(probe) }
        _ = ccached_socket_timeouts(probe, 2000)
        if ccached_connect_unix(probe, path) == 0 { throw .answered }
        let code = Errno.current
        if code == .noSuchFile { return }
        guard code == .connectionRefused else {
            throw .system(operation: "probing the existing socket \(path)", errno: code)
        }
        unlink(path)
    }

    /// Accepts one connection; nil when the call should simply be retried (``Socket/accept(_:)``).
    public func accept() throws(Errno) -> Int32? {
        try Socket.accept(fileDescriptor)
    }

    /// Whether `path` still names this listener's socket file (always true for an adopted socket,
    /// whose path belongs to systemd).
    public var isInPlace: Bool {
        guard let identity else { return true }
        var info = stat()
        return lstat(path, &info) == 0 && UInt64(info.st_dev) == identity.device
            && UInt64(info.st_ino) == identity.inode
    }

    /// Stops listening and removes the path if it is still this listener's socket file (another
    /// server may have replaced a removed one: that is never touched).
    public func close() {
        if identity != nil, isInPlace { unlink(path) }
        Glibc.close(fileDescriptor)
    }

}
