import CSupport
import Glibc
import Logging
import SessionRuntime
import SystemCalls

/// The daemon's hand-off socket, `<socket>.handoff` (0600, beside the daemon's socket): where
/// `ccached-door` passes connections it accepted on the standard KCM path, hands a daemon it started
/// its session's state file, and asks a running daemon for a descriptor of its state file.
///
/// The protocol (``HandoffMessage``, Docs/protocol.md "The hand-off socket"): one connection, any
/// number of one-byte messages, each answered in order (the door may send a few hand-offs before
/// it reads their answers). Only a peer whose SO_PEERCRED uid is
/// 0 is accepted; a byte that is no door message ends the hand-off connection. A received client
/// that is not a connected AF_UNIX stream socket is closed and refused. The daemon then serves the
/// descriptor like its own accept — including the SO_PEERCRED check, which names the original
/// client, not the door. The hand-off connections are watched by the daemon's event loop like
/// client connections: no thread and no queue between the door's message and the loop that serves
/// the client.
public final class HandoffListener: Sendable {
    /// A hand-off connection idle this long is closed (the door sends at once).
    public static let idleSeconds = 30

    private let listener: UnixSocketListener
    private let logger: Logger
    public var fileDescriptor: Int32 { listener.fileDescriptor }
    public var path: String { listener.path }

    private init(listener: UnixSocketListener, logger: Logger) {
        self.listener = listener
        self.logger = logger
    }

    /// Binds `<daemonSocket>.handoff` (created like the daemon socket: 0600, linked into place
    /// only once listening, removed on close only if still ours).
    public static func bind(besides daemonSocket: String, logger: Logger) throws(DaemonError) -> HandoffListener {
        HandoffListener(listener: try UnixSocketListener.bind(path: daemonSocket + ".handoff"), logger: logger)
    }

    /// Adopts the hand-off socket a daemon handed over across `execve` (`--inherit`).
    public static func adoptInherited(fileDescriptor fd: Int32, besides daemonSocket: String, logger: Logger)
        -> HandoffListener
    {
        HandoffListener(
            listener: UnixSocketListener.adoptInherited(
                fileDescriptor: fd, path: daemonSocket + ".handoff", ownsPath: true),
            logger: logger)
    }

    /// After poll said the socket is readable: accepts one hand-off connection and returns it, or
    /// nil. A peer that is not root is closed at once. The connection is non-blocking: the event
    /// loop watches it and calls ``receive(on:serve:)`` when it is readable.
    public func acceptConnection() -> Int32? {
        guard let connection = try? listener.accept() else { return nil }
        let peer = try? PeerCredentials(socket: connection)
        guard let peer, peer.uid == 0 else {
            let who = "uid \(peer?.uid ?? 0) pid \(peer?.pid ?? 0)"
            logger.warning("refusing a hand-off connection from \(who): only root (ccached-door) may hand off")
            Glibc.close(connection)
            return nil
        }
        let flags = fcntl(connection, F_GETFL)
        guard flags >= 0, fcntl(connection, F_SETFL, flags | O_NONBLOCK) == 0 else {
            logger.error("cannot make a hand-off connection non-blocking: \(Errno.current)")
            Glibc.close(connection)
            return nil
        }
        return connection
    }

    /// What became of a hand-off connection after ``receive(on:serve:)``.
    public enum Receipt: Equatable, Sendable {
        /// Every message there was is answered; watch it again.
        case open
        /// The door closed it, or broke the protocol: close it.
        case ended
    }

    /// What the daemon does with each message the door sends (called on the event loop).
    public struct Handlers {
        /// A client connection: returns whether the daemon serves it. Owns the descriptor either
        /// way and closes one it refuses, as the daemon's own accept path does.
        public var serve: (Int32) -> Bool
        /// The session's state file: returns whether the daemon took it (it was waiting for one).
        /// Owns the descriptor either way.
        public var restore: (Int32) -> Bool
        /// A descriptor of the daemon's state file, which stays the daemon's (it is sent, not
        /// closed), or nil when it keeps none.
        public var stateFile: () -> Int32?

