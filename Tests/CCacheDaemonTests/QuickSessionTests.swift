import CCacheDaemon
import CredentialStore
import Glibc
import KCM
import Logging
import SystemCalls
import TestSupport
import Testing

/// ``ConnectionSession/receiveWithoutWaiting(_:now:send:)``, the event loop's form: what it answers
/// at once, what it leaves for a thread, and that the thread (the blocking `receive`) picks up
/// exactly there, in order.
@Suite("ConnectionSession without waiting")
struct QuickSessionTests {
    let state = DaemonState(configuration: DaemonConfiguration(socketPath: "/unused", ownerUID: 1000))

    func session(uid: uid_t = 1000) -> ConnectionSession {
        ConnectionSession(
            peer: PeerCredentials(pid: 10, uid: uid, gid: uid), state: state,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// The status word of a reply frame.
    static func status(_ frame: [UInt8]) -> KCMStatus {
        try! KCMReplyHeader(decoding: frame).status
    }

    /// Feeds `bytes` to `session` on the loop, every reply sent at once: where the connection is
    /// left, and the status of each reply.
    static func answeredAtOnce(_ bytes: [UInt8], by session: inout ConnectionSession) -> (
        progress: ConnectionSession.QuickProgress, statuses: [KCMStatus]
    ) {
        var statuses: [KCMStatus] = []
        let progress = session.receiveWithoutWaiting(bytes, now: 0) {
            statuses.append(Self.status($0))
            return .sent
        }
        return (progress, statuses)
    }

    /// The payload of a reply frame.
    static func payload(_ frame: [UInt8]) -> [UInt8] { Array(frame[KCMReplyHeader.length...]) }

    @Test("a WATCH is set aside for a thread; it and the frames behind it are answered there, in order")
    func watchGoesToAThread() throws {
        var session = session()
        defer { session.wipe() }
        let bytes =
            KCMRequest.getDefaultCache.encodedFrame()
            + KCMRequest.watch(KCMWatch.Request(timeoutMilliseconds: 60_000)).encodedFrame()
            + KCMRequest.getPrincipal(name: "1000").encodedFrame()
        var quick: [[UInt8]] = []
        let progress = session.receiveWithoutWaiting(bytes, now: 0) {
            quick.append($0.map { $0 })
            return .sent
        }
        #expect(progress == .needsThread)
        #expect(quick.count == 1, "only the request before the WATCH is answered on the loop")
        #expect(quick.first.map(Self.payload) == Array("1000".utf8) + [0])

        var waits = 0
        var later: [[UInt8]] = []
        let open = session.receive([], now: 0) {
            later.append($0.map { $0 })
            return true
        } waitForChange: { _, _ in
            waits += 1
            return .timedOut
        }
        #expect(open)
        #expect(later.count == 2)
        // Epoch 0 answers at once (resync), so the WATCH needs no wait here; it is its reply that comes first.
        let watch = try KCMReply(payload: Self.payload(try #require(later.first)), for: .watch).asWatchReply()
        #expect(watch.resync)
        #expect(later.last.map(Self.status) == .fccNoFile, "then GET_PRINCIPAL of a cache that does not exist")
        #expect(waits == 0)
    }

    @Test("a RENEW is set aside for a thread too (it waits for the KDC)")
    func renewGoesToAThread() {
        var session = session()
        defer { session.wipe() }
        let answered = Self.answeredAtOnce(KCMRequest.renew(KCMRenew.Request()).encodedFrame(), by: &session)
        #expect(answered.progress == .needsThread)
        #expect(answered.statuses.isEmpty)
    }

    @Test("a reply the socket did not take stops the answering; the frames behind it wait for the thread")
    func queuedReplyStops() {
        var session = session()
        defer { session.wipe() }
        let bytes = KCMRequest.getDefaultCache.encodedFrame() + KCMRequest.getPrincipal(name: "1000").encodedFrame()
        var quick = 0
        let progress = session.receiveWithoutWaiting(bytes, now: 0) { _ in
            quick += 1
            return .queued
        }
        #expect(progress == .needsThread)
        #expect(quick == 1)
        var statuses: [KCMStatus] = []
        #expect(
            session.receive([], now: 0) {
                statuses.append(Self.status($0))
                return true
            })
        #expect(statuses == [.fccNoFile])
    }

    /// A WATCH the loop refuses at once, never setting it aside for a thread.
    struct RefusedWatch: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let uid: uid_t
        let frame: [UInt8]
        let status: KCMStatus
    }

    static let refusedWatches = [
        RefusedWatch(
            testDescription: "a stranger's (no thread for a refused peer)", uid: 4242,
            frame: KCMRequest.watch(KCMWatch.Request(timeoutMilliseconds: 60_000)).encodedFrame(), status: .fccPerm),
        // Version 2.0, CCACHED_WATCH, and a counter cut short: the opcode alone would say "waits".
        RefusedWatch(
            testDescription: "one whose body does not decode (decided once, before any thread)", uid: 1000,
            frame: [0, 0, 0, 6, 2, 0, 0x50, 0x01, 0, 0], status: .ccIO),
    ]

    @Test("a refused WATCH is answered on the loop at once, never set aside for a thread", arguments: refusedWatches)
    func watchRefusedAtOnce(_ watch: RefusedWatch) {
        var session = session(uid: watch.uid)
        defer { session.wipe() }
        let answered = Self.answeredAtOnce(watch.frame, by: &session)
        #expect(answered.progress == .open)
        #expect(answered.statuses == [watch.status])
    }

    @Test("a failed send closes; a half-sent request keeps the connection open")
    func failedSendAndHalfFrame() {
        var session = session()
        defer { session.wipe() }
        #expect(
            session.receiveWithoutWaiting(KCMRequest.getDefaultCache.encodedFrame(), now: 0) { _ in .failed } == .close)
        var other = self.session()
        defer { other.wipe() }
        let frame = KCMRequest.getDefaultCache.encodedFrame()
        #expect(other.receiveWithoutWaiting(frame.prefix(3), now: 0) { _ in .sent } == .open)
    }
}
