import KCM
import SecureMemory

/// MIT's credential matching (`krb5int_cc_creds_match_request`), expressed in the Heimdal flag bits
/// that go over the wire. Built once per template; matching a stored credential compares bytes in
/// place and allocates nothing.
public struct CredentialMatcher: Sendable {
    public let flags: KCMMatchFlags
    public let template: KCMMatchTemplate
    private let client: PrincipalPattern?
    private let server: PrincipalPattern?

    public init(flags: KCMMatchFlags, template: KCMMatchTemplate) {
        self.flags = flags
        self.template = template
        client = template.client.map { PrincipalPattern($0, ignoringRealm: flags.contains(.dontMatchRealm)) }
        server = template.server.map {
            PrincipalPattern($0, ignoringRealm: flags.contains(.dontMatchRealm) || flags.contains(.matchServerNameOnly))
        }
    }

    /// A template's client or server as the bytes a stored principal must equal: the whole encoding,
    /// or with the realm ignored, the component count and the components.
    private struct PrincipalPattern {
        let key: [UInt8]
        let count: [UInt8]
        let components: [UInt8]
        let ignoresRealm: Bool

        init(_ principal: KCMPrincipal, ignoringRealm: Bool) {
            key = principal.matchKey
            var writer = KCMWriter(capacity: 4)
            writer.write(UInt32(truncatingIfNeeded: principal.components.count))
            count = writer.bytes
            components = principal.componentsKey
            ignoresRealm = ignoringRealm
        }

        /// Whether a stored principal — its whole key, its count word, its components — matches.
        func matches(
            _ storedKey: Slice<SecureBytes>, _ storedCount: Slice<SecureBytes>,
            _ storedComponents: Slice<SecureBytes>
        ) -> Bool {
            ignoresRealm
                ? storedCount.bytesEqual(count) && storedComponents.bytesEqual(components) : storedKey.bytesEqual(key)
        }
    }

    /// The server-index key of the template's server, if it names one (see ``ServerIndexKey``).
    public var serverIndexKey: Int? {
        server.map { ServerIndexKey.make(count: $0.count[...], components: $0.components[...]) }
    }

    /// Whether `credential` satisfies the template under the flags.
    public func matches(_ credential: KCMCredential) -> Bool {
        guard
            client?.matches(credential.clientKey, credential.clientComponentCount, credential.clientComponents) ?? true,
            server?.matches(credential.serverKey, credential.serverComponentCount, credential.serverComponents) ?? true
        else { return false }
        // User-to-user creds never match unless the caller asked for them.
        let expectedSKey: UInt8 = flags.contains(.matchIsSKey) ? template.isSKey : 0
        guard credential.isSKey == expectedSKey else { return false }
        if flags.contains(.matchFlagsExact), credential.ticketFlags != template.ticketFlags { return false }
        if flags.contains(.matchFlags), credential.ticketFlags & template.ticketFlags != template.ticketFlags {
            return false
        }
        if flags.contains(.matchTimesExact) {
            guard credential.times == template.times else { return false }
        }
        if flags.contains(.matchTimes) {
            // Unsigned comparison, as MIT does: keeps working past 2038.
            if template.times.renewTill != 0, credential.times.renewTill < template.times.renewTill { return false }
            if template.times.endtime != 0, credential.times.endtime < template.times.endtime { return false }
        }
        if flags.contains(.matchAuthdata), !credential.authdata.bytesEqual(template.authdata) { return false }
        if flags.contains(.matchSecondTicket), !credential.secondTicket.bytesEqual(template.secondTicket) {
            return false
        }
        if flags.contains(.matchKeytype), credential.enctype != template.enctype { return false }
        return true
    }
}
