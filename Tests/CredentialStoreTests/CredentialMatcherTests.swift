import CredentialStore
import KCM
import TestSupport
import Testing

func matches(_ credential: KCMCredential, _ flags: KCMMatchFlags = [], _ template: KCMMatchTemplate) -> Bool {
    CredentialMatcher(flags: flags, template: template).matches(credential)
}

/// ``CredentialMatcher`` implements MIT's `krb5int_cc_creds_match_request` rule by rule (§7.1): byte-exact
/// principals that ignore the name type, realm handling for empty realms, name-only and realm-blind
/// lookups, unsigned time checks, flags, enctype, is_skey, second ticket and authdata, and the
/// lookups real MIT clients send (§7.2).
@Suite("CredentialMatcher")
struct CredentialMatcherTests {
    // MARK: Client

    @Test(
        "client: byte-exact realm and components, name type ignored",
        arguments: [
            ("alice@KCMTEST.LOCAL", Int32(1), true),
            ("alice@KCMTEST.LOCAL", 2, true),
            ("alice@KCMTEST.LOCAL", 10, true),
            ("Alice@KCMTEST.LOCAL", 1, false),
            ("alice@kcmtest.local", 1, false),
            ("alice@KCMTEST.LOCAL.", 1, false),
            ("alice", 1, false),
            ("alice/admin@KCMTEST.LOCAL", 1, false),
            ("bob@KCMTEST.LOCAL", 1, false),
            ("alic@KCMTEST.LOCAL", 1, false),
        ])
    func client(templateClient: String, nameType: Int32, expected: Bool) {
        let stored = ticket(client: Fixture.alice)
        let template = KCMMatchTemplate(client: principal(templateClient, nameType: nameType), server: Fixture.host)
        #expect(matches(stored, [], template) == expected)
    }

    @Test("a template without a client matches any client")
    func noClient() {
        for client in [Fixture.alice, Fixture.bob, principal("x"), principal("@")] {
            #expect(matches(ticket(client: client), [], KCMMatchTemplate(server: Fixture.host)))
        }
        #expect(matches(ticket(client: Fixture.bob), [], KCMMatchTemplate()))
    }

    @Test("component boundaries count: a/bc is not ab/c")
    func componentBoundaries() {
        let stored = ticket(
            server: KCMPrincipal(nameType: 1, realm: ascii("R"), components: [ascii("ab"), ascii("c")]))
        let shifted = KCMPrincipal(nameType: 1, realm: ascii("R"), components: [ascii("a"), ascii("bc")])
        #expect(!matches(stored, [], KCMMatchTemplate(server: shifted)))
        #expect(!matches(stored, .matchServerNameOnly, KCMMatchTemplate(server: shifted)))
        #expect(!matches(stored, .dontMatchRealm, KCMMatchTemplate(server: shifted)))
    }

    @Test("the realm is not part of the components: R/x@ is not x@R")
    func realmComponentBoundary() {
        let stored = ticket(server: principal("x@R"))
        #expect(!matches(stored, .matchServerNameOnly, KCMMatchTemplate(server: principal("R/x"))))
        #expect(!matches(stored, .dontMatchRealm, KCMMatchTemplate(server: principal("R/x"))))
    }

    // MARK: Server and realms

