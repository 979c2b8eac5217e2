import KCM

/// The UTF-8 bytes of `text`, for wire fields and principal parts.
package func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Deterministic bytes for tickets and keys: `count` bytes starting at `seed`, counting up.
package func filler(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: Int(seed) + $0) }
}

/// `value` as two big-endian bytes.
package func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

/// `value` as four big-endian bytes.
package func be32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

/// Principals written `a/b@REALM`; realm and components are taken byte for byte.
package func principal(_ text: String, nameType: Int32 = 1) -> KCMPrincipal { KCMPrincipal(text, nameType: nameType) }

/// Realistic principals, credentials and templates in the unit tests' realm `KCMTEST.LOCAL`.
package enum Fixture {
    /// The unit tests' realm.
    package static let realm = "KCMTEST.LOCAL"
    /// `alice@KCMTEST.LOCAL`.
    package static let alice = KCMPrincipal(nameType: 1, realm: ascii(realm), components: [ascii("alice")])
    /// `bob@KCMTEST.LOCAL`.
    package static let bob = principal("bob@KCMTEST.LOCAL")
    /// The realm's TGS, `krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL` (name type 2).
    package static let krbtgt = KCMPrincipal(
        nameType: 2, realm: ascii(realm), components: [ascii("krbtgt"), ascii(realm)])
    /// `host/server.kcmtest.local@KCMTEST.LOCAL` (name type 3).
    package static let hostService = KCMPrincipal(
        nameType: 3, realm: ascii(realm), components: [ascii("host"), ascii("server.kcmtest.local")])
    /// The same service as ``hostService``, under the name the store tests use.
    package static let host = hostService
    /// An enterprise principal with an `@` inside its single component.
    package static let enterprise = KCMPrincipal(
        nameType: 10, realm: ascii(realm), components: [ascii("alice@corp.example")])
    /// MIT's referral form: empty realm.
    package static let referralService = KCMPrincipal(
        nameType: 3, realm: [], components: [ascii("HTTP"), ascii("www.kcmtest.local")])
    /// A fixed "now" for the time rules: 2026-11-22, well inside the u32 range.
    package static let now: UInt32 = 0x6B02_3137

    /// A cache UUID for alice's cache.
    package static let aliceUUID = KCMUUID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
    /// Another cache UUID.
    package static let otherUUID = KCMUUID(high: 0xFFFF_FFFF_FFFF_FFFF, low: 1)

    /// The server of a config entry: `krb5_ccache_conf_data/<key>[/<principal>]@X-CACHECONF:`.
    package static func configServer(key: String, principal: String? = nil) -> KCMPrincipal {
        var components = [ascii("krb5_ccache_conf_data"), ascii(key)]
        if let principal { components.append(ascii(principal)) }
        return KCMPrincipal(nameType: 1, realm: KCMPrincipal.configRealm, components: components)
    }

    /// A credential using every field: addresses, authdata, a second ticket, odd enctype and flags.
    package static let everyField = KCMCredentialFields(
        client: alice, server: hostService, enctype: -135, key: filler(16, seed: 0xA0),
        times: KCMTicketTimes(
            authtime: 0x6B02_3137, starttime: 0x6B02_3200, endtime: 0x6B02_BDD7, renewTill: 0x9000_0000), isSKey: 1,
        ticketFlags: 0x40C1_0000,
        addresses: [
            .init(type: 2, data: [192, 0, 2, 7]),
            .init(type: 24, data: [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]),
        ],
        authdata: [.init(type: 1, data: filler(40, seed: 0x30)), .init(type: -128, data: [])],
        ticket: [0x61, 0x82, 0x01, 0x00] + filler(256, seed: 7), secondTicket: [0x61, 0x03, 0x02, 0x01, 0x05])

    /// A TGT as `kinit` stores it.
    package static let tgt = KCMCredentialFields(
        client: alice, server: krbtgt, enctype: 18, key: filler(32),
        times: KCMTicketTimes(
            authtime: 0x6B02_3137, starttime: 0x6B02_3137, endtime: 0x6B02_BDD7, renewTill: 0x6B03_82B7),
        ticketFlags: 0x00C1_0000,
        ticket: [0x61, 0x82, 0x01, 0xAE] + filler(430, seed: 0x11))

    /// A config entry as MIT writes it: every time 0, the value in the ticket field.
    package static func configEntry(key: String, value: String, principal: String? = nil) -> KCMCredentialFields {
        KCMCredentialFields(
            client: alice, server: configServer(key: key, principal: principal), enctype: 0, ticket: ascii(value))
    }

    /// A template with every optional field the encoder knows.
    package static let everyFieldTemplate = KCMMatchTemplate(
        client: alice, server: hostService, enctype: 17,
        times: KCMTicketTimes(authtime: 1, starttime: 2, endtime: 0xFFFF_FFFE, renewTill: 0x8000_0000), isSKey: 1,
        ticketFlags: 0x0080_0000,
        authdata: [.init(type: 1, data: [1, 2, 3]), .init(type: 143, data: filler(9))], ticket: [0x61, 0x00],
        secondTicket: [0x61, 0x01, 0xFF])

    /// What `krb5_cc_get_config(start_realm)` sends.
    package static let startRealmTemplate = KCMMatchTemplate(client: alice, server: configServer(key: "start_realm"))
}
