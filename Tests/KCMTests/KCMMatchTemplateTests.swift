import KCM
import TestSupport
import Testing

/// The match template ("mcred", §2.8): the encoder sets a header bit exactly when MIT would (the
/// field is non-empty) and lays the fields out in wire order; the decoder reads addresses before
/// authdata, skips what matching does not need, and tolerates Heimdal's habits and trailing bytes.
@Suite("KCMMatchTemplate")
struct KCMMatchTemplateTests {
    static func encode(_ template: KCMMatchTemplate) -> [UInt8] {
        var writer = KCMWriter()
        template.write(to: &writer)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> (KCMMatchTemplate, remaining: Int) {
        var reader = KCMReader(bytes)
        let template = try KCMMatchTemplate.read(from: &reader)
        return (template, reader.remaining)
    }

    struct HeaderCase: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let template: KCMMatchTemplate
        let header: UInt32
    }

    static let headerCases: [HeaderCase] = [
        .init(testDescription: "nothing", template: KCMMatchTemplate(), header: 0),
        .init(testDescription: "client", template: KCMMatchTemplate(client: Fixture.alice), header: 0x01),
        .init(testDescription: "server", template: KCMMatchTemplate(server: Fixture.krbtgt), header: 0x02),
        .init(
            testDescription: "empty-realm server",
            template: KCMMatchTemplate(server: Fixture.referralService), header: 0x02),
        .init(testDescription: "enctype", template: KCMMatchTemplate(enctype: 18), header: 0x04),
        .init(testDescription: "negative enctype", template: KCMMatchTemplate(enctype: -1), header: 0x04),
        .init(testDescription: "ticket", template: KCMMatchTemplate(ticket: [0x61]), header: 0x08),
        .init(testDescription: "second ticket", template: KCMMatchTemplate(secondTicket: [0x61]), header: 0x10),
        .init(
            testDescription: "authdata", template: KCMMatchTemplate(authdata: [.init(type: 1, data: [9])]),
            header: 0x20),
        .init(
            testDescription: "authdata element with empty data",
            template: KCMMatchTemplate(authdata: [.init(type: 1, data: [])]), header: 0x20),
        .init(
            testDescription: "times, is_skey and flags only",
            template: KCMMatchTemplate(
                times: KCMTicketTimes(authtime: 1, starttime: 2, endtime: 3, renewTill: 4), isSKey: 1,
                ticketFlags: 0xFFFF_FFFF),
            header: 0),
        .init(
            testDescription: "empty values",
            template: KCMMatchTemplate(enctype: 0, authdata: [], ticket: [], secondTicket: []),
            header: 0),
        .init(testDescription: "every field", template: Fixture.everyFieldTemplate, header: 0x3F),
    ]

    @Test("header bits are set exactly for the non-empty fields", arguments: headerCases)
    func headerBits(testCase: HeaderCase) throws {
        let bytes = Self.encode(testCase.template)
        #expect(Array(bytes.prefix(4)) == be32(testCase.header))
        let (decoded, remaining) = try Self.decode(bytes)
        #expect(remaining == 0)
        expectSameTemplate(decoded, testCase.template)
    }

    @Test("a template with every field has the byte layout of §2.8")
    func everyFieldLayout() throws {
        let expected =
            wire("0000003F")
            + principalField(realm: Fixture.realm, ["alice"])
            + principalField(nameType: 3, realm: Fixture.realm, ["host", "server.kcmtest.local"])
            + wire(
                """
                0011 00000000
                00000001 00000002 FFFFFFFE 80000000
                01
                00800000
                00000002 0001 00000003 010203 008F 00000009 000102030405060708
                00000002 6100
                00000003 6101FF
                """)
        #expect(Self.encode(Fixture.everyFieldTemplate) == expected)
        let (decoded, remaining) = try Self.decode(expected)
        #expect(remaining == 0)
        expectSameTemplate(decoded, Fixture.everyFieldTemplate)
    }

