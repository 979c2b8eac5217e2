import CredentialStore
import KCM
import Testing

func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Principals written `a/b@REALM`; realm and components are taken byte for byte.
func principal(_ text: String, nameType: Int32 = 1) -> KCMPrincipal { KCMPrincipal(text, nameType: nameType) }

enum Fixture {
    static let realm = "KCMTEST.LOCAL"
    static let alice = principal("alice@KCMTEST.LOCAL")
    static let bob = principal("bob@KCMTEST.LOCAL")
    static let krbtgt = principal("krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL", nameType: 2)
    static let host = principal("host/server.kcmtest.local@KCMTEST.LOCAL", nameType: 3)
    /// A fixed "now" for the time rules: 2026-11-22, well inside the u32 range.
    static let now: UInt32 = 0x6B02_3137
}

/// A ticket built with ``KCMCredentialFields``; every field can be set.
func ticket(
    client: KCMPrincipal = Fixture.alice, server: KCMPrincipal = Fixture.host, enctype: Int16 = 18,
    authtime: UInt32 = Fixture.now, starttime: UInt32 = Fixture.now, endtime: UInt32 = Fixture.now + 36000,
    renewTill: UInt32 = 0, isSKey: UInt8 = 0, flags: UInt32 = 0x0081_0000,
    authdata: [KCMCredentialFields.AuthData] = [], ticket ticketBytes: [UInt8] = [0x61, 0x03, 0x02, 0x01, 0x05],
    secondTicket: [UInt8] = []
) -> KCMCredential {
    KCMCredentialFields(
        client: client, server: server, enctype: enctype, key: [UInt8](repeating: 0x42, count: 32),
        authtime: authtime, starttime: starttime, endtime: endtime, renewTill: renewTill, isSKey: isSKey,
        ticketFlags: flags, addresses: [.init(type: 2, data: [127, 0, 0, 1])], authdata: authdata,
        ticket: ticketBytes, secondTicket: secondTicket
    ).credential()
}

/// The server principal of a config entry: `krb5_ccache_conf_data/<key>[/<principal>]@X-CACHECONF:`.
func configServer(_ key: String, principal: String? = nil) -> KCMPrincipal {
    KCMPrincipal(
        nameType: 1, realm: KCMPrincipal.configRealm,
        components: [ascii("krb5_ccache_conf_data"), ascii(key)] + (principal.map { [ascii($0)] } ?? []))
}

/// A config entry as MIT writes it: times 0, the value in the ticket field.
func configEntry(_ key: String, _ value: String, client: KCMPrincipal = Fixture.alice) -> KCMCredential {
    KCMCredentialFields(client: client, server: configServer(key), enctype: 0, ticket: ascii(value)).credential()
}

/// What `krb5_cc_get_config` sends: flags CACHED, client and config server, everything else 0.
func configLookup(_ key: String, client: KCMPrincipal = Fixture.alice) -> CredentialMatcher {
    CredentialMatcher(flags: .cached, template: KCMMatchTemplate(client: client, server: configServer(key)))
}

/// A matcher on the server alone (exact), with extra flags.
func serverMatcher(_ server: KCMPrincipal, flags: KCMMatchFlags = []) -> CredentialMatcher {
    CredentialMatcher(flags: flags, template: KCMMatchTemplate(server: server))
}

/// The list's live entries in storage order (``CredentialList`` offers `forEach`, not `Sequence`).
func entries(of list: CredentialList) -> [CredentialList.Entry] {
    var result: [CredentialList.Entry] = []
    // swift-format-ignore: ReplaceForEachWithForLoop
    list.forEach { result.append($0) }
    return result
}

func uuid(_ n: UInt64) -> KCMUUID { KCMUUID(high: 0xC0DE, low: n) }

/// The value of a config entry or the ticket of a ticket, as text.
func ticketText(_ credential: KCMCredential) -> String { String(decoding: credential.ticket, as: UTF8.self) }

/// The error a throwing store call raised, or nil. Any error that is not a ``CredentialStoreError``
/// is recorded as an issue.
func storeError<T>(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T
) -> CredentialStoreError? {
    do {
        _ = try body()
        return nil
    } catch let error as CredentialStoreError {
        return error
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
