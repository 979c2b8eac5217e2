import KCM
import Testing

/// The payloads of CCACHED_WATCH (0x5001), CCACHED_RENEW (0x5002) and CCACHED_RENEWAL_STATE (0x5003)
/// have the layouts `Docs/protocol.md` gives, round-trip, and throw (never trap) on every truncation.
@Suite("ccached watch and renew payloads")
struct KCMChangeEventTests {
    func encode(_ write: (inout KCMWriter) -> Void) -> [UInt8] {
        var writer = KCMWriter()
        write(&writer)
        return writer.bytes
    }

    /// Every proper prefix of `bytes` must fail to decode with an error, not a trap.
    func expectEveryTruncationThrows<T>(_ bytes: [UInt8], _ read: (inout KCMReader) throws(KCMDecodingError) -> T) {
        for length in 0..<bytes.count {
            var reader = KCMReader(Array(bytes[0..<length]))
            #expect(throws: KCMDecodingError.self, "prefix of \(length) bytes") { _ = try read(&reader) }
        }
    }

    static let watchRequest = KCMWatch.Request(
        epoch: 0x0102_0304_0506_0708, after: 0x0000_0001_0000_0002, timeoutMilliseconds: 30_000)

    @Test("WATCH request: u64 epoch, u64 after, u32 timeout")
    func watchRequest() throws {
        let bytes = encode(Self.watchRequest.write)
        #expect(bytes == wire("01020304 05060708  00000001 00000002  00007530"))
        var reader = KCMReader(bytes)
        #expect(try KCMWatch.Request.read(from: &reader) == Self.watchRequest)
        #expect(reader.remaining == 0)
        expectEveryTruncationThrows(bytes, KCMWatch.Request.read)
        #expect(KCMWatch.opcode == 0x5001)
    }

    static let watchReply = KCMWatch.Reply(
        epoch: 0xAABB, next: 9,
        events: [
            KCMChangeEvent(counter: 8, kind: .credentialsRenewed, cacheName: "1000"),
            KCMChangeEvent(counter: 9, kind: .defaultSwitched, cacheName: "1000:2"),
        ])