        public init(
            serve: @escaping (Int32) -> Bool,
            restore: @escaping (Int32) -> Bool = { fd in
                Glibc.close(fd)
                return false
            }, stateFile: @escaping () -> Int32? = { nil }
        ) {
            self.serve = serve
            self.restore = restore
            self.stateFile = stateFile
        }
    }

    /// Receives and answers every message waiting on a (non-blocking) hand-off connection. A client
    /// goes to `serve`, which returns whether it serves it ('A') or refused it ('R'). The answer is
    /// written only after `serve` returned: the door keeps its copy of the client until then, and
    /// offers it again elsewhere only if the daemon hung up without answering.
    public func receive(on connection: Int32, serve: (Int32) -> Bool) -> Receipt {
        withoutActuallyEscaping(serve) { serve in receive(on: connection, handlers: Handlers(serve: serve)) }
    }

    /// Receives and answers every message waiting on a (non-blocking) hand-off connection, each
    /// through `handlers`.
    public func receive(on connection: Int32, handlers: Handlers) -> Receipt {
        while true {
            var byte: UInt8 = 0
            var fd: Int32 = -1
            let result = ccached_receive_descriptor(connection, &byte, &fd)
            if result < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .open }
            guard result == 1 else { return .ended }  // end of file or error
            var answer = HandoffMessage.refused
            var attached: Int32 = -1
            switch HandoffMessage(rawValue: byte) {
            case .handOff:
                if fd < 0 {
                    logger.warning("a hand-off message carried no single descriptor; refused")
                } else if ccached_is_connected_unix_stream(fd) != 1 {
                    logger.warning("a handed-off descriptor is not a connected Unix stream socket; refused")
                    Glibc.close(fd)
                } else if handlers.serve(fd) {
                    answer = .accepted
                }
            case .stateFile:
                if fd < 0 {
                    logger.warning("a state-file message carried no single descriptor; refused")
                } else if handlers.restore(fd) {
                    answer = .accepted
                }
            case .stateFileRequest:
                if fd >= 0 { Glibc.close(fd) }
                if let own = handlers.stateFile() {
                    answer = .stateFileCopy
                    attached = own
                }
            default:
                if fd >= 0 { Glibc.close(fd) }
                logger.warning("closing a hand-off connection that sent byte \(byte), which is no door message")
                return .ended
            }
            // One message into a socket buffer the door keeps nearly empty (it reads each answer
            // before it sends again, or after at most 8 hand-offs): it goes at once, or the
            // connection is of no use.
            if attached >= 0 {
                guard ccached_send_descriptor(connection, answer.byte, attached) == 0 else { return .ended }
                continue
            }
            var reply = answer.byte
            let written = try? retryingInterrupts { send(connection, &reply, 1, Int32(MSG_NOSIGNAL)) }
            guard written == 1 else { return .ended }
        }
    }

    /// The daemon's hand-off connections, watched by its event loop: each is closed after
    /// ``idleSeconds`` without a message, and all of them when the daemon stops.
    public struct Connections {
        /// Each open connection and when it last carried a message (monotonic seconds).
        private(set) var lastUsed: [Int32: UInt64] = [:]

        public init() {}

        public mutating func add(_ fd: Int32, now: UInt64) { lastUsed[fd] = now }
        public mutating func touch(_ fd: Int32, now: UInt64) { lastUsed[fd] = now }
        public func contains(_ fd: Int32) -> Bool { lastUsed[fd] != nil }

        /// Forgets `fd` (the caller stops watching it and closes it).
        public mutating func remove(_ fd: Int32) { lastUsed[fd] = nil }

        /// The connections idle for longer than ``HandoffListener/idleSeconds``, forgotten here.
        public mutating func removeIdle(now: UInt64) -> [Int32] {
            let idle = lastUsed.filter { now >= $0.value + UInt64(HandoffListener.idleSeconds) }.map(\.key)
            for fd in idle { lastUsed[fd] = nil }
            return idle
        }

        /// Every connection, forgotten here.
        public mutating func removeAll() -> [Int32] {
            defer { lastUsed = [:] }
            return Array(lastUsed.keys)
        }
    }

    /// Stops listening and removes the path if it is still ours.
    public func close() { listener.close() }
}
