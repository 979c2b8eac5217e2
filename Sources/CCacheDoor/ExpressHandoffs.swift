import CSupport
import Glibc
import SessionRuntime
import SystemCalls

/// The accept thread's own hand-off connections (issue 21, Docs/performance.md "The door's path"):
/// a connection from a process the door knows by its pidfd (``RouteCache``, "Per process") is
/// handed off by the thread that accepted it — no routing thread woken, no answer waited for.
///
/// Each connection is one the routing threads opened and checked (``HandoffPool``: the daemon's
/// socket and SO_PEERCRED are the session user's), taken from the pool and made non-blocking. On it
/// the door sends 'H' messages without reading each answer first, at most ``maximumInFlight``
/// unanswered ones, and keeps its copy of every client sent until the daemon's answer for it
/// (answers come in order): 'A' closes the copy; 'R' gives it back to be routed again, by the
/// full path, as a new connection. The answers do not wake the door: its poll loop reads them each
/// time round (before the next accept) and, while any are due, wakes after ``answerMilliseconds``
/// at the latest. A client's connection therefore stays open at the door that long at most after
/// the daemon closed it; a KCM client closes its own end and does not wait for that. A daemon that hangs up has taken nothing it did
/// not answer (it answers each message as it takes the client), so the clients still unanswered
/// are routed again, like a hand-off the daemon hung up on today; any other failure (an
/// unexpected byte, a read error) closes them: a client is never served twice.
///
/// Nothing here waits: a send that would block (a daemon stopped or slow, its socket full), a
/// connection with ``maximumInFlight`` answers outstanding, or no kept connection for the daemon
/// leaves the client to the routing threads, as before.
///
/// Used by the accept thread only.
final class ExpressHandoffs {
    /// A client handed off and not yet answered.
    private struct Connection {
        let socket: Int32
        let uid: UInt32
        /// The door's copies of the clients sent and not yet answered, oldest first.
        var unanswered: [Int32] = []
    }

    /// What reading a connection's answers came to.
    struct Answers: Equatable {
        /// Clients the daemon took ('A'); the door's copies are closed.
        var accepted = 0
        /// Clients to route again: refused ('R'), or unanswered when the daemon hung up. The caller
        /// owns them.
        var reroute: [Int32] = []
        /// Clients closed unanswered: the connection failed otherwise (never served twice).
        var closed = 0
        /// Whether the connection ended (and was closed).
        var ended = false

        mutating func add(_ other: Answers) {
            accepted += other.accepted
            reroute += other.reroute
            closed += other.closed
            ended = ended || other.ended
        }
    }

    /// What became of a client offered to ``send(client:handoffPath:uid:pool:)``.
    enum Sent: Equatable {
        /// Sent: the client's descriptor is kept here until the answer (the caller no longer owns it).
        case sent
        /// Not sent, and nothing else happened to the client: route it as before.
        case declined
    }

    /// A kept connection's daemon: the uid it serves and its hand-off socket.
    private struct Daemon: Hashable {
        let uid: UInt32
        let handoffPath: String
    }

    let maximumInFlight: Int
    let maximumConnections: Int
    let maximumPerUser: Int
    private var connections: [Daemon: Connection] = [:]
    private var keys: [Int32: Daemon] = [:]

    init(maximumInFlight: Int = 8, maximumConnections: Int = 128, maximumPerUser: Int = 16) {
        self.maximumInFlight = maximumInFlight
        self.maximumConnections = maximumConnections
        self.maximumPerUser = maximumPerUser
    }

    deinit {
        for connection in connections.values {
            close(connection.socket)
            for client in connection.unanswered { close(client) }
        }
    }

    /// Every kept connection's socket.
    var sockets: [Int32] { Array(keys.keys) }

    /// The sockets with answers still to come: the poll loop reads them each time round and wakes
    /// after ``answerMilliseconds`` at the latest while there are any.
    var awaitingAnswers: [Int32] { connections.values.filter { !$0.unanswered.isEmpty }.map(\.socket) }

    /// How long an answer waits at most to be read when no other connection wakes the door.
    static let answerMilliseconds: Int32 = 10

