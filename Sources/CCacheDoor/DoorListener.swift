import CSupport
import Glibc
import SystemCalls

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
    /// The socket file this listener made (nil for one systemd passed).
    private let linked: LinkedListener?

    private init(path: String, fileDescriptor: Int32, linked: LinkedListener?) {
        self.path = path
        self.fileDescriptor = fileDescriptor
        self.linked = linked
    }

    /// Adopts a listening socket systemd passed; its path is systemd's and is never removed.
    public static func adopt(fileDescriptor: Int32, path: String) -> DoorListener {
        DoorListener(path: path, fileDescriptor: fileDescriptor, linked: nil)
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
        var info = stat()
        if !path.isEmpty, lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
            if isAnswered(path) { throw .occupied(path: path) }
            unlink(path)
        }
        do throws(LinkedListener.Failure) {
            // 0666: every local user may connect; the door only routes, each daemon authorises.
            let bound = try LinkedListener.bind(path: path, temporary: path + ".door-new", mode: 0o666)
            return DoorListener(path: path, fileDescriptor: bound.fileDescriptor, linked: bound)
        } catch {
            switch error {
            case .pathTooLong: throw .pathTooLong(path: path)
            case .pathTaken: throw .occupied(path: path)
            case .system(let operation, let code): throw .system(operation: operation, errno: code)
            }
        }
    }

    /// Stops listening; removes the path if it is still this listener's socket.
    public func close() {
        linked?.removePathIfOwn()
        Glibc.close(fileDescriptor)
    }
}
