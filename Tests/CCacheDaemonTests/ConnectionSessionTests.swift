import CredentialStore
import Dispatch
import Glibc
import KCM
import Logging
import Synchronization
import SystemCalls
import TestSupport
import Testing

@testable import CCacheDaemon

/// The connection session on its own: bytes in, reply frames out, no socket.
@Suite("ConnectionSession")
struct ConnectionSessionTests {
    static let owner = PeerCredentials(pid: 10, uid: 1000, gid: 1000)
    static let stranger = PeerCredentials(pid: 11, uid: 4242, gid: 4242)

    static func state(requestTimeout: UInt32 = 10) -> DaemonState {
        DaemonState(
            configuration: DaemonConfiguration(socketPath: "/unused", ownerUID: 1000, requestTimeout: requestTimeout))
    }

    static func session(_ peer: PeerCredentials, _ state: DaemonState) -> ConnectionSession {
        ConnectionSession(peer: peer, state: state, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// How many times a daemon state asked the daemon to stop.
    final class StopCount: Sendable {
        private let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
        func add() { count.add(1, ordering: .relaxed) }
    }

    /// The owner 1000's daemon state, counting the stops it asks for.
    static func stateCountingStops() -> (DaemonState, StopCount) {
        let stops = StopCount()
        let state = DaemonState(configuration: DaemonConfiguration(socketPath: "/unused", ownerUID: 1000)) {
            stops.add()
        }
        return (state, stops)
    }

    /// The status word of a reply frame.
    static func status(_ frame: [UInt8]) -> KCMStatus {
        try! KCMReplyHeader(decoding: frame).status
    }

    @Test("a request cut anywhere is answered once, after its last byte")
    func everyCut() {
        let frame = KCMRequest.initialize(name: "1000", principal: alice).encodedFrame()
        for cut in 1..<frame.count {
            let state = Self.state()
            var session = Self.session(Self.owner, state)
            var replies: [[UInt8]] = []
            #expect(
                session.receive(frame[..<cut], now: 0) {
                    replies.append($0.map { $0 })
                    return true
                })
            #expect(replies.isEmpty, "answered after \(cut) of \(frame.count) bytes")
            #expect(
                session.receive(frame[cut...], now: 0) {
                    replies.append($0.map { $0 })
                    return true
                })
            #expect(replies.count == 1 && replies.first.map(Self.status) == .success)
            session.wipe()
        }
    }

