import CSupport
import Glibc

/// A Unix stream socket listening on a file-system path, made so that the path appears exactly
/// when the socket accepts, and never replaces anything: it is bound under a temporary name, given
/// its mode, set listening, and only then hard-linked to the path (`link` fails if the path exists,
/// where `rename` would replace a live server's socket). The daemon's listener and the door's
/// use it; each checks its directory and any socket already at the path first, by its own rules.
public struct LinkedListener: Sendable {
    public let path: String
    public let fileDescriptor: Int32
    /// The socket file's identity, so that only this listener's own socket is ever removed.
    public let device: UInt64
    public let inode: UInt64

    /// Why a listener could not be made.
    public enum Failure: Error, Equatable, Sendable {
        /// The path (or its temporary name) does not fit in `sun_path` (107 bytes).
        case pathTooLong
        /// Something appeared at the path meanwhile (`link` found it taken).
        case pathTaken
        /// A system call failed.
        case system(operation: String, errno: Errno)
    }

    /// Binds at `temporary` (beside `path`, removed whatever happens), makes it `mode`, listens, and
    /// links it to `path`.
    public static func bind(path: String, temporary: String, mode: mode_t) throws(Failure) -> LinkedListener {
        guard !path.isEmpty, path.utf8.count < 108, temporary.utf8.count < 108 else { throw .pathTooLong }
        let fd = ccached_unix_stream_socket()
        guard fd >= 0 else { throw .system(operation: "socket(AF_UNIX)", errno: .current) }
        unlink(temporary)
        // No umask games (the umask is process-wide): the temporary name is made `mode` before the
        // path clients see exists.
        guard ccached_bind_unix(fd, temporary) == 0 else {
            let code = Errno.current
            close(fd)
            throw .system(operation: "bind(\(temporary))", errno: code)
        }
        var info = stat()
        guard chmod(temporary, mode) == 0, listen(fd, SOMAXCONN) == 0, lstat(temporary, &info) == 0 else {
            let code = Errno.current
            unlink(temporary)
            close(fd)
            throw .system(operation: "listen(\(temporary))", errno: code)
        }
        if link(temporary, path) != 0 {
            let code = Errno.current
            unlink(temporary)
            close(fd)
            if code == .fileExists { throw .pathTaken }
            throw .system(operation: "link(\(path))", errno: code)
        }
        unlink(temporary)
        return LinkedListener(
            path: path, fileDescriptor: fd, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// A listener made by ``bind(path:temporary:mode:)`` in the process this one was before an
    /// `execve`, its descriptor inherited: the socket file now at `path` is taken as its own. Nil if
    /// no socket is there.
    public static func adopt(fileDescriptor fd: Int32, path: String) -> LinkedListener? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return nil }
        return LinkedListener(path: path, fileDescriptor: fd, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Whether `path` still names this listener's socket file.
    public var isInPlace: Bool {
        var info = stat()
        return lstat(path, &info) == 0 && UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// Removes the path if it is still this listener's socket (another server may have replaced a
    /// removed one: that is never touched).
    public func removePathIfOwn() {
        if isInPlace { unlink(path) }
    }
}
