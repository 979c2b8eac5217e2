import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon serves connections on one event loop and moves one that must wait to a thread of its
/// own: a client that does not read its reply, or one waiting in CCACHED_WATCH, delays nobody.
@Suite("ccached's event loop")
final class EventLoopTests: TestbedSuite {
    /// Gives up a read after `seconds`, so that a daemon stuck on another connection fails the test
    /// instead of hanging it.
    static func limitReads(_ connection: RawKCMConnection, seconds: Int) {
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(connection.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Waits until `connection` has bytes to read (at most `seconds`).
    static func readable(_ connection: RawKCMConnection, seconds: Int32) -> Bool {
        var descriptor = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, seconds * 1000) == 1
    }

    static let client = KCMPrincipal("alice@CCACHED.TEST")

    /// `count` valid credentials for ``client``, each with a ticket of `ticketBytes` bytes that tells
    /// it from the others.
    static func credentials(_ count: Int, ticketBytes: Int) -> [KCMCredential] {
        let now = UInt32(time(nil))
        return (0..<count).map { index in
            KCMCredentialFields(
                client: client, server: KCMPrincipal("svc\(index)/localhost@CCACHED.TEST"), enctype: 18,
                key: [UInt8](repeating: 7, count: 32),
                times: KCMTicketTimes(authtime: now, starttime: now, endtime: now + 3600),
                ticket: [UInt8](repeating: UInt8(truncatingIfNeeded: 0x61 + index), count: ticketBytes)
            ).credential()
        }
    }

    @Test("a client that does not read a 4 MB reply delays nobody, and still gets all of it once it reads")
    func unreadReplyDelaysNobody() throws {
        let slow = try RawKCMConnection(path: bed.socketPath)
        let client = Self.client
        let credentials = Self.credentials(4, ticketBytes: 1_000_000)
        let name = KCMCacheName("\(getuid())")
        let stored = try slow.call(.replace(name: name, kdcOffset: 0, principal: client, credentials: credentials))
        #expect(stored.status == .success)

        // Far more than a Unix socket buffers: the daemon cannot send it all while nobody reads.
        try slow.send(KCMRequest.getCredList(name: name).encodedFrame())
        #expect(Self.readable(slow, seconds: 10), "the daemon started answering the slow client")

        let other = try RawKCMConnection(path: bed.socketPath)
        Self.limitReads(other, seconds: 10)
        #expect(try other.call(.getDefaultCache).status == .success)
        #expect(try other.call(.getPrincipal(name: name)).status == .success)
        try bed.expectSuccess("klist", "-s")

        Self.limitReads(slow, seconds: 30)
        let reply = try slow.receiveReply()
        #expect(reply.status == .success)
        let listed = try KCMReply(payload: reply.payload, for: .getCredList).asCredentialList()
        #expect(listed.map(\.bytes) == credentials.map(\.bytes), "every credential, byte for byte")
        // The connection goes on serving after the slow reply.
        #expect(try slow.call(.getDefaultCache).status == .success)
    }

    @Test(
        "three pipelined 160 kB replies nobody reads: the one the socket did not take goes on from a thread, in order")
    func pipelinedRepliesBackLog() throws {
        let slow = try RawKCMConnection(path: bed.socketPath)
        let client = Self.client
        // Under the gathering threshold, so each reply is one buffer sent from the event loop.
        let credentials = Self.credentials(120, ticketBytes: 1200)
        let name = KCMCacheName("\(getuid())")
        #expect(
            try slow.call(.replace(name: name, kdcOffset: 0, principal: client, credentials: credentials)).status
                == .success)
        let list = KCMRequest.getCredList(name: name).encodedFrame()
        try slow.send(list + list + list + KCMRequest.getDefaultCache.encodedFrame())
        #expect(Self.readable(slow, seconds: 10), "the daemon started answering the slow client")

        let other = try RawKCMConnection(path: bed.socketPath)
        Self.limitReads(other, seconds: 10)
        #expect(try other.call(.getDefaultCache).status == .success)

        Self.limitReads(slow, seconds: 30)
        for round in 0..<3 {
            let reply = try slow.receiveReply()
            #expect(reply.status == .success, "reply \(round)")
            let listed = try KCMReply(payload: reply.payload, for: .getCredList).asCredentialList()
            #expect(listed.map(\.bytes) == credentials.map(\.bytes), "reply \(round), byte for byte")
        }
        let last = try slow.receiveReply()
        #expect(last.status == .success)
        #expect(last.payload == Array("\(getuid())".utf8) + [0])
    }

    @Test("a client waiting in CCACHED_WATCH delays nobody, and is woken by another client's change")
    func watcherDelaysNobody() throws {
        let watcher = try RawKCMConnection(path: bed.socketPath)
        Self.limitReads(watcher, seconds: 20)
        let first = try watcher.call(.watch(KCMWatch.Request(timeoutMilliseconds: 0)))
        let epoch = try KCMReply(payload: first.payload, for: .watch).asWatchReply()
        try watcher.send(
            KCMRequest.watch(KCMWatch.Request(epoch: epoch.epoch, after: epoch.next, timeoutMilliseconds: 15_000))
                .encodedFrame())

        let other = try RawKCMConnection(path: bed.socketPath)
        Self.limitReads(other, seconds: 10)
        let name = KCMCacheName("\(getuid()):watched")
        #expect(
            try other.call(.initialize(name: name, principal: KCMPrincipal("alice@CCACHED.TEST"))).status == .success)

        let woken = try watcher.receiveReply()
        #expect(woken.status == .success)
        let events = try KCMReply(payload: woken.payload, for: .watch).asWatchReply().events
        #expect(events.map(\.cacheName) == [name])
    }
}