    /// How many clients are sent and not yet answered.
    var unansweredCount: Int { connections.values.reduce(0) { $0 + $1.unanswered.count } }

    /// Sends `client` to the daemon behind `handoffPath` (serving `uid`) on a kept connection
    /// without waiting, and keeps it until the answer; or declines (the caller still owns it).
    /// Answers read on the way are added to `answers`.
    func send(client: Int32, handoffPath: String, uid: UInt32, pool: HandoffPool, answers: inout Answers) -> Sent {
        let key = Daemon(uid: uid, handoffPath: handoffPath)
        // Room for one more: the answers the poll loop has not read yet.
        if let known = connections[key], known.unanswered.count >= maximumInFlight {
            answers.add(read(known.socket))
        }
        if connections[key] == nil {
            guard connections.count < maximumConnections,
                connections.values.lazy.filter({ $0.uid == uid }).count < maximumPerUser,
                let socket = pool.takeKept(handoffPath: handoffPath, expectedUID: uid)
            else { return .declined }
            let flags = fcntl(socket, F_GETFL)
            guard flags >= 0, fcntl(socket, F_SETFL, flags | O_NONBLOCK) == 0 else {
                close(socket)
                return .declined
            }
            connections[key] = Connection(socket: socket, uid: uid)
            keys[socket] = key
        }
        guard var connection = connections[key], connection.unanswered.count < maximumInFlight else {
            return .declined
        }
        guard ccached_send_descriptor(connection.socket, HandoffMessage.handOff.byte, client) == 0 else {
            let code = errno
            // EAGAIN: the daemon does not read now (stopped, slow). Anything else: the connection
            // is of no use; what was sent before is read when it ends.
            if code != EAGAIN && code != EWOULDBLOCK { answers.add(end(key, hungUp: true)) }
            return .declined
        }
        // The door's copy stays until the answer: the client is its to route again if need be.
        connection.unanswered.append(client)
        connections[key] = connection
        return .sent
    }

    /// Reads the answers waiting on `socket` (the poll loop saw it readable).
    func answers(on socket: Int32) -> Answers {
        read(socket)
    }

    /// Reads every answer waiting on a connection, without waiting.
    private func read(_ socket: Int32) -> Answers {
        guard let key = keys[socket], var connection = connections[key] else { return Answers() }
        var result = Answers()
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            // Bytes only: a descriptor a daemon attached is dropped by the kernel, never taken.
            let count: Int
            do throws(Errno) {
                count = try retryingInterrupts {
                    buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                }
            } catch {
                if error == .wouldBlock { break }
                connections[key] = connection
                result.add(end(key, hungUp: error == .connectionReset))
                return result
            }
            if count == 0 {
                connections[key] = connection
                result.add(end(key, hungUp: true))
                return result
            }
            // Fewer bytes than asked for: nothing more was there (another read would only say so).
            let drained = count < buffer.count
            for byte in buffer[0..<count] {
                guard !connection.unanswered.isEmpty,
                    byte == HandoffMessage.accepted.byte || byte == HandoffMessage.refused.byte
                else {
                    // Out of step: nothing on this connection can be trusted any more.
                    connections[key] = connection
                    result.add(end(key, hungUp: false))
                    return result
                }
                let client = connection.unanswered.removeFirst()
                if byte == HandoffMessage.accepted.byte {
                    close(client)
                    result.accepted += 1
                } else {
                    result.reroute.append(client)
                }
            }
            if drained { break }
        }
        connections[key] = connection
        return result
    }

    /// Closes a connection. After a hang-up its unanswered clients are to be routed again (the
    /// daemon answers each client it takes); after anything else they are closed.
    private func end(_ key: Daemon, hungUp: Bool) -> Answers {
        guard let connection = connections.removeValue(forKey: key) else { return Answers() }
        keys[connection.socket] = nil
        close(connection.socket)
        var result = Answers()
        result.ended = true
        if hungUp {
            result.reroute = connection.unanswered
        } else {
            for client in connection.unanswered { close(client) }
            result.closed = connection.unanswered.count
        }
        return result
    }
}
