import CSupport
import Foundation
import Logging
import SessionRuntime
import Synchronization
import SystemCalls
import Testing

@testable import CCacheDoor

#if canImport(Glibc)
    import Glibc
#endif

/// The accept thread's hand-offs (``ExpressHandoffs``) against a stand-in daemon: a socket of the
/// test's (root's, so the door's checks pass) whose every byte the test writes itself.
@Suite("Express hand-offs: sent without waiting, every answer settles its client", .serialized)
struct ExpressHandoffsTests {
    static let isRoot: Bool = {
        if getuid() != 0 { print("ExpressHandoffsTests: SKIPPED, NOT RUN: a hand-off server must run as root here") }
        return getuid() == 0
    }()

    /// A stand-in daemon with one hand-off connection the door's pool keeps (its first client
    /// answered 'A'); `connection` is the daemon's end.
    final class StandIn {
        let directory: URL
        let path: String
        let listener: Int32
        let pool = HandoffPool()
        private(set) var connection: Int32 = -1
        private var firstClient: [Int32] = [-1, -1]

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "door-express-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            path = directory.appendingPathComponent("kcm.handoff").path
            listener = ccached_unix_stream_socket()
            #expect(ccached_bind_unix(listener, path) == 0 && listen(listener, 8) == 0)
            let accepted = Atomic<Int32>(-1)
            let listening = listener
            Thread.detachNewThread {
                let connection = ccached_accept_cloexec(listening)
                var byte: UInt8 = 0
                var fd: Int32 = -1
                if connection >= 0, ccached_receive_descriptor(connection, &byte, &fd) == 1 {
                    if fd >= 0 { close(fd) }
                    var answer = UInt8(ascii: "A")
                    _ = send(connection, &answer, 1, Int32(MSG_NOSIGNAL))
                }
                accepted.store(connection, ordering: .releasing)
            }
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &firstClient) == 0)
            #expect(
                pool.handOff(client: firstClient[0], handoffPath: path, expectedUID: 0, timeoutMilliseconds: 5000)
                    == .accepted)
            for _ in 0..<500 where accepted.load(ordering: .acquiring) < 0 { usleep(10_000) }
            connection = accepted.load(ordering: .acquiring)
            #expect(connection >= 0 && pool.count == 1)
        }

        /// Receives one hand-off message; the descriptor's socket inode, or nil.
        func receive() -> UInt64? {
            var byte: UInt8 = 0
            var fd: Int32 = -1
            guard ccached_receive_descriptor(connection, &byte, &fd) == 1, byte == UInt8(ascii: "H"), fd >= 0
            else { return nil }
            defer { close(fd) }
            return Self.inode(fd)
        }

        func answer(_ text: String) {
            var bytes = Array(text.utf8)
            #expect(send(connection, &bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count)
        }

        func hangUp() {
            close(connection)
            connection = -1
        }

        static func inode(_ fd: Int32) -> UInt64 {
            var status = stat()
            return fstat(fd, &status) == 0 ? UInt64(status.st_ino) : 0
        }

        deinit {
            if connection >= 0 { close(connection) }
            close(listener)
            close(firstClient[0])
            close(firstClient[1])
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// A client: the door's end (handed off) and the client's own end.
    static func client() -> (door: Int32, own: Int32) {
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        return (ends[0], ends[1])
    }

    @Test(
        "clients go out before earlier answers, 'A' closes the door's copy, 'R' gives the client back to route again",
        .enabled(if: isRoot))
    func pipelinedAndSettled() throws {
        let daemon = try StandIn()
        let express = ExpressHandoffs(maximumInFlight: 2)
        var answers = ExpressHandoffs.Answers()
        let first = Self.client()
        let second = Self.client()
        let third = Self.client()
        defer { for fd in [first.own, second.own, third.own] { close(fd) } }
        let firstInode = StandIn.inode(first.door)
        let secondInode = StandIn.inode(second.door)
        #expect(
            express.send(client: first.door, handoffPath: daemon.path, uid: 0, pool: daemon.pool, answers: &answers)
                == .sent)
        #expect(daemon.pool.count == 0)
        #expect(
            express.send(client: second.door, handoffPath: daemon.path, uid: 0, pool: daemon.pool, answers: &answers)
                == .sent)
        #expect(express.unansweredCount == 2)
        // Two unanswered: the third is left to the routing threads, untouched.
        #expect(
            express.send(client: third.door, handoffPath: daemon.path, uid: 0, pool: daemon.pool, answers: &answers)
                == .declined)
        close(third.door)
        #expect(daemon.receive() == firstInode)
        #expect(daemon.receive() == secondInode)
        daemon.answer("AR")
        let socket = try #require(express.sockets.first)
        var settled = express.answers(on: socket)
        #expect(settled.accepted == 1 && settled.closed == 0 && !settled.ended)
        #expect(settled.reroute.map(StandIn.inode) == [secondInode])
        for fd in settled.reroute { close(fd) }
        settled.reroute = []
        #expect(express.unansweredCount == 0)
        // The first client's door copy is closed: only the daemon's copy (closed) held it, so the
        // client sees its connection end.
        var byte: UInt8 = 0
        #expect(recv(first.own, &byte, 1, Int32(MSG_DONTWAIT)) == 0)
    }

    @Test(
        "a daemon that hangs up gives back the clients it did not answer; one out of step closes them",
        .enabled(if: isRoot))
    func hangUpAndOutOfStep() throws {
        let daemon = try StandIn()
        let express = ExpressHandoffs()
        var answers = ExpressHandoffs.Answers()
        let first = Self.client()
        defer { close(first.own) }
        let inode = StandIn.inode(first.door)
        #expect(
            express.send(client: first.door, handoffPath: daemon.path, uid: 0, pool: daemon.pool, answers: &answers)
                == .sent)
        daemon.hangUp()
        let socket = try #require(express.sockets.first)
        let settled = express.answers(on: socket)
        #expect(settled.ended && settled.closed == 0 && settled.reroute.map(StandIn.inode) == [inode])
        for fd in settled.reroute { close(fd) }
        #expect(express.sockets.isEmpty && express.unansweredCount == 0)

        let other = try StandIn()
        let second = Self.client()
        defer { close(second.own) }
        #expect(
            express.send(client: second.door, handoffPath: other.path, uid: 0, pool: other.pool, answers: &answers)
                == .sent)
        #expect(other.receive() != nil)
        other.answer("X")
        let outOfStep = express.answers(on: try #require(express.sockets.first))
        #expect(outOfStep.ended && outOfStep.closed == 1 && outOfStep.reroute.isEmpty)
        var byte: UInt8 = 0
        #expect(recv(second.own, &byte, 1, Int32(MSG_DONTWAIT)) == 0)
    }

    @Test("a daemon that reads nothing (stopped) never makes a send wait: the client is declined", .enabled(if: isRoot))
    func stoppedDaemonNeverBlocks() throws {
        let daemon = try StandIn()
        let express = ExpressHandoffs(maximumInFlight: 100_000)
        var answers = ExpressHandoffs.Answers()
        var clients: [(door: Int32, own: Int32)] = []
        defer { for client in clients { close(client.own) } }
        let start = MonotonicClock.milliseconds()
        var declined = false
        for _ in 0..<5000 {
            let client = Self.client()
            clients.append(client)
            if express.send(client: client.door, handoffPath: daemon.path, uid: 0, pool: daemon.pool, answers: &answers)
                == .declined
            {
                close(client.door)
                declined = true
                break
            }
            if express.sockets.count == 1, clients.count == 1 {
                // As small a send buffer as the kernel allows: the daemon's backlog fills at once.
                var size: Int32 = 1
                #expect(
                    setsockopt(express.sockets[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
                        == 0)
            }
        }
        #expect(declined)
        #expect(MonotonicClock.milliseconds() - start < 2000)
    }

    @Test(
        "a process's second connection goes out from the accept thread; refused, it is routed again and taken",
        .enabled(if: isRoot))
    func refusedClientRoutedAgain() throws {
        guard RouteCache.pidfsIdentifiesProcesses else {
            print("ExpressHandoffsTests: SKIPPED, NOT RUN: pidfs inodes do not name processes on this kernel")
            return
        }
        let run = FileManager.default.temporaryDirectory.appendingPathComponent(
            "door-express-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: run) }
        var configuration = DoorConfiguration(
            socketPath: run.appendingPathComponent("door").path, daemonPath: "/bin/false")
        configuration.runRoot = run.path
        configuration.routingTimeoutMilliseconds = 5000
        configuration.daemonStart = .fork
        let door = Door(configuration: configuration, logger: Logger(label: "test"))
        // A "daemon" at root's location: answers 'A', then 'R', then 'A'; remembers what it got.
        let account = UserAccount(uid: 0, gid: 0, name: "root", home: "/root", groups: [0])
        let location = try SessionDaemonLocation.prepare(for: account, session: .perUser, runRoot: run.path)
        try FileManager.default.createDirectory(atPath: location.directory, withIntermediateDirectories: true)
        let received = Mutex<[UInt64]>([])
        let script = Array("ARA".utf8)
        let daemon = FakeDaemon(path: location.handoffSocket) { _, fd in
            guard fd >= 0 else { return .silence }
            let count = received.withLock { list in
                list.append(StandIn.inode(fd))
                return list.count
            }
            close(fd)
            return .answer(count <= script.count ? script[count - 1] : UInt8(ascii: "A"))
        }
        defer { daemon.stop() }
        // One process, two connections; its route known as the door knows it after a first hand-off.
        let child = try ConnectingChild(
            after: "t = socket.socket(socket.AF_UNIX); t.connect(s.getpeername()); time.sleep(30)")
        let first = ccached_accept_cloexec(child.listener)
        let second = ccached_accept_cloexec(child.listener)
        #expect(first >= 0 && second >= 0)
        let secondInode = StandIn.inode(second)
        guard case .identified(let peer) = DoorPeer.identify(socket: first, router: LoginRouter(), cache: door.routes),
            let key = peer.cacheKey
        else {
            Issue.record("the client was not identified")
            return
        }
        door.routes.store(
            RouteCache.Entry(session: peer.session, account: account, location: location), for: key,
            generation: peer.generation, now: Int64(MonotonicClock.microseconds()))
        let express = ExpressHandoffs()
        func waitFor(handedOff count: Int) {
            for _ in 0..<500 where door.handedOffCount < count { usleep(10_000) }
        }
        // The first: no kept hand-off connection yet, so a routing thread hands it off ('A').
        door.admit(first, express: express)
        waitFor(handedOff: 1)
        #expect(door.handedOffCount == 1 && express.sockets.isEmpty)
        // The second: from the accept thread, on the connection the routing thread kept ('R').
        door.admit(second, express: express)
        #expect(express.sockets.count == 1 && express.unansweredCount == 1)
        for _ in 0..<500 where received.withLock({ $0.count }) < 2 { usleep(10_000) }
        usleep(20_000)
        door.settleAnswers(express.awaitingAnswers, of: express)
        #expect(express.unansweredCount == 0)
        // Routed again from the start (a routing thread, a connection of its own) and taken.
        waitFor(handedOff: 2)
        #expect(door.handedOffCount == 2 && door.droppedCount == 0)
        #expect(received.withLock { $0 }.suffix(2) == [secondInode, secondInode])
    }
}
