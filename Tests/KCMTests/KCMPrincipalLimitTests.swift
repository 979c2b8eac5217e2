import KCM
import TestSupport
import Testing

/// Principals are capped at ``KCMPrincipal/maximumComponents`` components of at most
/// ``KCMPrincipal/maximumComponentLength`` bytes wherever the decoder meets one (issue 12, item 3).
@Suite("KCM principal limits")
struct KCMPrincipalLimitTests {
    /// An INITIALIZE body for cache "1000" with a principal of `count` components of `component`.
    func initialize(components count: Int, component: [UInt8] = [0x61], realm: [UInt8] = ascii(Fixture.realm))
        -> [UInt8]
    {
        var body = requestBody(4, nameField("1000") + be32(1) + be32(UInt32(count)) + dataField(realm))
        body.reserveCapacity(body.count + count * (4 + component.count))
        for _ in 0..<count { body += dataField(component) }
        return body
    }

    @Test("the issue's 4 MiB INITIALIZE of 838,860 one-byte components is refused as too large")
    func issuePrincipal() {
        let body = initialize(components: 838_860)
        #expect(body.count > 4_000_000)
        #expect(
            decodingError(body)
                == .tooLarge(field: "principal component count", size: 838_860, limit: KCMPrincipal.maximumComponents))
        #expect(
            decodingError(body)?.description
                == "principal component count is 838860, more than the limit of \(KCMPrincipal.maximumComponents)")
    }

    @Test("exactly the maximum number of components decodes; one more does not")
    func componentCountBoundary() throws {
        let limit = KCMPrincipal.maximumComponents
        guard case .initialize(_, let principal) = try KCMRequest(decoding: initialize(components: limit)) else {
            Issue.record("not an INITIALIZE")
            return
        }
        #expect(principal.components.count == limit)
        #expect(
            decodingError(initialize(components: limit + 1))
                == .tooLarge(field: "principal component count", size: limit + 1, limit: limit))
    }

    @Test("a component or realm over the maximum length is refused; the maximum itself decodes")
    func componentLengthBoundary() throws {
        let limit = KCMPrincipal.maximumComponentLength
        #expect(decodingError(initialize(components: 1, component: filler(limit))) == nil)
        #expect(
            decodingError(initialize(components: 1, component: filler(limit + 1)))
                == .tooLarge(field: "principal component length", size: limit + 1, limit: limit))
        #expect(
            decodingError(initialize(components: 1, realm: filler(limit + 1)))
                == .tooLarge(field: "principal realm length", size: limit + 1, limit: limit))
    }

    @Test("the same caps hold for the principals inside a STORE'd credential and a RETRIEVE template")
    func credentialAndTemplatePrincipals() {
        let many = KCMPrincipal(realm: ascii(Fixture.realm), components: Array(repeating: ascii("x"), count: 33))
        var credential = Fixture.tgt
        credential.server = many
        let store = requestBody(6, nameField("1000") + credential.encoded)
        #expect(decodingError(store) == .tooLarge(field: "principal component count", size: 33, limit: 32))
        credential = Fixture.tgt
        credential.client = KCMPrincipal(realm: filler(5000), components: [ascii("alice")])
        #expect(
            decodingError(requestBody(6, nameField("1000") + credential.encoded))
                == .tooLarge(field: "principal realm length", size: 5000, limit: 4096))
        // RETRIEVE with the client field set (flags 0, whichfields 1): the template's principal.
        let template =
            nameField("1000") + be32(0) + be32(1) + be32(1) + be32(40) + dataField(ascii("R"))
            + Array(repeating: dataField(ascii("x")), count: 40).flatMap { $0 }
        #expect(
            decodingError(requestBody(7, template))
                == .tooLarge(field: "principal component count", size: 40, limit: 32))
    }
}