    @Test("two requests in one read get two replies, in order")
    func pipelined() {
        let state = Self.state()
        var session = Self.session(Self.owner, state)
        let bytes = KCMRequest.getPrincipal(name: "1000").encodedFrame() + KCMRequest.getDefaultCache.encodedFrame()
        var statuses: [KCMStatus] = []
        #expect(
            session.receive(bytes, now: 0) {
                statuses.append(Self.status($0))
                return true
            })
        #expect(statuses == [.fccNoFile, .success])
    }

    @Test("a refused peer's bodies are never buffered: a 16 MiB frame is discarded as it arrives and answered FCC_PERM")
    func refusedPeerNotBuffered() {
        let state = Self.state()
        var session = Self.session(Self.stranger, state)
        #expect(!session.isAuthorized)
        let length = UInt32(16 << 20)
        var replies: [KCMStatus] = []
        let header: [UInt8] = [
            UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
        ]
        #expect(
            session.receive(header, now: 0) {
                replies.append(Self.status($0))
                return true
            })
        let chunk = [UInt8](repeating: 0x41, count: 1 << 20)
        for _ in 0..<16 {
            #expect(
                session.receive(chunk, now: 0) {
                    replies.append(Self.status($0))
                    return true
                })
            #expect(session.bufferedByteCount == 0)
        }
        #expect(replies == [.fccPerm])
        #expect(
            state.oversizedRequests.load(ordering: .relaxed) == 0,
            "a stranger's frame is not the owner's oversized request")
    }

    @Test("a request left half-sent past --request-timeout closes the connection and is counted")
    func stalled() {
        let state = Self.state(requestTimeout: 10)
        var session = Self.session(Self.owner, state)
        let frame = KCMRequest.getDefaultCache.encodedFrame()
        #expect(session.receive(frame.prefix(3), now: 100) { _ in true })
        #expect(!session.hasStalled(now: 109))
        #expect(session.hasStalled(now: 110))
        #expect(state.stalledRequests.load(ordering: .relaxed) == 1)
        // A connection idle between whole requests never stalls.
        var idle = Self.session(Self.owner, state)
        #expect(idle.receive(frame, now: 100) { _ in true })
        #expect(!idle.hasStalled(now: 10_000))
    }

    @Test("a failed send closes the connection")
    func sendFails() {
        var session = Self.session(Self.owner, Self.state())
        #expect(!session.receive(KCMRequest.getDefaultCache.encodedFrame(), now: 0) { _ in false })
    }

    /// Holds the store's lock on another thread while `frame` is played through a session for `peer`;
    /// returns whether the session answered without waiting for the lock (the holder gives up after
    /// five seconds, so a session that needed the lock answers only then).
    static func answeredWithoutTheLock(_ peer: PeerCredentials, _ frame: [UInt8]) -> (
        answered: Bool, status: KCMStatus?
    ) {
        let state = Self.state()
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let gaveUp = Atomic<Bool>(false)
        DispatchQueue.global().async {
            state.store.withLock { _ in
                holding.signal()
                if release.wait(timeout: .now() + 5) == .timedOut { gaveUp.store(true, ordering: .relaxed) }
            }
            done.signal()
        }
        holding.wait()
        var session = Self.session(peer, state)
        var status: KCMStatus?
        _ = session.receive(frame, now: 0) {
            status = Self.status($0)
            return true
        }
        release.signal()
        done.wait()
        return (!gaveUp.load(ordering: .relaxed), status)
    }

    @Test("a refused peer is answered without taking the store's lock")
    func refusedPeerTakesNoLock() {
        let result = Self.answeredWithoutTheLock(Self.stranger, KCMRequest.getDefaultCache.encodedFrame())
        #expect(result.answered)
        #expect(result.status == .fccPerm)
    }

    @Test("a large malformed request is decoded, and refused, before the store's lock is taken")
    func decodedOutsideTheLock() {
        // INITIALIZE with a 4 MiB cache name that never ends: decoding fails after reading it all.
        let body: [UInt8] = [2, 0, 0, 4] + [UInt8](repeating: 0x61, count: 4 << 20)
        let length = UInt32(body.count)
        let frame =
            [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
        let result = Self.answeredWithoutTheLock(Self.owner, frame)
        #expect(result.answered)
        #expect(result.status == .ccIO)
    }

    @Test("CCACHED_STOP answers with the daemon's pid and then asks the daemon to stop")
    func stop() throws {
        let (state, asked) = Self.stateCountingStops()
        var session = Self.session(Self.owner, state)
        var reply: [UInt8] = []
        #expect(
            session.receive(KCMRequest.stop.encodedFrame(), now: 0) {
                reply = $0.map { $0 }
                return true
            })
        #expect(Self.status(reply) == .success)
        let pid = try KCMReply(payload: Array(reply[KCMReplyHeader.length...]), for: .stop).asStoppingPID()
        #expect(pid == UInt32(getpid()))
        #expect(asked.value == 1)
        // A stranger cannot stop it.
        var stranger = Self.session(Self.stranger, state)
        #expect(
            stranger.receive(KCMRequest.stop.encodedFrame(), now: 0) {
                reply = $0.map { $0 }
                return true
            })
        #expect(Self.status(reply) == .fccPerm)
        #expect(asked.value == 1)
    }

    @Test("client text in a log line is escaped: no newline, escape or control byte gets through")
    func logEscaping() {
        #expect(LogText.escaped("1000:a\nccached[1]: forged") == "1000:a\\nccached[1]: forged")
        #expect(LogText.escaped("\u{1B}[31mred\u{7F}\u{85}") == "\\u{1b}[31mred\\u{7f}\\u{85}")
        #expect(LogText.escaped("tab\there\\") == "tab\\there\\\\")
        #expect(LogText.escaped("plain ünïcode") == "plain ünïcode")
    }
}

/// Login sessions sharing one daemon: the last to detach stops it, not the first.
@Suite("attached sessions")
struct AttachedSessionTests {
    @Test("two attaches, two detaches: only the second detach asks the daemon to stop")
    func lastDetachStops() throws {
        let (state, stops) = ConnectionSessionTests.stateCountingStops()
        var session = ConnectionSessionTests.session(ConnectionSessionTests.owner, state)
        func count(_ request: KCMRequest) throws -> UInt32 {
            var reply: [UInt8] = []
            _ = session.receive(request.encodedFrame(), now: 0) {
                reply = $0.map { $0 }
                return true
            }
            #expect(ConnectionSessionTests.status(reply) == .success)
            return try KCMReply(payload: Array(reply[KCMReplyHeader.length...]), for: request.opcode!)
                .asAttachedSessions()
        }
        #expect(try count(.attachSession) == 1)
        #expect(try count(.attachSession) == 2)
        #expect(try count(.detachSession) == 1)
        #expect(stops.value == 0, "the first logout must not stop a shared daemon")
        #expect(try count(.detachSession) == 0)
        #expect(stops.value == 1)
        // A detach the daemon never counted (it was started without PAM) is the last one too.
        #expect(try count(.detachSession) == 0)
        #expect(stops.value == 2)
    }

    @Test("a stranger can neither attach nor detach")
    func strangerRefused() {
        let state = ConnectionSessionTests.state()
        var session = ConnectionSessionTests.session(ConnectionSessionTests.stranger, state)
        var statuses: [KCMStatus] = []
        let frames = KCMRequest.attachSession.encodedFrame() + KCMRequest.detachSession.encodedFrame()
        _ = session.receive(frames, now: 0) {
            statuses.append(ConnectionSessionTests.status($0))
            return true
        }
        #expect(statuses == [.fccPerm, .fccPerm])
        #expect(state.attachedSessions.load(ordering: .relaxed) == 0)
    }
}