    @Test(
        "server: component count must match",
        arguments: [KCMMatchFlags(), .matchServerNameOnly, .dontMatchRealm])
    func serverComponentCount(flags: KCMMatchFlags) {
        let stored = ticket(server: principal("host/a@R"))
        #expect(matches(stored, flags, KCMMatchTemplate(server: principal("host/a@R"))))
        #expect(!matches(stored, flags, KCMMatchTemplate(server: principal("host/a/b@R"))))
        #expect(!matches(stored, flags, KCMMatchTemplate(server: principal("host@R"))))
        #expect(
            !matches(ticket(server: principal("host/a/b@R")), flags, KCMMatchTemplate(server: principal("host/a@R"))))
    }

    @Test("server: name type ignored, case kept")
    func serverNameTypeAndCase() {
        let stored = ticket(server: principal("host/server.kcmtest.local@KCMTEST.LOCAL", nameType: 3))
        #expect(matches(stored, [], KCMMatchTemplate(server: principal("host/server.kcmtest.local@KCMTEST.LOCAL"))))
        #expect(!matches(stored, [], KCMMatchTemplate(server: principal("HOST/server.kcmtest.local@KCMTEST.LOCAL"))))
        #expect(!matches(stored, [], KCMMatchTemplate(server: principal("host/server.kcmtest.local@OTHER.REALM"))))
    }

    @Test(
        "empty realms: exact match compares them; name-only ignores them",
        arguments: [
            // stored server, template server, flags, expected
            ("HTTP/www@", "HTTP/www@", KCMMatchFlags(), true),
            ("HTTP/www@R", "HTTP/www@", KCMMatchFlags(), false),
            ("HTTP/www@", "HTTP/www@R", KCMMatchFlags(), false),
            ("HTTP/www@R", "HTTP/www@", .matchServerNameOnly, true),
            ("HTTP/www@", "HTTP/www@R", .matchServerNameOnly, true),
            ("HTTP/www@R", "HTTP/www@S", .matchServerNameOnly, true),
            ("HTTP/www@R", "HTTP/www@", .dontMatchRealm, true),
            ("HTTP/www@", "HTTP/other@", .matchServerNameOnly, false),
        ])
    func emptyRealms(stored: String, template: String, flags: KCMMatchFlags, expected: Bool) {
        let credential = ticket(server: principal(stored, nameType: 3))
        #expect(
            matches(credential, flags, KCMMatchTemplate(client: Fixture.alice, server: principal(template))) == expected
        )
    }

    @Test("an empty client realm matches only an empty stored realm")
    func emptyClientRealm() {
        #expect(!matches(ticket(client: principal("alice@R")), [], KCMMatchTemplate(client: principal("alice@"))))
        #expect(matches(ticket(client: principal("alice@")), [], KCMMatchTemplate(client: principal("alice@"))))
    }

    @Test("name-only ignores the server realm but not the client realm")
    func nameOnlyKeepsClientRealm() {
        let stored = ticket(client: principal("alice@A"), server: principal("host/h@B"))
        #expect(
            matches(
                stored, .matchServerNameOnly,
                KCMMatchTemplate(client: principal("alice@A"), server: principal("host/h@X"))))
        #expect(
            !matches(
                stored, .matchServerNameOnly,
                KCMMatchTemplate(client: principal("alice@X"), server: principal("host/h@B"))))
    }

    @Test("dontMatchRealm ignores the client AND the server realm, never the components")
    func dontMatchRealm() {
        let stored = ticket(client: principal("alice@A"), server: principal("host/h@B"))
        let template = KCMMatchTemplate(client: principal("alice@X"), server: principal("host/h@Y"))
        #expect(!matches(stored, [], template))
        #expect(matches(stored, .dontMatchRealm, template))
        #expect(
            !matches(
                stored, .dontMatchRealm, KCMMatchTemplate(client: principal("bob@A"), server: principal("host/h@B"))))
        #expect(
            !matches(
                stored, .dontMatchRealm, KCMMatchTemplate(client: principal("alice@A"), server: principal("host/g@B"))))
        #expect(matches(stored, .dontMatchRealm, KCMMatchTemplate(client: principal("alice@"))))
    }

    // MARK: Times

    static let timeRows: [(stored: UInt32, template: UInt32, expected: Bool)] = [
        (1000, 1000, true),
        (1001, 1000, true),
        (999, 1000, false),
        (0, 1000, false),
        (0, 0, true),
        (5, 0, true),
        (0xFFFF_FFFF, 0xFFFF_FFFE, true),
        // Unsigned: 0x90000000 is after 0x10000000, not a negative time before it.
        (0x9000_0000, 0x1000_0000, true),
        (0x1000_0000, 0x9000_0000, false),
        (0x8000_0000, 0x7FFF_FFFF, true),
    ]

    @Test("matchTimes: stored endtime must be at least the template's (0 = no limit), unsigned", arguments: timeRows)
    func endtime(stored: UInt32, template: UInt32, expected: Bool) {
        let credential = ticket(endtime: stored, renewTill: 0)
        #expect(
            matches(credential, .matchTimes, KCMMatchTemplate(times: KCMTicketTimes(endtime: template))) == expected)
        #expect(
            matches(credential, [], KCMMatchTemplate(times: KCMTicketTimes(endtime: template))),
            "times must be ignored without the flag")
    }

    @Test("matchTimes: stored renew_till must be at least the template's (0 = no limit), unsigned", arguments: timeRows)
    func renewTill(stored: UInt32, template: UInt32, expected: Bool) {
        let credential = ticket(endtime: 0xFFFF_FFFF, renewTill: stored)
        #expect(
            matches(credential, .matchTimes, KCMMatchTemplate(times: KCMTicketTimes(renewTill: template))) == expected)
        #expect(matches(credential, [], KCMMatchTemplate(times: KCMTicketTimes(renewTill: template))))
    }

    @Test("matchTimes needs both endtime and renew_till to pass; authtime and starttime are not checked")
    func bothTimes() {
        let credential = ticket(authtime: 10, starttime: 10, endtime: 2000, renewTill: 3000)
        #expect(
            matches(credential, .matchTimes, KCMMatchTemplate(times: KCMTicketTimes(endtime: 2000, renewTill: 3000))))
        #expect(
            !matches(credential, .matchTimes, KCMMatchTemplate(times: KCMTicketTimes(endtime: 2000, renewTill: 3001))))
        #expect(
            !matches(credential, .matchTimes, KCMMatchTemplate(times: KCMTicketTimes(endtime: 2001, renewTill: 3000))))
        #expect(
            matches(
                credential, .matchTimes,
                KCMMatchTemplate(times: KCMTicketTimes(authtime: 99, starttime: 99, endtime: 1))))
    }

    @Test(
        "matchTimesExact requires all four times equal",
        arguments: ["none", "authtime", "starttime", "endtime", "renewTill"])
    func timesExact(differing: String) {
        let credential = ticket(authtime: 1, starttime: 2, endtime: 3, renewTill: 4)
        var template = KCMMatchTemplate(times: KCMTicketTimes(authtime: 1, starttime: 2, endtime: 3, renewTill: 4))
        switch differing {
        case "authtime": template.times.authtime += 1
        case "starttime": template.times.starttime += 1
        case "endtime": template.times.endtime -= 1
        case "renewTill": template.times.renewTill -= 1
        default: break
        }
        #expect(matches(credential, .matchTimesExact, template) == (differing == "none"))
        #expect(matches(credential, [], template))
    }

    @Test("matchTimesExact with a zero template does not match a ticket that has times")
    func timesExactZero() {
        #expect(!matches(ticket(), .matchTimesExact, KCMMatchTemplate()))
        #expect(matches(configEntry("k", "v"), .matchTimesExact, KCMMatchTemplate()))
    }

    // MARK: Enctype, flags, is_skey, second ticket, authdata

    @Test("matchKeytype compares the enctype (absent keyblock = 0)")
    func keytype() {
        #expect(matches(ticket(enctype: 18), .matchKeytype, KCMMatchTemplate(enctype: 18)))
        #expect(!matches(ticket(enctype: 18), .matchKeytype, KCMMatchTemplate(enctype: 17)))
        #expect(!matches(ticket(enctype: 18), .matchKeytype, KCMMatchTemplate()))
        #expect(matches(ticket(enctype: 0), .matchKeytype, KCMMatchTemplate()))
        #expect(matches(ticket(enctype: -135), .matchKeytype, KCMMatchTemplate(enctype: -135)))
        #expect(matches(ticket(enctype: 18), [], KCMMatchTemplate(enctype: 17)))
    }

    @Test(
        "matchFlags: the template's flags must be a subset; matchFlagsExact: equal",
        arguments: [
            // stored, template, subset?, exact?
            (UInt32(0x40C1_0000), UInt32(0x00C0_0000), true, false),
            (0x40C1_0000, 0x40C1_0000, true, true),
            (0x40C1_0000, 0, true, false),
            (0x40C1_0000, 0x2080_0000, false, false),
            (0x40C1_0000, 0xFFFF_FFFF, false, false),
            (0, 0, true, true),
            (0, 0x0040_0000, false, false),
        ])
    func ticketFlags(stored: UInt32, template: UInt32, subset: Bool, exact: Bool) {
        let credential = ticket(flags: stored)
        #expect(matches(credential, .matchFlags, KCMMatchTemplate(ticketFlags: template)) == subset)
        #expect(matches(credential, .matchFlagsExact, KCMMatchTemplate(ticketFlags: template)) == exact)
        #expect(matches(credential, [.matchFlags, .matchFlagsExact], KCMMatchTemplate(ticketFlags: template)) == exact)
        #expect(matches(credential, [], KCMMatchTemplate(ticketFlags: template)))
    }

    @Test(
        "is_skey: user-to-user creds match only when asked for with matchIsSKey and is_skey 1",
        arguments: [
            // stored is_skey, matchIsSKey flag, template is_skey, expected
            (UInt8(0), false, UInt8(0), true),
            (0, false, 1, true),
            (1, false, 0, false),
            (1, false, 1, false),
            (1, true, 1, true),
            (1, true, 0, false),
            (0, true, 0, true),
            (0, true, 1, false),
        ])
    func isSKey(stored: UInt8, flag: Bool, template: UInt8, expected: Bool) {
        let credential = ticket(isSKey: stored, secondTicket: stored == 1 ? [0x61, 0x00] : [])
        let flags: KCMMatchFlags = flag ? .matchIsSKey : []
        #expect(matches(credential, flags, KCMMatchTemplate(isSKey: template)) == expected)
    }

    @Test("matchSecondTicket compares the second ticket's bytes (absent = empty)")
    func secondTicket() {
        let credential = ticket(secondTicket: [0x61, 0x01, 0x02])
        #expect(matches(credential, .matchSecondTicket, KCMMatchTemplate(secondTicket: [0x61, 0x01, 0x02])))
        #expect(!matches(credential, .matchSecondTicket, KCMMatchTemplate(secondTicket: [0x61, 0x01, 0x03])))
        #expect(!matches(credential, .matchSecondTicket, KCMMatchTemplate(secondTicket: [0x61, 0x01])))
        #expect(!matches(credential, .matchSecondTicket, KCMMatchTemplate()))
        #expect(matches(ticket(), .matchSecondTicket, KCMMatchTemplate()))
        #expect(!matches(ticket(), .matchSecondTicket, KCMMatchTemplate(secondTicket: [0x61])))
        #expect(matches(credential, [], KCMMatchTemplate(secondTicket: [0xFF])))
    }

    static let pac = KCMCredentialFields.AuthData(type: 1, data: [0x30, 0x05, 0xA0, 0x03, 0x02, 0x01, 0x80])
    static let other = KCMCredentialFields.AuthData(type: 143, data: [1, 2])

    @Test("matchAuthdata: same elements in the same order; absent equals empty")
    func authdata() {
        let withAuthdata = ticket(authdata: [Self.pac, Self.other])
        #expect(matches(withAuthdata, .matchAuthdata, KCMMatchTemplate(authdata: [Self.pac, Self.other])))
        #expect(!matches(withAuthdata, .matchAuthdata, KCMMatchTemplate()))
        #expect(!matches(withAuthdata, .matchAuthdata, KCMMatchTemplate(authdata: [Self.other, Self.pac])))
        #expect(!matches(withAuthdata, .matchAuthdata, KCMMatchTemplate(authdata: [Self.pac])))
        #expect(
            !matches(
                withAuthdata, .matchAuthdata,
                KCMMatchTemplate(authdata: [.init(type: 2, data: Self.pac.data), Self.other])))
        #expect(
            !matches(
                withAuthdata, .matchAuthdata,
                KCMMatchTemplate(authdata: [.init(type: 1, data: Self.pac.data + [0]), Self.other])))
        #expect(matches(ticket(), .matchAuthdata, KCMMatchTemplate()))
        #expect(!matches(ticket(), .matchAuthdata, KCMMatchTemplate(authdata: [Self.pac])))
        #expect(matches(withAuthdata, [], KCMMatchTemplate()))
    }

    @Test(
        "bit 0 (cached) and bits without a meaning are ignored",
        arguments: [UInt32(0), 0x0000_0001, 0x003F_FFFF, 0x0000_0002, 0x0020_0000])
    func ignoredBits(word: UInt32) {
        // Differs from the template in every field a flag could check.
        let credential = ticket(
            enctype: 17, authtime: 1, starttime: 2, endtime: 3, renewTill: 4, flags: 0x1234_5678,
            authdata: [Self.pac], secondTicket: [9])
        let template = KCMMatchTemplate(
            client: Fixture.alice, server: Fixture.host, enctype: 18,
            times: KCMTicketTimes(authtime: 9, starttime: 9, endtime: 9, renewTill: 9), ticketFlags: 0xFFFF_FFFF,
            secondTicket: [8])
        #expect(matches(credential, KCMMatchFlags(rawValue: word), template))
    }

    // MARK: What MIT actually sends (§7.2)

    @Test("service ticket lookup (0x03000001, endtime = now) finds a valid ticket, not an expired one")
    func serviceTicketLookup() {
        let now = Fixture.now
        let flags = KCMMatchFlags(rawValue: 0x0300_0001)
        let template = KCMMatchTemplate(
            client: Fixture.alice, server: principal("host/server.kcmtest.local@KCMTEST.LOCAL"),
            times: KCMTicketTimes(endtime: now))
        let valid = ticket(server: Fixture.host, endtime: now + 3600)
        let expired = ticket(server: Fixture.host, endtime: now - 1)
        let endsNow = ticket(server: Fixture.host, endtime: now)
        let withPAC = ticket(server: Fixture.host, endtime: now + 3600, authdata: [Self.pac])
        #expect(matches(valid, flags, template))
        #expect(matches(endsNow, flags, template))
        #expect(!matches(expired, flags, template))
        #expect(!matches(withPAC, flags, template))
        #expect(!matches(ticket(client: Fixture.bob, server: Fixture.host, endtime: now + 3600), flags, template))

        var list = CredentialList()
        list.append(expired, uuid: uuid(1))
        list.append(withPAC, uuid: uuid(2))
        list.append(valid, uuid: uuid(3))
        #expect(list.first(matching: CredentialMatcher(flags: flags, template: template))?.uuid == uuid(3))
    }

    @Test("TGT lookup (0x1, client + krbtgt/R@R) finds the TGT and not a service ticket")
    func tgtLookup() {
        let matcher = CredentialMatcher(
            flags: .cached,
            template: KCMMatchTemplate(client: Fixture.alice, server: principal("krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL")))
        #expect(matcher.matches(ticket(server: Fixture.krbtgt, endtime: 1)))
        #expect(!matcher.matches(ticket(server: Fixture.host)))
        #expect(!matcher.matches(ticket(server: principal("krbtgt/OTHER.REALM@KCMTEST.LOCAL", nameType: 2))))
    }

    @Test("cross-realm TGT lookup (SRV_NAMEONLY | TIMES) ignores the server realm but checks expiry")
    func crossRealmLookup() {
        let flags = KCMMatchFlags(rawValue: 0x2200_0001)
        let template = KCMMatchTemplate(
            client: Fixture.alice, server: principal("krbtgt/OTHER.REALM@"), times: KCMTicketTimes(endtime: Fixture.now)
        )
        #expect(
            matches(
                ticket(server: principal("krbtgt/OTHER.REALM@KCMTEST.LOCAL"), endtime: Fixture.now + 1), flags, template
            ))
        #expect(
            !matches(
                ticket(server: principal("krbtgt/OTHER.REALM@KCMTEST.LOCAL"), endtime: Fixture.now - 1), flags, template
            ))
    }

    @Test("config lookup (0x1, times 0) finds the entry for its key only")
    func configLookupRule() {
        let matcher = configLookup("start_realm")
        #expect(matcher.matches(configEntry("start_realm", "KCMTEST.LOCAL")))
        #expect(!matcher.matches(configEntry("fast_avail", "yes")))
        #expect(!matcher.matches(configEntry("start_realm", "KCMTEST.LOCAL", client: Fixture.bob)))
        // The same components under a real realm are a ticket, not the config entry.
        #expect(
            !matcher.matches(
                ticket(
                    server: KCMPrincipal(
                        nameType: 1, realm: ascii("KCMTEST.LOCAL"), components: configServer("start_realm").components))
            ))
    }

    @Test("the server index key ignores realm and name type, so name-only lookups can use it")
    func serverIndexKey() throws {
        let exact = serverMatcher(principal("host/a@R"))
        let otherRealm = serverMatcher(principal("host/a@S", nameType: 3), flags: .matchServerNameOnly)
        #expect(exact.serverIndexKey != nil)
        #expect(exact.serverIndexKey == otherRealm.serverIndexKey)
        #expect(exact.serverIndexKey == ServerIndexKey.make(for: ticket(server: principal("host/a@T"))))
        #expect(exact.serverIndexKey != serverMatcher(principal("host/b@R")).serverIndexKey)
        #expect(CredentialMatcher(flags: [], template: KCMMatchTemplate(client: Fixture.alice)).serverIndexKey == nil)
    }
}
