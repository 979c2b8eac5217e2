import KCM
import TestSupport
import Testing

/// The CCACHED_STATUS payload (opcode 0x5000) has the big-endian layout its documentation gives,
/// round-trips, refuses versions before 2, and lets a later version append fields that older
/// readers skip.
@Suite("KCMDaemonStatus")
struct KCMDaemonStatusTests {
    /// The daemon's totals, the first 44 bytes.
    static let totals = wire(
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

    /// Every field distinct, and each u64 with both halves set, so a swapped or misplaced word shows.
    static let limits = KCMDaemonStatus.Limits(
        maximumRequestBytes: 0x0100_0000, largestRequestBytes: 0x3000, oversizedRequests: 0x0000_0001_0000_0002,
        maximumCaches: 1024, cacheRefusals: 0x0000_0003_0000_0004,
        maximumCredentialsPerCache: 65536, largestCacheCredentials: 17,
        credentialsPerCacheRefusals: 0x0000_0005_0000_0006,
        maximumCredentialBytes: 0x0000_0100_0000_0000, credentialBytesRefusals: 0x0000_0007_0000_0008,
        maximumConnections: 4096, connectionRefusals: 0x0000_0009_0000_000A,
        requestTimeout: 10, stalledRequests: 0x0000_000B_0000_000C,
        credentialMemoryBytes: 0x0000_000D_0001_0000, lockedMemoryBytes: 0x0000_000E_0000_8000,
        memlockLimit: 0x0000_000F_0080_0000, unlockedMappings: 0x0000_0010_0000_0011)

    static let statusV2 = KCMDaemonStatus(
        pid: 4242, ownerUID: 1000, startedAt: 0x0000_0001_6B02_3137, caches: 3, credentials: 17,
        credentialBytes: 0x0000_0002_0000_0010, connections: 5, idleTimeout: 900, limits: limits)

    /// Version 3: version 2 and the attached login sessions.
    static var statusV3: KCMDaemonStatus {
        var status = statusV2
        status.attachedSessions = 0x0000_0102
        return status
    }

    static var bytesV3: [UInt8] { wire("00000003") + Array(bytesV2.dropFirst(4)) + wire("00000102") }

    /// Version 4: version 3, the memory that holds the tickets and whether a state file is kept.
    static var statusV4: KCMDaemonStatus {
        var status = statusV3
        status.memoryKind = .secret
        status.keepsStateFile = false
        return status
    }

    static var bytesV4: [UInt8] { wire("00000004") + Array(bytesV3.dropFirst(4)) + wire("00000001 00000000") }

    static let bytesV2 =
        wire("00000002")
        + Array(totals.dropFirst(4))
        + wire(
            """
            01000000
            00003000
            00000001 00000002
            00000400
            00000003 00000004
            00010000
            00000011
            00000005 00000006
            00000100 00000000
            00000007 00000008
            00001000
            00000009 0000000A
            0000000A
            0000000B 0000000C
            0000000D 00010000
            0000000E 00008000
            0000000F 00800000
            00000010 00000011
            """)

    @Test(
        "version 4: the totals, each limit, locked memory, attached sessions, memory kind and state file; 172 bytes")
    func layoutV4() {
        var writer = KCMWriter()
        Self.statusV4.write(to: &writer)
        #expect(writer.bytes == Self.bytesV4)
        #expect(writer.bytes.count == 172)
        #expect(writer.bytes.count == KCMDaemonStatus.encodedLength)
    }

    @Test("a version 4 payload reads back to the same status, memory kind and state file included")
    func roundTripV4() throws {
        var reader = KCMReader(Self.bytesV4)
        #expect(try KCMDaemonStatus.read(from: &reader) == Self.statusV4)
        #expect(reader.remaining == 0)
        var kept = Self.statusV4
        kept.memoryKind = .anonymous
        kept.keepsStateFile = true
        var writer = KCMWriter()
        kept.write(to: &writer)
        #expect(Array(writer.bytes.suffix(8)) == wire("00000000 00000001"))
        reader = KCMReader(writer.bytes)
        #expect(try KCMDaemonStatus.read(from: &reader) == kept)
    }

    @Test("a memory kind this reader does not know reads as other, not as an error")
    func unknownMemoryKind() throws {
        var bytes = Self.bytesV4
        bytes.replaceSubrange(164..<168, with: be32(7))
        var reader = KCMReader(bytes)
        #expect(try KCMDaemonStatus.read(from: &reader).memoryKind == .other(7))
    }

    @Test("a version 3 payload (164 bytes) still reads: anonymous memory, state file unknown")
    func versionThree() throws {
        var reader = KCMReader(Self.bytesV3)
        let status = try KCMDaemonStatus.read(from: &reader)
        #expect(status == Self.statusV3)
        #expect(status.memoryKind == .anonymous)
        #expect(status.keepsStateFile == nil)
        #expect(reader.remaining == 0)
        #expect(Self.bytesV3.count == 164)
    }

    @Test("a version 2 payload (160 bytes) still reads, with no sessions attached")
    func versionTwo() throws {
        var reader = KCMReader(Self.bytesV2)
        #expect(try KCMDaemonStatus.read(from: &reader) == Self.statusV2)
        #expect(reader.remaining == 0)
        #expect(Self.bytesV2.count == 160)
    }

    @Test("a later version's extra fields are left unread")
    func laterVersion() throws {
        var newer = Self.bytesV4
        newer.replaceSubrange(0..<4, with: be32(5))
        newer += be32(0xAAAA_AAAA) + be32(0xBBBB_BBBB)
        var reader = KCMReader(newer)
        #expect(try KCMDaemonStatus.read(from: &reader) == Self.statusV4)
        #expect(reader.remaining == 8)
    }

    @Test("versions 0 and 1 are refused (no daemon that wrote version 1 was released)", arguments: [UInt32(0), 1])
    func olderVersions(version: UInt32) {
        var older = Self.bytesV2
        older.replaceSubrange(0..<4, with: be32(version))
        var reader = KCMReader(older)
        #expect(throws: KCMDecodingError.invalidValue(field: "status version", value: version)) {
            try KCMDaemonStatus.read(from: &reader)
        }
    }

    @Test("every truncation of a payload throws")
    func truncations() {
        for payload in [Self.bytesV2, Self.bytesV3, Self.bytesV4] {
            for length in 0..<payload.count {
                var reader = KCMReader(Array(payload.prefix(length)))
                #expect(throws: KCMDecodingError.self) { try KCMDaemonStatus.read(from: &reader) }
            }
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
