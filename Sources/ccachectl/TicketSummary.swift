import KCM
import Krb5Caches

/// What `list` shows of one ticket, read from the stored credential without decoding its session
/// key or copying its ticket: only the principals and the scalar fields leave ``SecureBytes``
/// (issue 12, item 7: a core of `ccachectl list -v` held two copies of the key and the ticket).
@dynamicMemberLookup
struct TicketSummary {
    /// The principals and scalar fields; the key, ticket, addresses and authdata stay empty.
    var fields: KCMCredentialFields
    /// The server the ticket itself names, when it differs from the name it is cached under (a
    /// referral entry such as `host/localhost@` holds a ticket for `host/localhost@REALM`), as
    /// klist prints it after "Ticket server:".
    var ticketServer: KCMPrincipal?

    subscript<Value>(dynamicMember field: KeyPath<KCMCredentialFields, Value>) -> Value { fields[keyPath: field] }

    init(credential: KCMCredential, library: Krb5Library?) throws(KCMDecodingError) {
        fields = KCMCredentialFields(
            client: try Self.principal(credential, credential.client),
            server: try Self.principal(credential, credential.server), enctype: credential.enctype,
            times: credential.times, ticketFlags: credential.ticketFlags)
        if let named = library?.ticketServer(of: credential),
            named.realm != fields.server.realm || named.components != fields.server.components
        {
            ticketServer = named
        }
    }

    /// Decodes one principal from its own bytes only.
    private static func principal(_ credential: KCMCredential, _ layout: KCMPrincipalLayout)
        throws(KCMDecodingError) -> KCMPrincipal
    {
        var reader = KCMReader(Array(credential.bytes[Int(layout.start)..<Int(layout.end)]))
        return try KCMPrincipal.read(from: &reader)
    }
}
