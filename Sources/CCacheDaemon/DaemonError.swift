import SystemCalls

/// Why the daemon could not start or keep running, worded for the person who started it.
public enum DaemonError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case system(operation: String, errno: Errno)
    /// Another daemon already answers on the socket path.
    case alreadyRunning(path: String)
    /// The socket path is taken by something that is not a socket.
    case pathOccupied(path: String)
    /// The socket's directory is unsafe or unusable.
    case unsafeDirectory(path: String, problem: String)
    /// The socket path is too long for a Unix socket address (108 bytes on Linux).
    case pathTooLong(path: String)
    /// systemd passed sockets ccached cannot use.
    case activation(String)

    public var description: String {
        switch self {
        case .system(let operation, let code): "\(operation) failed: \(code)"
        case .alreadyRunning(let path): "a ccached daemon already answers at \(path)"
        case .pathOccupied(let path):
            "\(path) exists and is not a socket; refusing to replace it (remove it or choose another --socket)"
        case .unsafeDirectory(let path, let problem):
            "refusing to use the socket directory \(path): \(problem). Use a private directory "
                + "(owned by you, mode 0700), for example $XDG_RUNTIME_DIR/ccached"
        case .activation(let problem): "socket activation: \(problem)"
        case .pathTooLong(let path):
            "the socket path \(path) is too long for a Unix socket (at most 107 bytes); choose a shorter --socket"
        }
    }
}
