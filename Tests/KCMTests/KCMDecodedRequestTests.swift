import KCM
import Testing

/// ``KCMDecodedRequest`` reads a body once: the opcode word whenever the body holds one, whatever
/// the rest says, and the same request or error as ``KCMRequest/init(decoding:)``.
@Suite("KCMDecodedRequest")
struct KCMDecodedRequestTests {
    @Test(
        "the opcode word is there even when the version or the arguments are wrong",
        arguments: [
            ([UInt8](), nil, KCMDecodingError.truncated(offset: 0, needed: 1)),
            ([2, 0, 0x14], nil, .truncated(offset: 2, needed: 1)),
            ([1, 0], nil, .unsupportedVersion(major: 1, minor: 0)),
            ([1, 0, 0x50, 0x01], 0x5001, .unsupportedVersion(major: 1, minor: 0)),
            ([2, 0, 0x00, 0x08, 0x41], 8, .unterminatedName(offset: 4)),
        ] as [([UInt8], UInt16?, KCMDecodingError)])
    func opcodeOfABrokenBody(body: [UInt8], opcode: UInt16?, error: KCMDecodingError) {
        let decoded = KCMDecodedRequest(decoding: body)
        #expect(decoded.opcode == opcode)
        #expect(throws: error) { try decoded.request.get() }
        #expect(throws: error) { try KCMRequest(decoding: body) }
    }

    @Test("a good body gives its opcode word and its request; an unknown opcode decodes as unsupported")
    func goodBodies() throws {
        let decoded = KCMDecodedRequest(decoding: KCMRequest.getPrincipal(name: "1000").encodedBody())
        #expect(decoded.opcode == KCMOpcode.getPrincipal.rawValue)
        guard case .getPrincipal(let name) = try decoded.request.get() else {
            Issue.record("GET_PRINCIPAL did not decode as one")
            return
        }
        #expect(name == "1000")
        let unknown = KCMDecodedRequest(decoding: [2, 0, 0x12, 0x34])
        #expect(unknown.opcode == 0x1234)
        guard case .unsupported(0x1234) = try unknown.request.get() else {
            Issue.record("opcode 0x1234 did not decode as unsupported")
            return
        }
    }
}

/// ``KCMReply/init(payload:for:)`` names every opcode: no reply reads as empty by default.
@Suite("KCMReply reader")
struct KCMReplyReaderTests {
    @Test(
        "a reply to an opcode ccached does not implement is refused, not read as an empty reply",
        arguments: [
            KCMOpcode.getName, .resolve, .chown, .chmod, .getInitialTicket, .getTicket, .addNTLMCred, .haveNTLMCred,
            .delNTLMCred, .doNTLMAuth, .getNTLMUserList,
        ])
    func unimplementedOpcodes(opcode: KCMOpcode) {
        #expect(throws: KCMDecodingError.self) { try KCMReply(payload: [], for: opcode) }
    }

    @Test(
        "the replies without a payload read as empty",
        arguments: [
            KCMOpcode.noop, .initialize, .destroy, .store, .removeCred, .setFlags, .moveCache, .setDefaultCache,
            .setKDCOffset, .replace,
        ])
    func emptyReplies(opcode: KCMOpcode) throws {
        guard case .empty = try KCMReply(payload: [], for: opcode) else {
            Issue.record("\(opcode)'s reply did not read as empty")
            return
        }
    }
}
