import KCM
import Testing

/// The CCACHED_STATUS payload (opcode 0x5000) has the big-endian layout its documentation gives,
/// round-trips, refuses version 0, and lets a later version append fields that older readers skip.
@Suite("KCMDaemonStatus")
struct KCMDaemonStatusTests {
    static let status = KCMDaemonStatus(
        pid: 4242, ownerUID: 1000, startedAt: 0x0000_0001_6B02_3137, caches: 3, credentials: 17,
        credentialBytes: 0x0000_0002_0000_0010, connections: 5, idleTimeout: 900)

    static let bytes = wire(
        """
        00000001
        00001092
        000003E8
        00000001 6B023137
        00000003
        00000011
        00000002 00000010
        00000005
        00000384
        """)

    @Test("the payload is version, pid, uid, u64 start, caches, credentials, u64 bytes, connections, idle timeout")
    func layout() {
        var writer = KCMWriter()
        Self.status.write(to: &writer)
        #expect(writer.bytes == Self.bytes)
    }

    @Test("the payload reads back to the same status")
    func roundTrip() throws {
        var reader = KCMReader(Self.bytes)
        #expect(try KCMDaemonStatus.read(from: &reader) == Self.status)
        #expect(reader.remaining == 0)
    }

    @Test("a later version's extra fields are left unread")
    func laterVersion() throws {
        var newer = Self.bytes
        newer.replaceSubrange(0..<4, with: be32(2))
        newer += be32(0xAAAA_AAAA) + be32(0xBBBB_BBBB)
        var reader = KCMReader(newer)
        #expect(try KCMDaemonStatus.read(from: &reader) == Self.status)
        #expect(reader.remaining == 8)
    }

    @Test("version 0 is refused")
    func versionZero() {
        var zero = Self.bytes
        zero.replaceSubrange(0..<4, with: be32(0))
        var reader = KCMReader(zero)
        #expect(throws: KCMDecodingError.invalidValue(field: "status version", value: 0)) {
            try KCMDaemonStatus.read(from: &reader)
        }
    }

    @Test("every truncation of the payload throws")
    func truncations() {
        for length in 0..<Self.bytes.count {
            var reader = KCMReader(Array(Self.bytes.prefix(length)))
            #expect(throws: KCMDecodingError.self) { try KCMDaemonStatus.read(from: &reader) }
        }
    }

    @Test("the request is opcode 0x5000 with no arguments")
    func request() throws {
        #expect(KCMOpcode.daemonStatus.rawValue == 0x5000)
        #expect(KCMOpcode.privateRange.contains(KCMOpcode.daemonStatus.rawValue))
        #expect(KCMRequest.daemonStatus.encodedBody() == wire("02 00 5000"))
        guard case .daemonStatus = try KCMRequest(decoding: wire("02 00 5000")) else {
            Issue.record("02 00 50 00 did not decode as CCACHED_STATUS")
            return
        }
    }
}
