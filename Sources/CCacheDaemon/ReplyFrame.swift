import KCM
import SecureMemory

/// A reply frame as it goes out: `head`, then — for a large credential list only — each stored
/// credential as a `data` field, sent from where the store keeps it (a gathered write) rather than
/// copied into one buffer first. For every other reply `head` is the whole frame.
public struct ReplyFrame: Sendable {
    /// The header (and the payload, or a credential list's count).
    public var head: [UInt8]
    /// Sent after `head`, each as a big-endian `u32` length and its bytes; usually empty.
    public var credentials: [KCMCredential]

    /// A credential list larger than this is gathered from the store, not copied into `head`.
    /// Smaller ones fit a Unix socket's send buffer (about 208 KiB) and go out in one send from
    /// the event loop.
    public static let gatherThreshold = 192 << 10

    public init(head: [UInt8], credentials: [KCMCredential] = []) {
        self.head = head
        self.credentials = credentials
    }

    /// The whole frame in one array: for callers that want plain bytes (the unit tests, the fuzz
    /// target). The caller wipes it.
    public var flattened: [UInt8] {
        guard !credentials.isEmpty else { return head }
        var writer = KCMWriter(capacity: head.count + credentials.reduce(0) { $0 + 4 + $1.bytes.count })
        writer.writeBytes(head)
        for credential in credentials { writer.writeData(credential.bytes) }
        return writer.bytes
    }

    /// A copy of `head` in storage of its own: the session zeroes its reply buffer in place
    /// (whoever shares it) once a send returns, so a frame kept for later must not share it.
    func detached() -> ReplyFrame {
        let copy = [UInt8](unsafeUninitializedCapacity: head.count) { buffer, count in
            head.withUnsafeBufferPointer { buffer.baseAddress!.initialize(from: $0.baseAddress!, count: $0.count) }
            count = head.count
        }
        return ReplyFrame(head: copy, credentials: credentials)
    }
}
