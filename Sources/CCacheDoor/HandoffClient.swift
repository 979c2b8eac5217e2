import CSupport
import Glibc

/// The door's side of the hand-off protocol (contract.md): connect to a daemon's `.handoff`
/// socket, make sure the daemon runs as the uid the client must reach, send the client's
/// descriptor with one byte 'H', read one byte back ('A' accepted, 'R' refused).
public enum HandoffClient {
    public static let handoffByte: UInt8 = 0x48
    public static let acceptedByte: UInt8 = 0x41
    public static let refusedByte: UInt8 = 0x52

    public enum Outcome: Equatable, Sendable {
        /// The daemon serves the connection now.
        case accepted
        /// The daemon answered 'R' (e.g. over its --max-connections).
        case refused
        /// Nobody listens there (no daemon yet, a stale socket, or it exited mid-way).
        case noDaemon
        /// Something listens there that is not the user's daemon: the client is not handed to it.
        case impostor(uid: UInt32)
        case failed(DoorError)
    }

    /// Hands `client` to the daemon behind `handoffPath`, which must run as `expectedUID`; every
    /// step is bounded by `timeoutMilliseconds`. The caller keeps (and closes) its copy of `client`.
    public static func handOff(client: Int32, handoffPath: String, expectedUID: UInt32, timeoutMilliseconds: Int32)
        -> Outcome
    {
        let socket = ccached_unix_stream_socket()
        guard socket >= 0 else { return .failed(.system(operation: "socket(AF_UNIX)", errno: errno)) }
        defer { close(socket) }
        _ = ccached_socket_timeouts(socket, max(1, timeoutMilliseconds))
        guard ccached_connect_unix(socket, handoffPath) == 0 else {
            switch errno {
            case ENOENT, ECONNREFUSED, ENOTDIR, ECONNRESET: return .noDaemon
            case let code: return .failed(.system(operation: "connect(\(handoffPath))", errno: code))
            }
        }
        // The path is in a directory the user controls, so it may be a link to someone else's
        // socket: only a server running as the client's own uid gets the client.
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard ccached_peer_credentials(socket, &pid, &uid, &gid) == 0 else {
            return .failed(.system(operation: "getsockopt(SO_PEERCRED) on \(handoffPath)", errno: errno))
        }
        guard uid == expectedUID else { return .impostor(uid: uid) }
        guard ccached_send_descriptor(socket, handoffByte, client) == 0 else {
            return errno == EPIPE || errno == ECONNRESET
                ? .noDaemon : .failed(.system(operation: "sendmsg", errno: errno))
        }
        var answer: UInt8 = 0
        let count = read(socket, &answer, 1)
        guard count == 1 else { return .noDaemon }
        switch answer {
        case acceptedByte: return .accepted
        case refusedByte: return .refused
        default: return .failed(.daemonStart("the daemon answered the hand-off with byte \(answer)"))
        }
    }
}
