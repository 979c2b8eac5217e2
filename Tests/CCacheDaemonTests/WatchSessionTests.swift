import CCacheDaemon
import CredentialStore
import Glibc
import KCM
import Logging
import SystemCalls
import TestSupport
import Testing

/// CCACHED_WATCH through ``ConnectionSession`` with the wait in a closure: when it waits, on what,
/// and what wakes it.
@Suite("CCACHED_WATCH in a session")
struct WatchSessionTests {
    let state = DaemonState(configuration: DaemonConfiguration(socketPath: "/unused", ownerUID: getuid()))

    func session() -> ConnectionSession {
        let peer = PeerCredentials(pid: 1, uid: state.configuration.ownerUID, gid: 1)
        return ConnectionSession(
            peer: peer, state: state, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// Sends one request; returns the watch reply (nil when the connection closed) and the waits asked for.
    func watch(
        _ request: KCMWatch.Request, wait: @escaping (Int32?, Int32) -> ConnectionSession.Wake = { _, _ in .timedOut }
    ) throws -> (reply: KCMWatch.Reply?, waits: [Int32]) {
        var session = session()
        defer { session.wipe() }
        var frames: [[UInt8]] = []
        var waits: [Int32] = []
        let open = session.receive(
            KCMRequest.watch(request).encodedFrame(), now: 0,
            send: {
                frames.append($0.map { $0 })
                return true
            },
            waitForChange: { beacon, milliseconds in
                waits.append(milliseconds)
                return wait(beacon, milliseconds)
            })
        guard open else { return (nil, waits) }
        let frame = try #require(frames.first)
        #expect(try KCMReplyHeader(decoding: frame).status == .success)
        return (try KCMReply(payload: Array(frame[KCMReplyHeader.length...]), for: .watch).asWatchReply(), waits)
    }

    func change(_ name: KCMCacheName) {
        var other = session()
        defer { other.wipe() }
        _ = other.receive(
            KCMRequest.initialize(name: name, principal: KCMPrincipal("alice@KCMTEST.LOCAL")).encodedFrame(), now: 0
        ) { _ in true }
    }

    @Test("epoch 0 answers resync at once, without waiting")
    func firstResync() throws {
        change("1000")
        let (reply, waits) = try watch(KCMWatch.Request(timeoutMilliseconds: 60_000))
        #expect(reply?.resync == true)
        #expect(reply?.next == 1)
        #expect(waits.isEmpty)
    }

    @Test("nothing new: waits on a beacon for at most the (capped) timeout, then answers no events")
    func timesOut() throws {
        let epoch = try #require(try watch(KCMWatch.Request()).reply).epoch
        var sawBeacon = false
        let (reply, waits) = try watch(KCMWatch.Request(epoch: epoch, after: 0, timeoutMilliseconds: .max)) {
            beacon, _ in
            sawBeacon = beacon != nil
            return .timedOut
        }
        #expect(sawBeacon)
        #expect(waits.count == 1)
        #expect(waits.allSatisfy { $0 > 0 && $0 <= Int32(ConnectionSession.maximumWatchMilliseconds) })
        #expect(reply?.events.isEmpty == true)
        #expect(reply?.resync == false)
        #expect(reply?.next == 0)
    }

    @Test("a change by another connection fires the beacon the waiter holds, and the waiter answers it")
    func wokenByChange() throws {
        let epoch = try #require(try watch(KCMWatch.Request()).reply).epoch
        var fired = false
        let (reply, _) = try watch(KCMWatch.Request(epoch: epoch, after: 0, timeoutMilliseconds: 60_000)) { beacon, _ in
            guard let beacon else { return .timedOut }
            var before = pollfd(fd: beacon, events: Int16(POLLIN), revents: 0)
            #expect(poll(&before, 1, 0) == 0, "not fired before the change")
            change("1000:7")
            var after = pollfd(fd: beacon, events: Int16(POLLIN), revents: 0)
            fired = poll(&after, 1, 0) == 1
            return .changed
        }
        #expect(fired)
        #expect(reply?.events.map(\.cacheName) == ["1000:7"])
        #expect(reply?.events.first?.kind == .cacheCreated)
        #expect(reply?.next == 1)
    }

    @Test("a watcher whose peer hung up closes its connection")
    func peerGone() throws {
        let epoch = try #require(try watch(KCMWatch.Request()).reply).epoch
        let (reply, waits) = try watch(KCMWatch.Request(epoch: epoch, after: 0, timeoutMilliseconds: 60_000)) { _, _ in
            .peerGone
        }
        #expect(reply == nil)
        #expect(waits.count == 1)
    }
}
