import KCM
import TestSupport
import Testing

/// One request to round-trip, with a readable label for the test report.
struct RequestSample: Sendable, CustomTestStringConvertible {
    let label: String
    let request: KCMRequest
    var testDescription: String { label }

    init(_ label: String, _ request: KCMRequest) {
        self.label = label
        self.request = request
    }

    /// Requests with realistic arguments for every opcode ``KCMRequest`` decodes to a case of its own.
    static let all: [RequestSample] = [
        .init("NOOP", .noop),
        .init("GEN_NEW", .genNew),
        .init("INITIALIZE alice", .initialize(name: "1000", principal: Fixture.alice)),
        .init("INITIALIZE enterprise", .initialize(name: "1000:mycache", principal: Fixture.enterprise)),
        .init(
            "INITIALIZE odd name bytes",
            .initialize(name: KCMCacheName(bytes: [0x3A, 0xFF, 0x01, 0x80]), principal: Fixture.referralService)),
        .init("DESTROY", .destroy(name: "1000:1")),
        .init("STORE every field", .store(name: "1000", credential: Fixture.everyField.credential())),
        .init("STORE TGT", .store(name: "1000", credential: Fixture.tgt.credential())),
        .init(
            "STORE config",
            .store(
                name: "1000",
                credential: Fixture.configEntry(
                    key: "fast_avail", value: "yes", principal: "krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL"
                ).credential())),
        .init(
            "RETRIEVE service ticket",
            .retrieve(name: "1000", flags: KCMMatchFlags(rawValue: 0x0300_0001), template: Fixture.everyFieldTemplate)),
        .init("RETRIEVE start_realm", .retrieve(name: "0", flags: .cached, template: Fixture.startRealmTemplate)),
        .init(
            "RETRIEVE without client",
            .retrieve(
                name: "1000", flags: [.cached, .matchServerNameOnly, .matchTimes],
                template: KCMMatchTemplate(server: Fixture.referralService, times: KCMTicketTimes(endtime: 0x6B02_3137))
            )),
        .init("RETRIEVE empty template", .retrieve(name: "1000", flags: [], template: KCMMatchTemplate())),
        .init("GET_PRINCIPAL", .getPrincipal(name: "1000")),
        .init("GET_CRED_UUID_LIST", .getCredUUIDList(name: "1000")),
        .init("GET_CRED_BY_UUID", .getCredByUUID(name: "1000", uuid: Fixture.aliceUUID)),
        .init(
            "REMOVE_CRED set_config(NULL)",
            .removeCred(name: "1000", flags: [], template: Fixture.startRealmTemplate)),
        .init(
            "REMOVE_CRED every field",
            .removeCred(
                name: "1000:2", flags: [.dontMatchRealm, .matchTimes, .matchAuthdata, .matchKeytype],
                template: Fixture.everyFieldTemplate)),
        .init("SET_FLAGS", .setFlags(name: "1000", flags: 0xDEAD_BEEF)),
        .init("MOVE_CACHE", .moveCache(from: "1000:1", to: "1000")),
        .init("GET_CACHE_UUID_LIST", .getCacheUUIDList),
        .init("GET_CACHE_BY_UUID", .getCacheByUUID(uuid: Fixture.otherUUID)),
        .init("GET_DEFAULT_CACHE", .getDefaultCache),
        .init("SET_DEFAULT_CACHE", .setDefaultCache(name: "1000:2")),
        .init("GET_KDC_OFFSET", .getKDCOffset(name: "1000")),
        .init("SET_KDC_OFFSET negative", .setKDCOffset(name: "1000", offset: -3600)),
        .init("SET_KDC_OFFSET min", .setKDCOffset(name: "1000", offset: .min)),
        .init("GET_CRED_LIST", .getCredList(name: "1000")),
        .init(
            "REPLACE kinit",
            .replace(
                name: "1000", kdcOffset: 42, principal: Fixture.alice,
                credentials: [
                    Fixture.configEntry(
                        key: "fast_avail", value: "yes", principal: "krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL"
                    )
                    .credential(),
                    Fixture.configEntry(key: "pa_type", value: "2", principal: "krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL")
                        .credential(),
                    Fixture.tgt.credential(),
                    Fixture.everyField.credential(),
                ])),
        .init(
            "REPLACE empty", .replace(name: "1000:3", kdcOffset: -1, principal: Fixture.enterprise, credentials: [])),
        .init("CCACHED_STATUS", .daemonStatus),
        .init("CCACHED_STOP", .stop),
        .init("CCACHED_ATTACH", .attachSession),
        .init("CCACHED_DETACH", .detachSession),
        .init("CCACHED_WATCH first", .watch(KCMWatch.Request())),
        .init(
            "CCACHED_WATCH waiting",
            .watch(KCMWatch.Request(epoch: 0xDEAD_BEEF_0000_0001, after: 1 << 40 | 7, timeoutMilliseconds: 300_000))),
        .init("CCACHED_RENEW all", .renew(KCMRenew.Request())),
        .init("CCACHED_RENEW one", .renew(KCMRenew.Request(cacheName: "1000:2"))),
        .init("CCACHED_RENEWAL_STATE", .renewalState),
        .init("CHOWN (0x0D)", .unsupported(opcode: 0x0D)),
        .init("GET_INITIAL_TICKET (15)", .unsupported(opcode: 15)),
        .init("ADD_NTLM_CRED (24)", .unsupported(opcode: 24)),
        .init("MIT extension base (13000)", .unsupported(opcode: 13000)),
        .init("opcode 0xFFFF", .unsupported(opcode: 0xFFFF)),
    ]

