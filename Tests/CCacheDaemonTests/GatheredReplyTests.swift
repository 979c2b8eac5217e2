import CCacheDaemon
import Dispatch
import Glibc
import KCM
import Logging
import SecureMemory
import SystemCalls
import TestSupport
import Testing

/// A large credential list goes out gathered from the store (``ReplyFrame``): the bytes a client
/// reads are exactly the ones a one-buffer encoding gives.
@Suite("Gathered credential lists")
struct GatheredReplyTests {
    /// `count` credentials of about `size` bytes each, all different.
    static func credentials(_ count: Int, size: Int) -> [KCMCredential] {
        let client = KCMPrincipal("alice@KCMTEST.LOCAL")
        return (0..<count).map { index in
            KCMCredentialFields(
                client: client, server: KCMPrincipal("svc\(index)/host@KCMTEST.LOCAL"), enctype: 18,
                key: [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 32),
                times: KCMTicketTimes(authtime: 1, starttime: 1, endtime: 2),
                ticket: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            ).credential()
        }
    }

    /// Reads everything from `fd` until the peer closes.
    static func readAll(_ fd: Int32) -> [UInt8] {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return all }
            all += buffer[0..<n]
        }
    }

    @Test("head plus data fields through a socketpair, far larger than its buffer, arrive whole and in order")
    func sendAllDataFields() throws {
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        // 3,000 fields, so more pieces than one sendmsg takes, and 4.5 MB, far more than the socket buffers.
        let fields = (0..<3000).map { index in (0..<(1500 + index % 7)).map { UInt8(truncatingIfNeeded: $0 ^ index) } }
        let head: [UInt8] = [9, 8, 7]
        var expected = head
        for field in fields {
            let length = UInt32(field.count)
            expected += [
                UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8),
                UInt8(truncatingIfNeeded: length),
            ]
            expected += field
        }
        let reader = pair[1]
        let received = Mutexed<[UInt8]>([])
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            received.mutate { $0 = Self.readAll(reader) }
            done.signal()
        }
        let values = fields.map { SecureBytes(copying: $0) }
        try SecureBytes.withUnsafeBytes(of: values) { raw throws(Errno) in
            try Socket.sendAll(pair[0], head, dataFields: raw)
        }
        close(pair[0])
        done.wait()
        close(pair[1])
        #expect(received.value == expected)
    }

    @Test("a GET_CRED_LIST over the threshold is gathered; flattened, it is byte for byte the one-buffer reply")
    func gatheredEqualsEncoded() throws {
        let state = DaemonState(configuration: DaemonConfiguration(socketPath: "/unused", ownerUID: 1000))
        var session = ConnectionSession(
            peer: PeerCredentials(pid: 1, uid: 1000, gid: 1000), state: state,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        defer { session.wipe() }
        let list = Self.credentials(200, size: 1200)
        let name = KCMCacheName("1000")
        var frames: [ReplyFrame] = []
        let request =
            KCMRequest.replace(
                name: name, kdcOffset: 0, principal: KCMPrincipal("alice@KCMTEST.LOCAL"), credentials: list
            )
            .encodedFrame() + KCMRequest.getCredList(name: name).encodedFrame()
        #expect(
            session.receive(
                request, now: 0,
                sendFrame: {
                    frames.append($0.detachedForTest()); return true
                }
            ) { _, _ in
                .timedOut
            })
        #expect(frames.count == 2)
        let gathered = try #require(frames.last)
        #expect(gathered.credentials.count == 200, "over \(ReplyFrame.gatherThreshold) bytes: sent gathered")
        #expect(gathered.head.count == 16, "header and count only")

        var writer = KCMReplyWriter()
        KCMReply.credentialList(list).write(to: &writer.writer)
        writer.finish(status: .success)
        #expect(gathered.flattened == writer.bytes)

        // The bytes-only form hands the same frame over flattened.
        var plain: [[UInt8]] = []
        #expect(
            session.receive(KCMRequest.getCredList(name: name).encodedFrame(), now: 0) {
                plain.append($0.map { $0 }); return true
            })
        #expect(plain == [writer.bytes])
    }
}

extension ReplyFrame {
    /// A copy that outlives the session's wipe of its reply buffer.
    fileprivate func detachedForTest() -> ReplyFrame { ReplyFrame(head: head.map { $0 }, credentials: credentials) }
}
