import KCM
import TestSupport
import Testing

/// Hostile or broken request bodies give their defined ``KCMDecodingError`` and never trap: short
/// headers, wrong versions, missing NULs, absurd counts, every truncation of valid bodies, and
/// thousands of seeded random and mutated bodies for every opcode.
@Suite("Malformed request bodies")
struct KCMMalformedInputTests {
    // MARK: Header

    @Test(
        "a body shorter than the 4-byte header is truncated",
        arguments: [
            ([UInt8](), KCMDecodingError.truncated(offset: 0, needed: 1)),
            ([2], .truncated(offset: 1, needed: 1)),
            ([2, 0], .truncated(offset: 2, needed: 2)),
            ([2, 0, 0x14], .truncated(offset: 2, needed: 1)),
        ])
    func shortHeader(body: [UInt8], expected: KCMDecodingError) {
        #expect(decodingError(body) == expected)
    }

    @Test(
        "a major version other than 2 is refused",
        arguments: [(UInt8(1), UInt8(0)), (0, 0), (3, 0), (0xFF, 0xFF), (1, 2)])
    func wrongMajor(major: UInt8, minor: UInt8) {
        #expect(decodingError([major, minor, 0x00, 0x14]) == .unsupportedVersion(major: major, minor: minor))
    }

    @Test("version 1.0 is refused even before the opcode is complete")
    func wrongMajorShort() {
        // The version is checked as soon as both version bytes are in.
        #expect(decodingError([1, 0]) == .unsupportedVersion(major: 1, minor: 0))
    }

    @Test("version 2.x decodes whatever the minor version", arguments: [UInt8(1), 7, 0xFF])
    func minorIgnored(minor: UInt8) throws {
        guard case .getDefaultCache = try KCMRequest(decoding: [2, minor, 0x00, 0x14]) else {
            Issue.record("2.\(minor) GET_DEFAULT_CACHE did not decode")
            return
        }
        guard case .destroy(let name) = try KCMRequest(decoding: [2, minor, 0x00, 0x05] + nameField("1000:1")) else {
            Issue.record("2.\(minor) DESTROY did not decode")
            return
        }
        #expect(name == "1000:1")
    }

    // MARK: Names

    @Test(
        "a name without its NUL is unterminated",
        arguments: [UInt16(5), 8, 9, 13001, 21])
    func unterminatedName(opcode: UInt16) {
        #expect(decodingError(requestBody(opcode, ascii("1000"))) == .unterminatedName(offset: 4))
        #expect(decodingError(requestBody(opcode)) == .unterminatedName(offset: 4))
    }

    @Test("MOVE_CACHE with an unterminated second name reports the second name's offset")
    func unterminatedSecondName() {
        #expect(decodingError(requestBody(17, nameField("1000:1") + ascii("1000"))) == .unterminatedName(offset: 11))
    }

    @Test("an empty name (a lone NUL) is a valid encoding")
    func emptyName() throws {
        guard case .destroy(let name) = try KCMRequest(decoding: requestBody(5, [0])) else {
            Issue.record("not a DESTROY")
            return
        }
        #expect(name.bytes.isEmpty)
    }

    // MARK: Counts and lengths

