import KCM
import TestSupport
import Testing

// MARK: - Writing wire bytes by hand

/// Wire bytes written the way the protocol document prints them: hex digits (spaces and line breaks
/// ignored) and ASCII text in double quotes, e.g. `wire("0000000d \"KCMTEST.LOCAL\"")`.
///
/// Traps on anything else, so a typo in a golden vector fails loudly instead of shifting every offset.
func wire(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var pendingNibble: UInt8?
    var inQuotes = false
    for character in text {
        if inQuotes {
            if character == "\"" {
                inQuotes = false
            } else {
                precondition(character.isASCII, "non-ASCII character in quoted wire text")
                bytes.append(character.asciiValue!)
            }
            continue
        }
        if character == "\"" {
            precondition(pendingNibble == nil, "odd number of hex digits before a quote")
            inQuotes = true
        } else if let value = character.hexDigitValue {
            if let high = pendingNibble {
                bytes.append(high << 4 | UInt8(value))
                pendingNibble = nil
            } else {
                pendingNibble = UInt8(value)
            }
        } else {
            precondition(character.isWhitespace, "unexpected character '\(character)' in wire text")
        }
    }
    precondition(pendingNibble == nil && !inQuotes, "wire text ends mid-byte or inside quotes")
    return bytes
}

/// A `data` field: `u32 length` and the bytes.
func dataField(_ bytes: [UInt8]) -> [UInt8] { be32(UInt32(bytes.count)) + bytes }

/// A principal in the v4 encoding, written independently of ``KCMPrincipal/write(to:)``.
func principalField(nameType: Int32 = 1, realm: String, _ components: [String]) -> [UInt8] {
    be32(UInt32(bitPattern: nameType)) + be32(UInt32(components.count)) + dataField(ascii(realm))
        + components.flatMap { dataField(ascii($0)) }
}

/// An authdata list: `u32 count`, then `s16 type` and `data` per element.
func authdataField(_ elements: [KCMCredentialFields.AuthData]) -> [UInt8] {
    be32(UInt32(elements.count)) + elements.flatMap { be16(UInt16(bitPattern: $0.type)) + dataField($0.data) }
}

/// A request body: version 2.0, the opcode and the argument bytes.
func requestBody(_ opcode: UInt16, _ arguments: [UInt8] = []) -> [UInt8] { [2, 0] + be16(opcode) + arguments }

/// A NUL-terminated cache name.
func nameField(_ name: String) -> [UInt8] { ascii(name) + [0] }

/// A REPLACE of cache 1000 by alice with one credential: `window` is that credential's
/// length-prefixed window, as a test shapes it.
func replaceBody(window: [UInt8]) -> [UInt8] {
    requestBody(13002, nameField("1000") + be32(0) + principalField(realm: Fixture.realm, ["alice"]) + be32(1) + window)
}

/// Whether `body` is refused as truncated (not decoded, not refused for another reason).
func isTruncated(_ body: [UInt8]) -> Bool {
    guard case .truncated = decodingError(body) else { return false }
    return true
}

/// Decodes `body`, returning the decoding error, or nil if it decoded.
func decodingError(_ body: [UInt8]) -> KCMDecodingError? {
    do {
        _ = try KCMRequest(decoding: body)
        return nil
    } catch {
        return error
    }
}

// MARK: - Comparing requests

/// Expects two templates to agree field by field.
func expectSameTemplate(
    _ actual: KCMMatchTemplate, _ expected: KCMMatchTemplate, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.client == expected.client, "client", sourceLocation: sourceLocation)
    #expect(actual.server == expected.server, "server", sourceLocation: sourceLocation)
    #expect(actual.enctype == expected.enctype, "enctype", sourceLocation: sourceLocation)
    #expect(actual.times.authtime == expected.times.authtime, "authtime", sourceLocation: sourceLocation)
    #expect(actual.times.starttime == expected.times.starttime, "starttime", sourceLocation: sourceLocation)
    #expect(actual.times.endtime == expected.times.endtime, "endtime", sourceLocation: sourceLocation)
    #expect(actual.times.renewTill == expected.times.renewTill, "renewTill", sourceLocation: sourceLocation)
    #expect(actual.isSKey == expected.isSKey, "isSKey", sourceLocation: sourceLocation)
    #expect(actual.ticketFlags == expected.ticketFlags, "ticketFlags", sourceLocation: sourceLocation)
    #expect(actual.authdata == expected.authdata, "authdata", sourceLocation: sourceLocation)
    #expect(actual.ticket == expected.ticket, "ticket", sourceLocation: sourceLocation)
    #expect(actual.secondTicket == expected.secondTicket, "secondTicket", sourceLocation: sourceLocation)
}

