import CSupport
import Glibc

/// The door's listening socket on the standard path, mode 0666 (every local user may connect: the
/// door only routes, each daemon authorises).
///
/// It never displaces a live server: if something answers on the path (sssd-kcm, Heimdal's kcm,
/// another door) binding fails with ``DoorError/occupied(path:)``. A stale socket file is removed.
/// The socket is bound under a temporary name, made 0666, set listening and then linked to the
/// path (link never replaces), so the path appears exactly when the door accepts on it.
public final class DoorListener: Sendable {
    public let path: String
    public let fileDescriptor: Int32
    private let inode: UInt64
    private let ownsPath: Bool

    private init(path: String, fileDescriptor: Int32, inode: UInt64, ownsPath: Bool) {
        self.path = path
        self.fileDescriptor = fileDescriptor
        self.inode = inode
        self.ownsPath = ownsPath
    }

    /// Adopts a listening socket systemd passed; its path is systemd's and is never removed.
    public static func adopt(fileDescriptor: Int32, path: String) -> DoorListener {
        DoorListener(path: path, fileDescriptor: fileDescriptor, inode: 0, ownsPath: false)
    }

    /// Whether a server accepts connections on `path` now.
    public static func isAnswered(_ path: String) -> Bool {
        let probe = ccached_unix_stream_socket()
        guard probe >= 0 else { return false }
        defer { Glibc.close(probe) }
        _ = ccached_socket_timeouts(probe, 2000)
        return ccached_connect_unix(probe, path) == 0
    }

    public static func bind(path: String) throws(DoorError) -> DoorListener {
        guard !path.isEmpty, (path + ".door-new").utf8.count < 108 else { throw .pathTooLong(path: path) }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
            if isAnswered(path) { throw .occupied(path: path) }
            unlink(path)
        }
        let fd = ccached_unix_stream_socket()
        guard fd >= 0 else { throw .system(operation: "socket(AF_UNIX)", errno: errno) }
        let temporary = path + ".door-new"
        unlink(temporary)
        guard ccached_bind_unix(fd, temporary) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .system(operation: "bind(\(temporary))", errno: code)
        }
        guard chmod(temporary, 0o666) == 0, listen(fd, SOMAXCONN) == 0, lstat(temporary, &info) == 0 else {
            let code = errno
            unlink(temporary)
            Glibc.close(fd)
            throw .system(operation: "listen(\(temporary))", errno: code)
        }
        if link(temporary, path) != 0 {
            let code = errno
            unlink(temporary)
            Glibc.close(fd)
            if code == EEXIST { throw .occupied(path: path) }
            throw .system(operation: "link(\(path))", errno: code)
        }
        unlink(temporary)
        return DoorListener(path: path, fileDescriptor: fd, inode: UInt64(info.st_ino), ownsPath: true)
    }

    /// Stops listening; removes the path if it is still this listener's socket.
    public func close() {
        var info = stat()
        if ownsPath, lstat(path, &info) == 0, UInt64(info.st_ino) == inode { unlink(path) }
        Glibc.close(fileDescriptor)
    }
}
