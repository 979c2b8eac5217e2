import CSupport
import Glibc
import SystemCalls

/// The door's listening socket on the standard path: a ``LinkedListener`` made 0666 (every local
/// user may connect: the door only routes, each daemon authorises), with no rule for its directory
/// (root's `/run`).
///
/// It never displaces a live server: if something answers on the path (sssd-kcm, Heimdal's kcm,
/// another door) binding fails with ``DoorError/occupied(path:)``. A stale socket file is removed.
/// The path appears exactly when the door accepts on it.
package final class DoorListener: Sendable {
    private let listener: LinkedListener
    package var path: String { listener.path }
    package var fileDescriptor: Int32 { listener.fileDescriptor }

    private init(_ listener: LinkedListener) { self.listener = listener }

    /// Adopts a listening socket systemd passed; its path is systemd's and is never removed.
    package static func adopt(fileDescriptor: Int32, path: String) -> DoorListener {
        DoorListener(LinkedListener.adopt(fileDescriptor: fileDescriptor, path: path))
    }

    package static func bind(path: String) throws(DoorError) -> DoorListener {
        do throws(LinkedListener.Failure) {
            return DoorListener(try LinkedListener.bind(path: path, temporary: path + ".door-new", mode: 0o666))
        } catch {
            switch error {
            case .pathTooLong: throw .pathTooLong(path: path)
            case .notASocket: throw .notASocket(path: path)
            case .answered: throw .occupied(path: path)
            case .unsafeDirectory(let directory, let problem): throw .unsafeDirectory(path: directory, problem: problem)
            case .system(let operation, let code): throw .system(operation: operation, errno: code)
            }
        }
    }

    /// Stops listening; removes the path if it is still this listener's socket.
    package func close() { listener.close() }
}