    @Test("a principal with n_components 0xFFFFFFFF is implausible")
    func hugeComponentCount() {
        let principal = be32(1) + be32(0xFFFF_FFFF) + dataField(ascii(Fixture.realm)) + dataField(ascii("alice"))
        #expect(
            decodingError(requestBody(4, nameField("1000") + principal))
                == .implausibleCount(field: "principal component", count: 0xFFFF_FFFF))
    }

    @Test("a data length larger than the bytes that remain is truncated")
    func dataLengthTooLarge() throws {
        // Realm length 0x0d, but only "KCMTEST" (7 bytes) follows.
        let body = requestBody(4, nameField("1000") + be32(1) + be32(0) + be32(13) + ascii("KCMTEST"))
        let error = try #require(decodingError(body))
        guard case .truncated = error else {
            Issue.record("got \(error)")
            return
        }
        // A length word of 0xFFFFFFFF is refused the same way, without allocating.
        let huge = requestBody(4, nameField("1000") + be32(1) + be32(0) + be32(0xFFFF_FFFF) + ascii("KCMTEST"))
        #expect(isTruncated(huge), "0xFFFFFFFF realm length was not truncated")
    }

    @Test("REPLACE with 0x7FFFFFFF credentials is implausible")
    func replaceHugeCount() {
        let body = requestBody(
            13002,
            nameField("1000") + be32(0) + principalField(realm: Fixture.realm, ["alice"]) + be32(0x7FFF_FFFF)
                + dataField(Fixture.tgt.encoded))
        #expect(decodingError(body) == .implausibleCount(field: "credential", count: 0x7FFF_FFFF))
    }

    @Test("REPLACE whose credential length runs past the body is truncated")
    func replaceCredentialLength() throws {
        #expect(isTruncated(replaceBody(window: be32(UInt32(Fixture.tgt.encoded.count + 1)) + Fixture.tgt.encoded)))
    }

    @Test("REPLACE whose credential window is shorter than the credential fails inside the window")
    func replaceShortWindow() throws {
        let credential = Fixture.tgt.encoded
        // The window ends 4 bytes early; the bytes after it (the next credential's length) must not be read.
        #expect(isTruncated(replaceBody(window: be32(UInt32(credential.count - 4)) + credential)))
    }

    @Test("a credential with an address or authdata count it cannot hold is implausible")
    func credentialCounts() throws {
        var addresses = Fixture.tgt.encoded
        // Address count sits right after client, server, keyblock, times, is_skey and flags: offset 145.
        addresses.replaceSubrange(145..<149, with: be32(0x0100_0000))
        #expect(
            decodingError(requestBody(6, nameField("0") + addresses))
                == .implausibleCount(field: "address", count: 0x0100_0000))
        var authdata = Fixture.tgt.encoded
        authdata.replaceSubrange(149..<153, with: be32(1000))
        #expect(
            decodingError(requestBody(6, nameField("0") + authdata))
                == .implausibleCount(field: "authdata", count: 1000))
    }

    @Test("a template whose header promises a client that is not there is truncated")
    func templateMissingClient() throws {
        #expect(isTruncated(requestBody(7, nameField("0") + be32(1) + be32(0x01))))
    }

    @Test("a GET_CRED_BY_UUID with 15 UUID bytes is truncated")
    func shortUUID() {
        #expect(decodingError(requestBody(10, nameField("0") + filler(15))) == .truncated(offset: 6, needed: 1))
        #expect(decodingError(requestBody(19, filler(15))) == .truncated(offset: 4, needed: 1))
    }

    // MARK: Truncations of valid bodies

    @Test("every prefix of a valid STORE body throws; the whole body decodes")
    func storePrefixes() throws {
        let body = KCMRequest.store(name: "1000", credential: Fixture.everyField.credential()).encodedBody()
        for length in 0..<body.count {
            #expect(decodingError(Array(body.prefix(length))) != nil, "prefix of \(length) bytes decoded")
        }
        _ = try KCMRequest(decoding: body)
    }

    @Test("every prefix of every sample body throws", arguments: RequestSample.all)
    func samplePrefixes(sample: RequestSample) {
        let body = sample.request.encodedBody()
        var decoded: [Int] = []
        for length in 0..<body.count where decodingError(Array(body.prefix(length))) == nil {
            decoded.append(length)
        }
        #expect(decoded.isEmpty, "prefixes that decoded: \(decoded)")
    }

    // MARK: Random input

    static let fuzzOpcodes: [UInt16] = Array(0...29) + [13000, 13001, 13002, 0x5000, 0x5001, 0xFFFF]

    /// Decodes `body`; if it decodes, its encoding must decode again to the same encoding.
    static func checkStable(_ body: [UInt8]) -> (decoded: Bool, stable: Bool) {
        guard let request = try? KCMRequest(decoding: body) else { return (false, true) }
        let encoded = request.encodedBody()
        guard let again = try? KCMRequest(decoding: encoded) else { return (true, false) }
        return (true, again.encodedBody() == encoded)
    }

    @Test("random arguments never crash, and what decodes re-encodes stably", arguments: fuzzOpcodes)
    func randomArguments(opcode: UInt16) {
        var random = SplitMix64(seed: 0x4B43_4D00 | UInt64(opcode))
        var unstable = 0
        for _ in 0..<1500 {
            let length = Int.random(in: 0...80, using: &random)
            var arguments = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Small counts and lengths make it past the first checks more often.
            if length >= 8, Bool.random(using: &random) {
                arguments.replaceSubrange(0..<4, with: [0, 0, 0, UInt8.random(in: 0...3, using: &random)])
            }
            if !Self.checkStable(requestBody(opcode, arguments)).stable { unstable += 1 }
        }
        #expect(unstable == 0)
    }

    @Test("mutated valid bodies never crash, and what decodes re-encodes stably", arguments: RequestSample.all)
    func mutatedBodies(sample: RequestSample) {
        let original = sample.request.encodedBody()
        var random = SplitMix64(seed: UInt64(original.count) &* 0x9E37)
        var unstable = 0
        for _ in 0..<1000 {
            var body = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                switch Int.random(in: 0..<4, using: &random) {
                case 0 where body.count > 4:
                    body[Int.random(in: 4..<body.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                case 1 where body.count > 4:
                    body[Int.random(in: 4..<body.count, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                case 2:
                    body.removeLast(Int.random(in: 0...min(8, body.count - 4), using: &random))
                default:
                    body.append(
                        contentsOf: (0..<Int.random(in: 1...8, using: &random)).map { _ in
                            UInt8.random(in: 0...255, using: &random)
                        })
                }
            }
            if !Self.checkStable(body).stable { unstable += 1 }
        }
        #expect(unstable == 0)
    }

    @Test("random bytes as a credential never crash")
    func randomCredentials() {
        var random = SplitMix64(seed: 42)
        let original = Fixture.everyField.encoded
        var parsed = 0
        for _ in 0..<3000 {
            var bytes = original
            let position = Int.random(in: 0..<bytes.count, using: &random)
            bytes[position] = UInt8.random(in: 0...255, using: &random)
            if let credential = try? KCMCredential(parsing: bytes) {
                parsed += 1
                // Whatever parsed must also decode field by field and re-encode to its own bytes.
                #expect((try? credential.decodeFields())?.encoded == Array(credential.bytes))
            }
        }
        #expect(parsed > 0)
    }
}