    /// The opcodes that decode to a case of their own (everything else is ``KCMRequest/unsupported(opcode:)``).
    static let implementedOpcodes: Set<KCMOpcode> = [
        .noop, .genNew, .initialize, .destroy, .store, .retrieve, .getPrincipal, .getCredUUIDList, .getCredByUUID,
        .removeCred, .setFlags, .moveCache, .getCacheUUIDList, .getCacheByUUID, .getDefaultCache, .setDefaultCache,
        .getKDCOffset, .setKDCOffset, .getCredList, .replace, .daemonStatus, .watch, .renew, .renewalState, .stop,
        .attachSession, .detachSession,
    ]
}

/// Every request case survives `encodedBody()` → `KCMRequest(decoding:)` with every argument intact,
/// and re-encoding the decoded request reproduces the same bytes.
@Suite("KCMRequest round trips")
struct KCMRequestRoundTripTests {
    @Test("encode, decode, compare", arguments: RequestSample.all)
    func roundTrip(sample: RequestSample) throws {
        let body = sample.request.encodedBody()
        let decoded = try KCMRequest(decoding: body)
        expectSameRequest(decoded, sample.request)
        #expect(decoded.encodedBody() == body)
    }

    @Test("the header is version 2.0 and the opcode", arguments: RequestSample.all)
    func header(sample: RequestSample) {
        let body = sample.request.encodedBody()
        let raw: UInt16
        if case .unsupported(let opcode) = sample.request {
            raw = opcode
        } else {
            raw = sample.request.opcode!.rawValue
        }
        #expect(Array(body.prefix(4)) == [2, 0] + be16(raw))
    }

    @Test("the frame is the body behind its big-endian length", arguments: RequestSample.all)
    func frame(sample: RequestSample) {
        let body = sample.request.encodedBody()
        #expect(sample.request.encodedFrame() == be32(UInt32(body.count)) + body)
    }

    @Test("the samples cover every implemented opcode")
    func coverage() {
        let covered = Set(
            RequestSample.all.compactMap { sample -> KCMOpcode? in
                if case .unsupported = sample.request { return nil }
                return sample.request.opcode
            })
        #expect(covered == RequestSample.implementedOpcodes)
    }

    @Test("a NOOP body decodes as .noop")
    func noop() throws {
        let decoded = try KCMRequest(decoding: [0x02, 0x00, 0x00, 0x00])
        guard case .noop = decoded else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(decoded.opcode == .noop)
    }