/// Expects two credentials to be the same bytes and to decode to the same fields.
func expectSameCredential(
    _ actual: KCMCredential, _ expected: KCMCredential, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.bytes == expected.bytes, "credential bytes", sourceLocation: sourceLocation)
    #expect(
        (try? actual.decodeFields()) == (try? expected.decodeFields()), "credential fields",
        sourceLocation: sourceLocation)
}

/// Expects two requests to be the same case with equal arguments (``KCMRequest`` is not Equatable).
func expectSameRequest(_ actual: KCMRequest, _ expected: KCMRequest, sourceLocation: SourceLocation = #_sourceLocation)
{
    func same<T: Equatable>(_ a: T, _ b: T, _ what: String) {
        #expect(a == b, "\(what)", sourceLocation: sourceLocation)
    }
    switch (actual, expected) {
    case (.noop, .noop), (.genNew, .genNew), (.getCacheUUIDList, .getCacheUUIDList),
        (.getDefaultCache, .getDefaultCache), (.daemonStatus, .daemonStatus), (.stop, .stop),
        (.renewalState, .renewalState), (.attachSession, .attachSession), (.detachSession, .detachSession):
        break
    case (.watch(let w1), .watch(let w2)):
        same(w1, w2, "watch request")
    case (.renew(let r1), .renew(let r2)):
        same(r1, r2, "renew request")
    case (.initialize(let n1, let p1), .initialize(let n2, let p2)):
        same(n1, n2, "name")
        same(p1, p2, "principal")
    case (.destroy(let n1), .destroy(let n2)), (.getPrincipal(let n1), .getPrincipal(let n2)),
        (.getCredUUIDList(let n1), .getCredUUIDList(let n2)), (.setDefaultCache(let n1), .setDefaultCache(let n2)),
        (.getKDCOffset(let n1), .getKDCOffset(let n2)), (.getCredList(let n1), .getCredList(let n2)):
        same(n1, n2, "name")
    case (.store(let n1, let c1), .store(let n2, let c2)):
        same(n1, n2, "name")
        expectSameCredential(c1, c2, sourceLocation: sourceLocation)
    case (.retrieve(let n1, let f1, let t1), .retrieve(let n2, let f2, let t2)),
        (.removeCred(let n1, let f1, let t1), .removeCred(let n2, let f2, let t2)):
        same(n1, n2, "name")
        same(f1.rawValue, f2.rawValue, "flags")
        expectSameTemplate(t1, t2, sourceLocation: sourceLocation)
    case (.getCredByUUID(let n1, let u1), .getCredByUUID(let n2, let u2)):
        same(n1, n2, "name")
        same(u1, u2, "uuid")
    case (.setFlags(let n1, let f1), .setFlags(let n2, let f2)):
        same(n1, n2, "name")
        same(f1, f2, "flags")
    case (.moveCache(let from1, let to1), .moveCache(let from2, let to2)):
        same(from1, from2, "from")
        same(to1, to2, "to")
    case (.getCacheByUUID(let u1), .getCacheByUUID(let u2)):
        same(u1, u2, "uuid")
    case (.setKDCOffset(let n1, let o1), .setKDCOffset(let n2, let o2)):
        same(n1, n2, "name")
        same(o1, o2, "offset")
    case (.replace(let n1, let o1, let p1, let c1), .replace(let n2, let o2, let p2, let c2)):
        same(n1, n2, "name")
        same(o1, o2, "kdcOffset")
        same(p1, p2, "principal")
        same(c1.count, c2.count, "credential count")
        for (a, b) in zip(c1, c2) { expectSameCredential(a, b, sourceLocation: sourceLocation) }
    case (.unsupported(let o1), .unsupported(let o2)):
        same(o1, o2, "opcode")
    default:
        Issue.record("decoded \(actual) but expected \(expected)", sourceLocation: sourceLocation)
    }
}
