import CSupport
import Glibc

/// systemd's socket activation (`sd_listen_fds`, through CSupport's wrapper, which loads
/// libsystemd only when systemd passed something): the one reader of `LISTEN_FDS` for the daemon
/// and the door.
public enum SocketActivation {
    /// Why the sockets systemd passed cannot be used.
    public enum Failure: Error, Equatable, Sendable {
        /// More than one socket came (the unit has several `ListenStream=`).
        case tooMany(count: Int32)
        /// The socket is not a listening Unix stream socket.
        case notAListeningUnixStream

        /// The problem in a sentence naming `program` (ccached, ccached-door).
        public func message(program: String) -> String {
            switch self {
            case .tooMany(let count):
                "systemd passed \(count) sockets; \(program) listens on exactly one (one ListenStream=)"
            case .notAListeningUnixStream: "the socket systemd passed is not a listening Unix stream socket"
            }
        }
    }

    /// The listening socket systemd passed, made close-on-exec (`LISTEN_*` are unset, so children
    /// do not see them), or nil when systemd passed none. Exactly one listening Unix stream socket
    /// is accepted.
    public static func listeningSocket() throws(Failure) -> Int32? {
        let count = ccached_sd_listen_fds(1)
        guard count > 0 else { return nil }
        guard count == 1 else { throw .tooMany(count: count) }
        let fd = CCACHED_SD_LISTEN_FDS_START
        guard ccached_sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw .notAListeningUnixStream
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }
}