    @Test("an absent authdata list reads as the empty list's encoding")
    func absentAuthdata() throws {
        #expect(KCMMatchTemplate().authdata == [0, 0, 0, 0])
        let (decoded, _) = try Self.decode(Self.encode(KCMMatchTemplate(client: Fixture.alice)))
        #expect(decoded.authdata == [0, 0, 0, 0])
        #expect(
            KCMMatchTemplate(authdata: [.init(type: 1, data: [9])]).authdata
                == authdataField([.init(type: 1, data: [9])]))
    }

    @Test("addresses come before authdata and are skipped")
    func addressesBeforeAuthdata() throws {
        let authdata: [KCMCredentialFields.AuthData] = [.init(type: 1, data: filler(5)), .init(type: -1, data: [7])]
        let bytes =
            be32(0x40 | 0x20 | 0x08 | 0x02)
            + principalField(nameType: 2, realm: Fixture.realm, ["krbtgt", Fixture.realm])
            + be32(10) + be32(20) + be32(30) + be32(40) + [0] + be32(0x0040_0000)
            + be32(2) + be16(2) + dataField([192, 0, 2, 1]) + be16(24) + dataField(filler(16))
            + authdataField(authdata)
            + dataField([0x61, 0x62])
        let (decoded, remaining) = try Self.decode(bytes)
        #expect(remaining == 0)
        #expect(decoded.server == Fixture.krbtgt)
        #expect(decoded.client == nil)
        #expect(decoded.times.endtime == 30)
        #expect(decoded.ticketFlags == 0x0040_0000)
        #expect(decoded.authdata == authdataField(authdata))
        #expect(decoded.ticket == [0x61, 0x62])
    }

    @Test("addresses without authdata are skipped up to the ticket")
    func addressesWithoutAuthdata() throws {
        let bytes =
            be32(0x40 | 0x08) + [UInt8](repeating: 0, count: 21) + be32(1) + be16(2) + dataField([10, 0, 0, 1])
            + dataField([0xAA])
        let (decoded, remaining) = try Self.decode(bytes)
        #expect(remaining == 0)
        #expect(decoded.ticket == [0xAA])
        #expect(decoded.authdata == [0, 0, 0, 0])
    }

    @Test("a keyblock's key bytes are skipped; the enctype is kept")
    func keyblockWithKey() throws {
        let bytes = be32(0x04) + be16(0xFF79) + dataField(filler(32)) + [UInt8](repeating: 0, count: 21)
        let (decoded, remaining) = try Self.decode(bytes)
        #expect(remaining == 0)
        #expect(decoded.enctype == -135)
    }

    @Test("header bits for empty fields (Heimdal) decode to empty fields")
    func headerBitsForEmptyFields() throws {
        let bytes =
            be32(0x01 | 0x04 | 0x08 | 0x10 | 0x20) + principalField(realm: Fixture.realm, ["alice"]) + be16(0)
            + be32(0) + [UInt8](repeating: 0, count: 21) + be32(0) + be32(0) + be32(0)
        let (decoded, remaining) = try Self.decode(bytes)
        #expect(remaining == 0)
        expectSameTemplate(decoded, KCMMatchTemplate(client: Fixture.alice))
        // Re-encoded the MIT way, only the client bit remains.
        #expect(Array(Self.encode(decoded).prefix(4)) == be32(0x01))
    }

    @Test("a second ticket sent without its header bit is trailing bytes, and those are ignored")
    func heimdalSecondTicketWithoutBit() throws {
        let template = Self.encode(Fixture.startRealmTemplate)
        for trailing in [be32(0), be32(3) + [1, 2, 3], [0xFF], filler(100)] {
            let body = requestBody(7, nameField("0") + be32(1) + template + trailing)
            guard case .retrieve(let name, _, let decoded) = try KCMRequest(decoding: body) else {
                Issue.record("not a RETRIEVE")
                continue
            }
            #expect(name == "0")
            expectSameTemplate(decoded, Fixture.startRealmTemplate)
            #expect(decoded.secondTicket.isEmpty)
        }
    }

    @Test("trailing bytes after a REMOVE_CRED template are ignored")
    func removeCredTrailingBytes() throws {
        let body =
            KCMRequest.removeCred(name: "1000", flags: [], template: Fixture.everyFieldTemplate).encodedBody()
            + filler(7)
        guard case .removeCred(_, _, let decoded) = try KCMRequest(decoding: body) else {
            Issue.record("not a REMOVE_CRED")
            return
        }
        expectSameTemplate(decoded, Fixture.everyFieldTemplate)
    }
}
