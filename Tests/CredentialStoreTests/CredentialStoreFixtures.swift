import CredentialStore
import KCM
import TestSupport
import Testing

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

extension CredentialStore {
    /// The names of the existing caches, in creation order.
    var cacheNames: [KCMCacheName] { cacheUUIDs.compactMap { try? cacheName(uuid: $0) } }
}
