import KCM
import Testing

/// ``KCMReplyHeader`` reads back exactly what ``KCMReplyWriter`` writes, and refuses a header that
/// is cut short or whose length cannot hold its own status word.
@Suite("KCMReplyHeader")
struct KCMReplyHeaderTests {
    @Test("A written reply's header reads back as its length, transport word and status")
    func readsWhatTheWriterWrote() throws {
        var success = KCMReplyWriter()
        KCMReply.name("501:abc").write(to: &success.writer)
        success.finish(status: .success)
        let header = try KCMReplyHeader(decoding: success.bytes)
        #expect(header == KCMReplyHeader(replyLength: 4 + 8, status: .success))
        #expect(header.payloadLength == 8)
        #expect(success.bytes.count == KCMReplyHeader.length + header.payloadLength)

        var failure = KCMReplyWriter()
        KCMReply.name("dropped").write(to: &failure.writer)
        failure.finish(status: .fccNoFile)
        let error = try KCMReplyHeader(decoding: failure.bytes)
        #expect(error.status == .fccNoFile)
        #expect(error.payloadLength == 0)
        #expect(error.effectiveStatus == .fccNoFile)
    }

    @Test("A non-zero transport word is the status a client acts on")
    func transportWordWins() throws {
        let bytes: [UInt8] = [0, 0, 0, 4, 0x96, 0xC7, 0x3A, 0xC1, 0, 0, 0, 0]
        let header = try KCMReplyHeader(decoding: bytes)
        #expect(header.status == .success)
        #expect(header.effectiveStatus == .ccIO)
    }

    @Test("Fewer than 12 bytes, or a length below 4, is refused")
    func refusesShortOrInconsistentHeaders() {
        #expect(throws: KCMDecodingError.self) { try KCMReplyHeader(decoding: [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]) }
        #expect(throws: KCMDecodingError.self) {
            try KCMReplyHeader(decoding: [0, 0, 0, 3] + [UInt8](repeating: 0, count: 8))
        }
    }

    @Test("Bytes after the header are not read")
    func ignoresWhatFollows() throws {
        let header = try KCMReplyHeader(decoding: [0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0xAA, 0xBB])
        #expect(header.payloadLength == 2)
    }
}
