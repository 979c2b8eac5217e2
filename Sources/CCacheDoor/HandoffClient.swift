import CSupport
import Glibc
import SessionRuntime
import SystemCalls

/// The door's side of the hand-off protocol (``HandoffMessage``; Docs/protocol.md, "The hand-off
/// socket"): connect to a daemon's `.handoff` socket, make sure the daemon runs as the uid the
/// client must reach, send the client's descriptor with one byte 'H', read one byte back ('A'
/// accepted, 'R' refused). Also: hand a daemon the door started its state file ('S'), and ask a
/// running daemon for a descriptor of its state file ('D').
package enum HandoffClient {

    package enum Outcome: Equatable, Sendable {
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

    /// Hands `client` to the daemon behind `handoffPath`, which must run as `expectedUID`, on a
    /// connection of its own; every step is bounded by `timeoutMilliseconds`. The caller keeps (and
    /// closes) its copy of `client`. (The door reuses connections: ``HandoffPool``.)
    package static func handOff(client: Int32, handoffPath: String, expectedUID: UInt32, timeoutMilliseconds: Int32)
        -> Outcome
    {
        let socket: Int32
        switch connect(handoffPath: handoffPath, expectedUID: expectedUID, timeoutMilliseconds: timeoutMilliseconds) {
        case .success(let connected): socket = connected
        case .failure(let outcome): return outcome.outcome
        }
        defer { close(socket) }
        return exchange(on: socket, client: client, timeoutMilliseconds: timeoutMilliseconds).outcome
    }

    /// A failed connect, as an outcome.
    package struct ConnectFailure: Error {
        package let outcome: Outcome
    }

    /// Connects to a hand-off socket and checks that its server runs as `expectedUID`.
    ///
    /// The socket lies in a directory the user controls, so whatever is at the path is the user's
    /// choice: a link to the door's own socket would make root connect there, and the door would
    /// route itself as a root peer (and start root's daemon) before any check after the connect
    /// could refuse. So nothing is followed: every component is opened with O_PATH|O_NOFOLLOW
    /// relative to the one before, every directory must belong to root or `expectedUID`, the last
    /// component must be a socket owned by `expectedUID`, and the connect goes to that very inode
    /// (through /proc/self/fd), whatever the path holds by then. The server's SO_PEERCRED uid is
    /// checked after the connect as well.
    package static func connect(handoffPath: String, expectedUID: UInt32, timeoutMilliseconds: Int32)
        -> Result<Int32, ConnectFailure>
    {
        var owner: uid_t = 0
        var failedLength = 0
        let target = ccached_open_socket_nofollow(handoffPath, expectedUID, &owner, &failedLength)
        guard target >= 0 else {
            let code = errno
            let component = String(decoding: handoffPath.utf8.prefix(failedLength), as: UTF8.self)
            let refuse = { (problem: String) in
                Result<Int32, ConnectFailure>.failure(
                    ConnectFailure(outcome: .failed(.unsafeDirectory(path: component, problem: problem))))
            }
            switch code {
            case ENOENT: return .failure(ConnectFailure(outcome: .noDaemon))
            case ELOOP: return refuse("it is a symbolic link, which the door never follows")
            case ENOTDIR: return refuse("it is not a directory")
            case ENOTSOCK: return refuse("it is not a socket")
            case EPERM where failedLength == handoffPath.utf8.count:
                return .failure(ConnectFailure(outcome: .impostor(uid: owner)))
            case EPERM:
                return refuse("it belongs to uid \(owner), neither root nor the session's user (uid \(expectedUID))")
            default:
                return .failure(
                    ConnectFailure(
                        outcome: .failed(.system(operation: "open(\(handoffPath))", errno: Errno(rawValue: code)))))
            }
        }
        defer { close(target) }
        let socket = ccached_unix_stream_socket()
        guard socket >= 0 else {
            return .failure(ConnectFailure(outcome: .failed(.system(operation: "socket(AF_UNIX)", errno: .current))))
        }
        _ = ccached_socket_timeouts(socket, max(1, timeoutMilliseconds))
        guard ccached_connect_unix_at(socket, target) == 0 else {
            let code = errno
            close(socket)
            switch code {
            case ECONNREFUSED, ECONNRESET: return .failure(ConnectFailure(outcome: .noDaemon))
            default:
                return .failure(
                    ConnectFailure(
                        outcome: .failed(
                            .system(
                                operation: "connect(\(handoffPath) through /proc/self/fd)", errno: Errno(rawValue: code)
                            ))))
            }
        }
        // Checked again on the connection itself: only a server running as the client's own uid
        // gets the client.
        let server: PeerCredentials
        do throws(Errno) {
            server = try PeerCredentials(socket: socket)
        } catch {
            close(socket)
            return .failure(
                ConnectFailure(
                    outcome: .failed(.system(operation: "getsockopt(SO_PEERCRED) on \(handoffPath)", errno: error))))
        }
        guard server.uid == expectedUID else {
            close(socket)
            return .failure(ConnectFailure(outcome: .impostor(uid: server.uid)))
        }
        return .success(socket)
    }

    /// What one message on a hand-off connection came to.
    package struct Exchange: Sendable {
        package let outcome: Outcome
        /// Whether the connection can carry another message.
        package let reusable: Bool
        /// Whether the daemon certainly did not take the client, so that it may be offered again:
        /// the message was not sent, or the daemon hung up without answering (it answers every
        /// message it receives). False after a timeout: the daemon may still take it, and a client
        /// must never be served twice.
        package let safeToRetry: Bool
    }

    /// Sends one 'H' with `client` on an open hand-off connection and reads the answer.
    package static func exchange(on socket: Int32, client: Int32, timeoutMilliseconds: Int32) -> Exchange {
        _ = ccached_socket_timeouts(socket, max(1, timeoutMilliseconds))
        guard ccached_send_descriptor(socket, HandoffMessage.handOff.byte, client) == 0 else {
            let code = errno
            let gone = code == EPIPE || code == ECONNRESET || code == ENOTCONN
            return Exchange(
                outcome: gone ? .noDaemon : .failed(.system(operation: "sendmsg", errno: Errno(rawValue: code))),
                reusable: false,
                safeToRetry: gone)
        }
        var answer: UInt8 = 0
        let count: Int
        do throws(Errno) {
            count = try retryingInterrupts { read(socket, &answer, 1) }
        } catch {
            return Exchange(
                outcome: .failed(.system(operation: "waiting for the daemon's hand-off answer", errno: error)),
                reusable: false, safeToRetry: false)
        }
        if count == 0 { return Exchange(outcome: .noDaemon, reusable: false, safeToRetry: true) }
        switch HandoffMessage(rawValue: answer) {
        case .accepted: return Exchange(outcome: .accepted, reusable: true, safeToRetry: false)
        case .refused: return Exchange(outcome: .refused, reusable: true, safeToRetry: false)
        default:
            return Exchange(
                outcome: .failed(.daemonStart("the daemon answered the hand-off with byte \(answer)")), reusable: false,
                safeToRetry: false)
        }
    }

    /// Hands the daemon behind `handoffPath` (a daemon the door just started with
    /// `--state-from-door`) its state file `file` (the caller keeps and closes its copy), on a
    /// connection of its own. True when the daemon took it.
    package static func sendStateFile(
        _ file: Int32, handoffPath: String, expectedUID: UInt32, timeoutMilliseconds: Int32
    )
        -> Bool
    {
        guard
            case .success(let socket) = connect(
                handoffPath: handoffPath, expectedUID: expectedUID, timeoutMilliseconds: timeoutMilliseconds)
        else { return false }
        defer { close(socket) }
        guard ccached_send_descriptor(socket, HandoffMessage.stateFile.byte, file) == 0 else { return false }
        var answer: UInt8 = 0
        let count = try? retryingInterrupts { read(socket, &answer, 1) }
        return count == 1 && answer == HandoffMessage.accepted.byte
    }

    /// What a daemon answered to ``HandoffMessage/stateFileRequest``.
    package enum StateFileAnswer: Equatable, Sendable {
        /// A descriptor it sent (the caller owns it). A user's process's choice: the caller checks
        /// it is a memfd before it keeps it.
        case file(Int32)
        /// The daemon keeps no state file (it answered 'R').
        case none
        /// No answer (no daemon, a timeout, something else than 'F' or 'R'): worth asking again.
        case failed
    }

    /// Asks the daemon behind `handoffPath` for a descriptor of its state file, on a connection of
    /// its own.
    package static func requestStateFile(handoffPath: String, expectedUID: UInt32, timeoutMilliseconds: Int32)
        -> StateFileAnswer
    {
        guard
            case .success(let socket) = connect(
                handoffPath: handoffPath, expectedUID: expectedUID, timeoutMilliseconds: timeoutMilliseconds)
        else { return .failed }
        defer { close(socket) }
        var request = HandoffMessage.stateFileRequest.byte
        let sent = try? retryingInterrupts { send(socket, &request, 1, Int32(MSG_NOSIGNAL)) }
        guard sent == 1 else { return .failed }
        var answer: UInt8 = 0
        var fd: Int32 = -1
        guard ccached_receive_descriptor(socket, &answer, &fd) == 1 else { return .failed }
        switch HandoffMessage(rawValue: answer) {
        case .stateFileCopy where fd >= 0: return .file(fd)
        case .refused where fd < 0: return .none
        default:
            if fd >= 0 { close(fd) }
            return .failed
        }
    }
}
