import KCM
import SecureMemory

/// MIT's credential matching (`krb5int_cc_creds_match_request`), expressed in the Heimdal flag bits
/// that go over the wire. Built once per template; matching a stored credential compares bytes in
/// place and allocates nothing.
public struct CredentialMatcher: Sendable {
    public let flags: KCMMatchFlags
    public let template: KCMMatchTemplate
    private let clientKey: [UInt8]?
    private let clientCount: [UInt8]
    private let clientComponents: [UInt8]
    private let serverKey: [UInt8]?
    private let serverCount: [UInt8]
    private let serverComponents: [UInt8]
    private let ignoreClientRealm: Bool
    private let ignoreServerRealm: Bool

    public init(flags: KCMMatchFlags, template: KCMMatchTemplate) {
        self.flags = flags
        self.template = template
        clientKey = template.client?.matchKey
        clientCount = Self.countWord(template.client)
        clientComponents = template.client?.componentsKey ?? []
        serverKey = template.server?.matchKey
        serverCount = Self.countWord(template.server)
        serverComponents = template.server?.componentsKey ?? []
        ignoreClientRealm = flags.contains(.dontMatchRealm)
        ignoreServerRealm = flags.contains(.dontMatchRealm) || flags.contains(.matchServerNameOnly)
    }

    private static func countWord(_ principal: KCMPrincipal?) -> [UInt8] {
        var writer = KCMWriter(capacity: 4)
        writer.write(UInt32(truncatingIfNeeded: principal?.components.count ?? 0))
        return writer.bytes
    }

    /// The server-index key of the template's server, if it names one (see ``ServerIndexKey``).
    public var serverIndexKey: Int? {
        template.server == nil ? nil : ServerIndexKey.make(count: serverCount[...], components: serverComponents[...])
    }

    /// Whether `credential` satisfies the template under the flags.
    public func matches(_ credential: KCMCredential) -> Bool {
        if clientKey != nil {
            if ignoreClientRealm {
                guard credential.clientComponentCount.bytesEqual(clientCount),
                    credential.clientComponents.bytesEqual(clientComponents)
                else { return false }
            } else {
                guard credential.clientKey.bytesEqual(clientKey!) else { return false }
            }
        }
        if serverKey != nil {
            if ignoreServerRealm {
                guard credential.serverComponentCount.bytesEqual(serverCount),
                    credential.serverComponents.bytesEqual(serverComponents)
                else { return false }
            } else {
                guard credential.serverKey.bytesEqual(serverKey!) else { return false }
            }
        }
        // User-to-user creds never match unless the caller asked for them.
        let expectedSKey: UInt8 = flags.contains(.matchIsSKey) ? template.isSKey : 0
        guard credential.isSKey == expectedSKey else { return false }
        if flags.contains(.matchFlagsExact), credential.ticketFlags != template.ticketFlags { return false }
        if flags.contains(.matchFlags), credential.ticketFlags & template.ticketFlags != template.ticketFlags {
            return false
        }
        if flags.contains(.matchTimesExact) {
            guard credential.authtime == template.authtime, credential.starttime == template.starttime,
                credential.endtime == template.endtime, credential.renewTill == template.renewTill
            else { return false }
        }
        if flags.contains(.matchTimes) {
            // Unsigned comparison, as MIT does: keeps working past 2038.
            if template.renewTill != 0, credential.renewTill < template.renewTill { return false }
            if template.endtime != 0, credential.endtime < template.endtime { return false }
        }
        if flags.contains(.matchAuthdata), !credential.authdata.bytesEqual(template.authdata) { return false }
        if flags.contains(.matchSecondTicket), !credential.secondTicket.bytesEqual(template.secondTicket) {
            return false
        }
        if flags.contains(.matchKeytype), credential.enctype != template.enctype { return false }
        return true
    }
}
