import KCM
import TestSupport
import Testing

/// The flag word of RETRIEVE and REMOVE_CRED has Heimdal's bit values (§2.9), and a REMOVE_CRED word
/// from a pre-1.20 MIT client (MIT's own `KRB5_TC_*` values) is translated exactly when it has bits in
/// 0x3FE and none in 0xFFC00000.
@Suite("KCMMatchFlags")
struct KCMMatchFlagsTests {
    @Test("the named flags have the wire values of §2.9")
    func values() {
        #expect(KCMMatchFlags.dontMatchRealm.rawValue == 0x8000_0000)
        #expect(KCMMatchFlags.matchKeytype.rawValue == 0x4000_0000)
        #expect(KCMMatchFlags.matchServerNameOnly.rawValue == 0x2000_0000)
        #expect(KCMMatchFlags.matchFlagsExact.rawValue == 0x1000_0000)
        #expect(KCMMatchFlags.matchFlags.rawValue == 0x0800_0000)
        #expect(KCMMatchFlags.matchTimesExact.rawValue == 0x0400_0000)
        #expect(KCMMatchFlags.matchTimes.rawValue == 0x0200_0000)
        #expect(KCMMatchFlags.matchAuthdata.rawValue == 0x0100_0000)
        #expect(KCMMatchFlags.matchSecondTicket.rawValue == 0x0080_0000)
        #expect(KCMMatchFlags.matchIsSKey.rawValue == 0x0040_0000)
        #expect(KCMMatchFlags.cached.rawValue == 0x0000_0001)
        // The service-ticket lookup MIT sends: TIMES | AUTHDATA | CACHED.
        #expect(KCMMatchFlags([.matchTimes, .matchAuthdata, .cached]).rawValue == 0x0300_0001)
        #expect(Self.allNineMatchBits.rawValue == 0x7FC0_0000)
    }

    @Test(
        "Heimdal-valued words pass through unchanged",
        arguments: [
            UInt32(0), 0x0300_0001, 0x2000_0000, 0x8000_0000, 0x2200_0001, 0xFFFF_FFFF, 0x0040_0002, 0x8000_0040,
            0x0000_0001, 0x0000_0400, 0x0000_FC01,
        ])
    func heimdalWords(word: UInt32) {
        #expect(KCMMatchFlags.fromRemoveCredWord(word).rawValue == word)
    }

    static let mitWordTable: [(word: UInt32, expected: KCMMatchFlags)] = [
        (0x002, .matchIsSKey),
        (0x004, .matchFlags),
        (0x008, .matchTimesExact),
        (0x010, .matchFlagsExact),
        (0x020, .matchAuthdata),
        (0x040, .matchServerNameOnly),
        (0x080, .matchSecondTicket),
        (0x100, .matchKeytype),
        (0x102, [.matchKeytype, .matchIsSKey]),
        (0x021, [.matchAuthdata, .matchTimes]),
        (0x041, [.matchServerNameOnly, .matchTimes]),
        // KRB5_TC_SUPPORTED_KTYPES has no wire bit and is dropped.
        (0x200, []),
        (0x240, .matchServerNameOnly),
        (0x3FF, Self.allNineMatchBits),
    ]

    static let allNineMatchBits: KCMMatchFlags = [
        .matchTimes, .matchIsSKey, .matchFlags, .matchTimesExact, .matchFlagsExact, .matchAuthdata,
        .matchServerNameOnly, .matchSecondTicket, .matchKeytype,
    ]

    @Test("pre-1.20 MIT words are translated bit by bit", arguments: mitWordTable)
    func mitWords(word: UInt32, expected: KCMMatchFlags) {
        #expect(KCMMatchFlags.fromRemoveCredWord(word) == expected)
    }

    @Test("every MIT bit maps to a distinct Heimdal bit")
    func translationIsInjective() {
        let translated = (1...8).map { KCMMatchFlags.fromRemoveCredWord(UInt32(1) << $0 | 1).rawValue }
        #expect(Set(translated).count == 8)
        for flags in translated { #expect(flags & 0x3F_FFFF == 0, "translated word \(flags) kept low bits") }
    }

    @Test("REMOVE_CRED translates an MIT word; RETRIEVE keeps it raw")
    func decoderUsesTranslationOnlyForRemoveCred() throws {
        let arguments = nameField("1000") + be32(0x040) + be32(0) + [UInt8](repeating: 0, count: 21)
        guard case .removeCred(_, let removeFlags, _) = try KCMRequest(decoding: requestBody(11, arguments)) else {
            Issue.record("not a REMOVE_CRED")
            return
        }
        #expect(removeFlags == .matchServerNameOnly)
        guard case .retrieve(_, let retrieveFlags, _) = try KCMRequest(decoding: requestBody(7, arguments)) else {
            Issue.record("not a RETRIEVE")
            return
        }
        #expect(retrieveFlags.rawValue == 0x040)
    }
}
