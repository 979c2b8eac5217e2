import KCM
import TestSupport
import Testing

/// The codec reads and writes exactly the bytes captured from MIT krb5 1.20 traffic (kcm-protocol.md
/// §1.3, §1.4, §2.4, §2.6, §2.8), and the status and opcode numbers are those of §3 and §4.
@Suite("Golden bytes from the protocol document")
struct KCMGoldenBytesTests {
    // MARK: §1.3 / §1.4 framing

    @Test("GET_DEFAULT_CACHE: body 02 00 00 14, frame 00000004 02000014")
    func getDefaultCacheRequest() throws {
        let body = wire("02 00 0014")
        guard case .getDefaultCache = try KCMRequest(decoding: body) else {
            Issue.record("02 00 00 14 did not decode as GET_DEFAULT_CACHE")
            return
        }
        #expect(KCMRequest.getDefaultCache.encodedBody() == body)
        #expect(KCMRequest.getDefaultCache.encodedFrame() == wire("00000004 02000014"))

        var decoder = KCMFrameDecoder(maximumLength: 1 << 20)
        decoder.append(wire("00000004 02000014"))
        #expect(decoder.nextFrame() == .request(body))
        #expect(decoder.nextFrame() == nil)
    }

    @Test("GET_DEFAULT_CACHE reply for \"0\": 00000006 00000000 00000000 30 00")
    func getDefaultCacheReply() {
        var reply = KCMReplyWriter()
        reply.writer.write(KCMCacheName("0"))
        #expect(reply.payloadCount == 2)
        reply.finish(status: .success)
        #expect(reply.bytes == wire("00000006 00000000 00000000 30 00"))
    }

    @Test("an error reply drops the payload and keeps the transport word 0")
    func errorReply() {
        var reply = KCMReplyWriter()
        reply.writer.write(KCMCacheName("1000"))
        reply.finish(status: .fccNoFile)
        #expect(reply.bytes == wire("00000004 00000000 96C73AC3"))
    }

    @Test("a reply writer can be reset and reused")
    func replyReuse() {
        var reply = KCMReplyWriter()
        reply.writer.write(KCMCacheName("a-much-longer-first-name"))
        reply.finish(status: .success)
        reply.reset()
        #expect(reply.payloadCount == 0)
        reply.writer.write(Int32(-5))
        reply.finish(status: .success)
        #expect(reply.bytes == wire("00000008 00000000 00000000 FFFFFFFB"))
    }

    // MARK: §2.4 principal

    @Test("alice@KCMTEST.LOCAL decodes and re-encodes identically")
    func principal() throws {
        let bytes = wire("00000001 00000001 0000000d 4b434d544553542e4c4f43414c 00000005 616c696365")
        var reader = KCMReader(bytes)
        let principal = try KCMPrincipal.read(from: &reader)
        #expect(reader.remaining == 0)
        #expect(principal.nameType == 1)
        #expect(principal.realm == ascii("KCMTEST.LOCAL"))
        #expect(principal.components == [ascii("alice")])
        #expect(principal.description == "alice@KCMTEST.LOCAL")
        var writer = KCMWriter()
        principal.write(to: &writer)
        #expect(writer.bytes == bytes)
    }

    // MARK: §2.8 RETRIEVE of krb5_cc_get_config(start_realm)

    static let startRealmRetrieve = wire(
        """
        02 00 0007 "0" 00
        00000001
        00000003
        00000001 00000001 0000000d "KCMTEST.LOCAL" 00000005 "alice"
        00000001 00000002 0000000c "X-CACHECONF:" 00000015 "krb5_ccache_conf_data" 0000000b "start_realm"
        00000000 00000000 00000000 00000000
        00
        00000000
        """)