    @Test("WATCH reply: version, epoch, next, flags, count, events (u64 counter, u8 kind, name)")
    func watchReply() throws {
        let bytes = encode(Self.watchReply.write)
        #expect(
            bytes
                == wire(
                    """
                    00000001  00000000 0000AABB  00000000 00000009  00000000  00000002
                    00000000 00000008 06 "1000" 00
                    00000000 00000009 03 "1000:2" 00
                    """))
        var reader = KCMReader(bytes)
        #expect(try KCMWatch.Reply.read(from: &reader) == Self.watchReply)
        expectEveryTruncationThrows(bytes, KCMWatch.Reply.read)
    }

    @Test("WATCH reply with resync: flag bit 0, no events")
    func watchResync() throws {
        let reply = KCMWatch.Reply(epoch: 5, next: 300, resync: true)
        let bytes = encode(reply.write)
        #expect(bytes == wire("00000001 00000000 00000005 00000000 0000012C 00000001 00000000"))
        var reader = KCMReader(bytes)
        #expect(try KCMWatch.Reply.read(from: &reader) == reply)
    }

    @Test("WATCH reply: an absurd count and version 0 are refused; unknown kinds are kept")
    func watchHostile() throws {
        var absurd = KCMReader(wire("00000001 00000000 00000005 00000000 00000001 00000000 FFFFFFFF"))
        #expect(throws: KCMDecodingError.implausibleCount(field: "change event", count: 0xFFFF_FFFF)) {
            _ = try KCMWatch.Reply.read(from: &absurd)
        }
        var zero = KCMReader(wire("00000000 00000000 00000005 00000000 00000001 00000000 00000000"))
        #expect(throws: KCMDecodingError.self) { _ = try KCMWatch.Reply.read(from: &zero) }
        // A kind from a newer daemon, and a later version with the same layout.
        var newer = KCMReader(
            wire("00000002 00000000 00000005 00000000 00000001 00000000 00000001 00000000 00000001 63 \"x\" 00"))
        let reply = try KCMWatch.Reply.read(from: &newer)
        #expect(reply.events.first?.kind.rawValue == 0x63)
        #expect(reply.events.first?.kind.description == "kind-99")
        #expect(KCMChangeEvent.Kind.credentialsRenewed.description == "renewed")
    }

    @Test("the known kinds are 1 to 7 in wire order, each with the word ccachectl watch prints")
    func kindWords() {
        let kinds = KCMChangeEvent.Kind.allCases
        #expect(kinds.map(\.rawValue) == Array(1...7))
        #expect(
            kinds.map(\.description) == ["created", "destroyed", "default", "stored", "removed", "renewed", "purged"])
    }

    @Test("RENEW request: a name, empty for every cache")
    func renewRequest() throws {
        let one = KCMRenew.Request(cacheName: "1000:1")
        #expect(encode(one.write) == wire("\"1000:1\" 00"))
        let all = KCMRenew.Request()
        #expect(encode(all.write) == wire("00"))
        for request in [one, all] {
            var reader = KCMReader(encode(request.write))
            #expect(try KCMRenew.Request.read(from: &reader) == request)
        }
        var unterminated = KCMReader(wire("\"1000\""))
        #expect(throws: KCMDecodingError.self) { _ = try KCMRenew.Request.read(from: &unterminated) }
        #expect(KCMRenew.opcode == 0x5002)
    }

    static let renewReply = KCMRenew.Reply(results: [
        KCMRenew.CacheResult(cacheName: "1000", outcome: .renewed, renewedCount: 2, endtime: 0x6B02_3137),
        KCMRenew.CacheResult(
            cacheName: "1000:1", outcome: .failed, failedCount: 1, message: "Cannot contact any KDC"),
    ])

    @Test("RENEW reply: count, then per cache name, outcome, renewed, failed, endtime, message")
    func renewReply() throws {
        let bytes = encode(Self.renewReply.write)
        #expect(
            bytes
                == wire(
                    """
                    00000002
                    "1000" 00  00  00000002 00000000 6B023137  00000000
                    "1000:1" 00  02  00000000 00000001 00000000  00000016 "Cannot contact any KDC"
                    """))
        var reader = KCMReader(bytes)
        #expect(try KCMRenew.Reply.read(from: &reader) == Self.renewReply)
        expectEveryTruncationThrows(bytes, KCMRenew.Reply.read)
        var absurd = KCMReader(wire("7FFFFFFF 00"))
        #expect(throws: KCMDecodingError.self) { _ = try KCMRenew.Reply.read(from: &absurd) }
        #expect(KCMRenew.Outcome.nothingToRenew.description == "nothing to renew")
    }

    static let state = KCMRenewalState(
        worker: .init(enabled: true, busy: false, queued: 1, renewed: 0x0000_0001_0000_0007, failed: 3),
        caches: [
            .init(cacheName: "1000", nextDue: 0x6B02_3137, lastRenewal: 0x6B02_0000),
            .init(cacheName: "1000:1", consecutiveFailures: 2, lastError: "down", note: "x"),
        ])

    @Test("RENEWAL_STATE: version, worker, count, per cache")
    func renewalState() throws {
        let bytes = encode(Self.state.write)
        #expect(
            bytes
                == wire(
                    """
                    00000001  01 00 00000001  00000001 00000007  00000000 00000003
                    00000002
                    "1000" 00  00000000 6B023137  00000000 6B020000  00000000  00000000  00000000
                    "1000:1" 00  00000000 00000000  00000000 00000000  00000002  00000004 "down"  00000001 "x"
                    """))
        var reader = KCMReader(bytes)
        #expect(try KCMRenewalState.read(from: &reader) == Self.state)
        expectEveryTruncationThrows(bytes, KCMRenewalState.read)
        var badFlag = KCMReader(wire("00000001 02 00 00000000 00000000 00000000 00000000 00000000 00000000"))
        #expect(throws: KCMDecodingError.self) { _ = try KCMRenewalState.read(from: &badFlag) }
        #expect(KCMRenewalState.opcode == 0x5003)
    }
}