    /// Known opcodes the daemon does not implement, and numbers no one defined.
    @Test(
        "opcodes without a case decode as .unsupported",
        arguments: [UInt16](
            [1, 2, 13, 14, 15, 16, 24, 25, 26, 27, 28, 29, 0x00FF, 12999, 13000, 13003, 0x4FFF, 0x5007, 0x50FF, 0xFFFF])
    )
    func unsupported(raw: UInt16) throws {
        let decoded = try KCMRequest(decoding: requestBody(raw))
        guard case .unsupported(let opcode) = decoded else {
            Issue.record("opcode \(raw) decoded as \(decoded)")
            return
        }
        #expect(opcode == raw)
        #expect(decoded.opcode == KCMOpcode(rawValue: raw))
    }

    @Test("every opcode in KCMOpcode is either implemented or decodes as .unsupported")
    func everyOpcode() throws {
        for opcode in KCMOpcode.allCases where !RequestSample.implementedOpcodes.contains(opcode) {
            let decoded = try KCMRequest(decoding: requestBody(opcode.rawValue))
            guard case .unsupported(let raw) = decoded else {
                Issue.record("\(opcode) decoded as \(decoded)")
                continue
            }
            #expect(raw == opcode.rawValue)
        }
    }

    @Test("arguments of an unsupported opcode are ignored (CHOWN name uid gid)")
    func unsupportedWithArguments() throws {
        let decoded = try KCMRequest(decoding: requestBody(13, nameField("1000") + be32(1000) + be32(1000)))
        guard case .unsupported(13) = decoded else {
            Issue.record("decoded \(decoded)")
            return
        }
    }

    @Test("a credential inside STORE keeps its offsets relative to itself")
    func storedCredentialOffsets() throws {
        let original = Fixture.everyField.credential()
        let decoded = try KCMRequest(
            decoding: KCMRequest.store(name: "a-long-cache-name", credential: original).encodedBody())
        guard case .store(_, let credential) = decoded else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(credential.client == original.client)
        #expect(credential.server == original.server)
        #expect(credential.ticketRange == original.ticketRange)
        #expect(credential.authdataRange == original.authdataRange)
        #expect(credential.secondTicketRange == original.secondTicketRange)
        #expect(Array(credential.ticket) == Fixture.everyField.ticket)
        #expect(Array(credential.secondTicket) == Fixture.everyField.secondTicket)
        #expect(credential.isSKey == 1)
        #expect(credential.enctype == -135)
        #expect(credential.times.renewTill == 0x9000_0000)
    }

    @Test("credentials inside REPLACE keep their own bytes, in order")
    func replacedCredentials() throws {
        let credentials = [Fixture.tgt.credential(), Fixture.everyField.credential()]
        let body = KCMRequest.replace(name: "1000", kdcOffset: 0, principal: Fixture.alice, credentials: credentials)
            .encodedBody()
        guard case .replace(_, _, _, let decoded) = try KCMRequest(decoding: body) else {
            Issue.record("not a REPLACE")
            return
        }
        #expect(decoded.count == 2)
        #expect(try decoded.map { try $0.decodeFields() } == [Fixture.tgt, Fixture.everyField])
        #expect(decoded.map { Array($0.ticket) } == [Fixture.tgt.ticket, Fixture.everyField.ticket])
    }

    @Test("a REPLACE credential window may carry trailing bytes, which are ignored")
    func replaceWindowTrailingBytes() throws {
        let credential = Fixture.tgt.encoded
        let body = replaceBody(window: dataField(credential + [0xEE, 0xEE, 0xEE]))
        guard case .replace(_, _, _, let decoded) = try KCMRequest(decoding: body) else {
            Issue.record("not a REPLACE")
            return
        }
        #expect(decoded.map { Array($0.bytes) } == [credential])
    }
}

/// The v4 encodings of principals and credentials round-trip through their own readers and writers.
@Suite("Principal and credential encodings")
struct KCMEncodingRoundTripTests {
    @Test(
        "principals round trip",
        arguments: [
            Fixture.alice, Fixture.krbtgt, Fixture.hostService, Fixture.enterprise, Fixture.referralService,
            Fixture.configServer(key: "pa_config_data", principal: "krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL"),
            KCMPrincipal(nameType: -1, realm: [], components: []),
            KCMPrincipal(nameType: .min, realm: [0, 0xFF], components: [[], [0], []]),
        ])
    func principal(_ principal: KCMPrincipal) throws {
        var writer = KCMWriter()
        principal.write(to: &writer)
        var reader = KCMReader(writer.bytes)
        #expect(try KCMPrincipal.read(from: &reader) == principal)
        #expect(reader.remaining == 0)
    }