    @Test("RETRIEVE start_realm decodes to the captured values")
    func startRealmRetrieveDecodes() throws {
        guard case .retrieve(let name, let flags, let template) = try KCMRequest(decoding: Self.startRealmRetrieve)
        else {
            Issue.record("not a RETRIEVE")
            return
        }
        #expect(name == "0")
        #expect(flags == .cached)
        #expect(flags.rawValue == 1)
        #expect(
            template.client == KCMPrincipal(nameType: 1, realm: ascii("KCMTEST.LOCAL"), components: [ascii("alice")]))
        #expect(
            template.server
                == KCMPrincipal(
                    nameType: 1, realm: ascii("X-CACHECONF:"),
                    components: [ascii("krb5_ccache_conf_data"), ascii("start_realm")]))
        #expect(template.enctype == 0)
        #expect(
            template.times.authtime == 0 && template.times.starttime == 0 && template.times.endtime == 0
                && template.times.renewTill == 0)
        #expect(template.isSKey == 0)
        #expect(template.ticketFlags == 0)
        #expect(template.authdata == [0, 0, 0, 0])
        #expect(template.ticket.isEmpty && template.secondTicket.isEmpty)
    }

    @Test("RETRIEVE start_realm encodes back to the captured bytes")
    func startRealmRetrieveEncodes() throws {
        #expect(try KCMRequest(decoding: Self.startRealmRetrieve).encodedBody() == Self.startRealmRetrieve)
        let built = KCMRequest.retrieve(name: "0", flags: .cached, template: Fixture.startRealmTemplate)
        #expect(built.encodedBody() == Self.startRealmRetrieve)
    }

    // MARK: §2.6 TGT credential

    /// The TGT of §2.6, with the key bytes 00…1f and a 434-byte ticket `61 82 01 ae` + 430 filler bytes.
    static let tgtBytes =
        wire(
            """
            00000001 00000001 0000000d "KCMTEST.LOCAL" 00000005 "alice"
            00000002 00000002 0000000d "KCMTEST.LOCAL" 00000006 "krbtgt" 0000000d "KCMTEST.LOCAL"
            0012 00000020
            """) + filler(32)
        + wire(
            """
            6b023137 6b023137 6b02bdd7 6b0382b7
            00
            00c10000
            00000000 00000000
            000001b2 6182 01ae
            """) + filler(430, seed: 0x11) + wire("00000000")

    @Test("the TGT parses with every offset and field where §2.6 puts it")
    func tgtLayout() throws {
        let bytes = Self.tgtBytes
        #expect(bytes.count == 595)
        let credential = try KCMCredential(parsing: bytes)
        #expect(Array(credential.bytes) == bytes)

        // client: 0 ..< 34, realm 12 ..< 25
        #expect(credential.client.start == 0)
        #expect(credential.client.realmEnd == 25)
        #expect(credential.client.end == 34)
        #expect(credential.client.countStart == 4)
        #expect(credential.client.realmRange == 12..<25)
        #expect(credential.client.componentsRange == 25..<34)
        #expect(Array(credential.clientKey) == Array(bytes[4..<34]))
        #expect(Array(credential.clientComponentCount) == wire("00000001"))
        #expect(Array(credential.clientComponents) == wire("00000005 \"alice\""))

        // server: 34 ..< 86, realm 46 ..< 59
        #expect(credential.server.start == 34)
        #expect(credential.server.realmEnd == 59)
        #expect(credential.server.end == 86)
        #expect(credential.server.realmRange == 46..<59)
        #expect(Array(bytes[credential.server.realmRange]) == ascii("KCMTEST.LOCAL"))
        #expect(Array(credential.serverKey) == Array(bytes[38..<86]))
        #expect(Array(credential.serverComponentCount) == wire("00000002"))
        #expect(Array(credential.serverComponents) == wire("00000006 \"krbtgt\" 0000000d \"KCMTEST.LOCAL\""))

        #expect(credential.enctype == 0x12)
        #expect(credential.times.authtime == 0x6B02_3137)
        #expect(credential.times.starttime == 0x6B02_3137)
        #expect(credential.times.endtime == 0x6B02_BDD7)
        #expect(credential.times.renewTill == 0x6B03_82B7)
        #expect(credential.isSKey == 0)
        #expect(credential.ticketFlags == 0x00C1_0000)
        #expect(credential.authdataRange == 149..<153)
        #expect(Array(credential.authdata) == wire("00000000"))
        #expect(credential.ticketRange == 157..<591)
        #expect(credential.ticket.count == 434)
        #expect(Array(credential.ticket.prefix(2)) == [0x61, 0x82])
        #expect(credential.secondTicketRange == 595..<595)
        #expect(credential.secondTicket.isEmpty)
        #expect(!credential.isConfigEntry)
    }

    @Test("the TGT decodes to its fields, and the fields encode to the same bytes")
    func tgtFields() throws {
        let fields = try KCMCredential(parsing: Self.tgtBytes).decodeFields()
        #expect(fields.client == Fixture.alice)
        #expect(fields.server == Fixture.krbtgt)
        #expect(fields.enctype == 18)
        #expect(fields.key == filler(32))
        #expect(fields.addresses.isEmpty)
        #expect(fields.authdata.isEmpty)
        #expect(fields.ticket.count == 434)
        #expect(fields.secondTicket.isEmpty)
        #expect(fields == Fixture.tgt)
        #expect(fields.encoded == Self.tgtBytes)
        #expect(Fixture.tgt.encoded == Self.tgtBytes)
    }

    @Test("a config entry is recognised by its X-CACHECONF: server realm")
    func configEntry() throws {
        let entry = Fixture.configEntry(
            key: "fast_avail", value: "yes", principal: "krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL")
        let credential = try KCMCredential(parsing: entry.encoded)
        #expect(credential.isConfigEntry)
        #expect(Array(credential.ticket) == ascii("yes"))
        // A server whose realm merely starts like the config realm is a ticket.
        var lookalike = entry
        lookalike.server.realm = ascii("X-CACHECONF")
        #expect(!(try KCMCredential(parsing: lookalike.encoded)).isConfigEntry)
    }

    // MARK: §3 status codes

    struct StatusRow: Sendable, CustomTestStringConvertible {
        let status: KCMStatus
        let decimal: Int32
        let hex: UInt32
        let name: String
        let unsupported: Bool
        var testDescription: String { name }
    }

    static let statusTable: [StatusRow] = [
        .init(status: .success, decimal: 0, hex: 0x0000_0000, name: "OK", unsupported: false),
        .init(
            status: .ccBadName, decimal: -1_765_328_245, hex: 0x96C7_3A8B, name: "KRB5_CC_BADNAME", unsupported: false),
        .init(
            status: .ccNotFound, decimal: -1_765_328_243, hex: 0x96C7_3A8D, name: "KRB5_CC_NOTFOUND", unsupported: false
        ),
        .init(status: .ccEnd, decimal: -1_765_328_242, hex: 0x96C7_3A8E, name: "KRB5_CC_END", unsupported: false),
        .init(status: .ccIO, decimal: -1_765_328_191, hex: 0x96C7_3AC1, name: "KRB5_CC_IO", unsupported: true),
        .init(status: .fccPerm, decimal: -1_765_328_190, hex: 0x96C7_3AC2, name: "KRB5_FCC_PERM", unsupported: false),
        .init(
            status: .fccNoFile, decimal: -1_765_328_189, hex: 0x96C7_3AC3, name: "KRB5_FCC_NOFILE", unsupported: false),
        .init(
            status: .fccInternal, decimal: -1_765_328_188, hex: 0x96C7_3AC4, name: "KRB5_FCC_INTERNAL",
            unsupported: true),
        .init(status: .ccWrite, decimal: -1_765_328_187, hex: 0x96C7_3AC5, name: "KRB5_CC_WRITE", unsupported: false),
        .init(status: .ccNoMem, decimal: -1_765_328_186, hex: 0x96C7_3AC6, name: "KRB5_CC_NOMEM", unsupported: false),
        .init(status: .ccFormat, decimal: -1_765_328_185, hex: 0x96C7_3AC7, name: "KRB5_CC_FORMAT", unsupported: false),
        .init(status: .ccNoSupp, decimal: -1_765_328_137, hex: 0x96C7_3AF7, name: "KRB5_CC_NOSUPP", unsupported: true),
    ]

    @Test("status codes carry the numbers of §3", arguments: statusTable)
    func status(row: StatusRow) {
        #expect(row.status.rawValue == row.decimal)
        #expect(UInt32(bitPattern: row.status.rawValue) == row.hex)
        #expect(row.status.description == row.name)
        #expect(row.status.meansUnsupportedToMIT == row.unsupported)
    }

    @Test("the status names are twelve distinct codes")
    func statusesDistinct() {
        #expect(Set(Self.statusTable.map(\.status)).count == Self.statusTable.count)
    }

    @Test("codes that are not named read as numbers and are not 'unsupported'")
    func otherStatus() {
        let heimdalEOF = KCMStatus(rawValue: -1_980_176_635)
        #expect(heimdalEOF.description == "status -1980176635")
        #expect(!heimdalEOF.meansUnsupportedToMIT)
        // KRB5_CC_NOT_KTYPE, one above CC_FORMAT, is not one of MIT's three "unsupported" codes.
        #expect(!KCMStatus(rawValue: -1_765_328_184).meansUnsupportedToMIT)
    }

    @Test("a status goes on the wire as its s32 bit pattern")
    func statusOnTheWire() {
        var reply = KCMReplyWriter()
        reply.finish(status: .ccNoSupp)
        #expect(Array(reply.bytes[8..<12]) == wire("96C73AF7"))
    }

    // MARK: §4 opcodes

    static let opcodeNames = [
        "NOOP", "GET_NAME", "RESOLVE", "GEN_NEW", "INITIALIZE", "DESTROY", "STORE", "RETRIEVE", "GET_PRINCIPAL",
        "GET_CRED_UUID_LIST", "GET_CRED_BY_UUID", "REMOVE_CRED", "SET_FLAGS", "CHOWN", "CHMOD", "GET_INITIAL_TICKET",
        "GET_TICKET", "MOVE_CACHE", "GET_CACHE_UUID_LIST", "GET_CACHE_BY_UUID", "GET_DEFAULT_CACHE",
        "SET_DEFAULT_CACHE", "GET_KDC_OFFSET", "SET_KDC_OFFSET", "ADD_NTLM_CRED", "HAVE_NTLM_CRED", "DEL_NTLM_CRED",
        "DO_NTLM_AUTH", "GET_NTLM_USER_LIST",
    ]

    @Test("opcodes 0–28 follow the table of §4", arguments: 0...28)
    func opcode(number: Int) throws {
        let opcode = try #require(KCMOpcode(rawValue: UInt16(number)))
        #expect(opcode.description == Self.opcodeNames[number])
    }

    @Test("MIT's extensions are 13001 = 0x32C9 and 13002 = 0x32CA")
    func mitExtensions() {
        #expect(KCMOpcode.getCredList.rawValue == 13001)
        #expect(KCMOpcode.getCredList.rawValue == 0x32C9)
        #expect(KCMOpcode.replace.rawValue == 13002)
        #expect(KCMOpcode.replace.rawValue == 0x32CA)
        #expect(KCMOpcode.getCredList.description == "GET_CRED_LIST")
        #expect(KCMOpcode.replace.description == "REPLACE")
        #expect(KCMRequest.getCredList(name: "0").encodedBody() == wire("02 00 32C9 \"0\" 00"))
    }

    @Test("besides 0–28, 13001 and 13002, the only opcodes are ccached's own, in the private range")
    func opcodeCount() {
        let standard = KCMOpcode.allCases.filter { $0.rawValue <= 28 || $0.rawValue == 13001 || $0.rawValue == 13002 }
        #expect(standard.count == 31)
        for opcode in KCMOpcode.allCases where !standard.contains(opcode) {
            #expect(KCMOpcode.privateRange.contains(opcode.rawValue), "\(opcode) is outside the private range")
        }
        #expect(KCMOpcode.privateRange == 0x5000...0x50FF)
        #expect(KCMOpcode(rawValue: 29) == nil)
        #expect(KCMOpcode(rawValue: 13000) == nil)
        #expect(KCMOpcode(rawValue: 13003) == nil)
    }
}