    @Test("KCMPrincipal(text) splits components at / and the realm at the first @")
    func principalText() {
        #expect(KCMPrincipal("krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL", nameType: 2) == Fixture.krbtgt)
        #expect(KCMPrincipal("alice@KCMTEST.LOCAL") == Fixture.alice)
        #expect(KCMPrincipal("HTTP/www.kcmtest.local", nameType: 3) == Fixture.referralService)
    }

    @Test("the match key is the encoding without the name type")
    func matchKey() {
        var writer = KCMWriter()
        Fixture.hostService.write(to: &writer)
        #expect(Fixture.hostService.matchKey == Array(writer.bytes.dropFirst(4)))
        #expect(
            Fixture.hostService.componentsKey == dataField(ascii("host")) + dataField(ascii("server.kcmtest.local")))
    }

    @Test(
        "credential fields round trip through encoded and decodeFields",
        arguments: [
            Fixture.everyField, Fixture.tgt, Fixture.configEntry(key: "start_realm", value: "KCMTEST.LOCAL"),
            KCMCredentialFields(client: Fixture.referralService, server: Fixture.referralService, enctype: 0),
        ])
    func credential(_ fields: KCMCredentialFields) throws {
        let credential = try KCMCredential(parsing: fields.encoded)
        #expect(Array(credential.bytes) == fields.encoded)
        #expect(try credential.decodeFields() == fields)
        #expect(credential.enctype == fields.enctype)
        #expect(credential.times.authtime == fields.times.authtime)
        #expect(credential.times.starttime == fields.times.starttime)
        #expect(credential.times.endtime == fields.times.endtime)
        #expect(credential.times.renewTill == fields.times.renewTill)
        #expect(credential.isSKey == fields.isSKey)
        #expect(credential.ticketFlags == fields.ticketFlags)
        #expect(Array(credential.ticket) == fields.ticket)
        #expect(Array(credential.secondTicket) == fields.secondTicket)
        #expect(Array(credential.clientKey) == fields.client.matchKey)
        #expect(Array(credential.serverKey) == fields.server.matchKey)
        #expect(Array(credential.serverComponents) == fields.server.componentsKey)
        #expect(Array(credential.clientComponents) == fields.client.componentsKey)
        #expect(Array(credential.serverComponentCount) == be32(UInt32(fields.server.components.count)))
        #expect(Array(credential.clientComponentCount) == be32(UInt32(fields.client.components.count)))
        #expect(Array(credential.authdata) == authdataField(fields.authdata))
        #expect(credential.isConfigEntry == (fields.server.realm == KCMPrincipal.configRealm))
    }

    @Test("a credential parsed from the middle of a buffer has offsets relative to itself")
    func credentialInRange() throws {
        let encoded = Fixture.everyField.encoded
        let source = [0xAA, 0xBB, 0xCC] + encoded + [0xDD, 0xDD]
        let credential = try KCMCredential(parsing: source, range: 3..<source.count)
        #expect(Array(credential.bytes) == encoded)
        #expect(credential.client.start == 0)
        #expect(Array(credential.ticket) == Fixture.everyField.ticket)
        #expect(try credential.decodeFields() == Fixture.everyField)
    }

    @Test("KCMCredential.read advances the reader by exactly one credential")
    func credentialRead() throws {
        let first = Fixture.tgt.encoded
        let second = Fixture.everyField.encoded
        var reader = KCMReader(first + second + [7])
        #expect(Array(try KCMCredential.read(from: &reader).bytes) == first)
        #expect(Array(try KCMCredential.read(from: &reader).bytes) == second)
        #expect(try reader.readUInt8() == 7)
        #expect(reader.remaining == 0)
    }

    @Test("UUIDs are written big-endian, high word first, and read back")
    func uuid() throws {
        var writer = KCMWriter()
        writer.write(Fixture.aliceUUID)
        #expect(writer.bytes == wire("0123456789abcdef fedcba9876543210"))
        var reader = KCMReader(writer.bytes)
        #expect(try reader.readUUID() == Fixture.aliceUUID)
    }
}
