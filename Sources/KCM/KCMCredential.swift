import SecureMemory

/// One credential as it travels on the wire (FILE-ccache version 4 "cred"), kept as the exact bytes
/// the client sent plus the offsets and scalar fields that matching needs.
///
/// The daemon returns the bytes unchanged; it never needs a decoded copy of keys or tickets. The
/// bytes live in ``SecureBytes``: locked in RAM, out of core dumps, zeroed when the last copy goes.
public struct KCMCredential: Sendable {
    /// The encoded credential, exactly as received.
    public let bytes: SecureBytes
    public let client: KCMPrincipalLayout
    public let server: KCMPrincipalLayout
    /// The session key's enctype (sign-extended `s16`).
    public let enctype: Int16
    public let times: KCMTicketTimes
    /// 1 for a user-to-user ticket.
    public let isSKey: UInt8
    /// Ticket flags in MIT's bit order.
    public let ticketFlags: UInt32
    /// The authdata list's encoding (`u32 count` and the elements); equal lists have equal bytes.
    public let authdataRange: Range<Int32>
    /// The second ticket's bytes (after its length word).
    public let secondTicketRange: Range<Int32>
    /// The ticket's bytes (after its length word).
    public let ticketRange: Range<Int32>

    /// Parses a credential from `bytes[range]`, which must hold exactly one credential; trailing
    /// bytes inside the range are ignored, as MIT ignores them.
    public init(parsing source: [UInt8], range: Range<Int>? = nil) throws(KCMDecodingError) {
        let range = range ?? 0..<source.count
        var reader = KCMReader(source, offset: range.lowerBound, end: range.upperBound)
        let base = range.lowerBound
        client = try KCMPrincipalLayout.read(from: &reader, base: base)
        server = try KCMPrincipalLayout.read(from: &reader, base: base)
        enctype = try reader.readInt16()
        _ = try reader.readDataRange()
        times = try KCMTicketTimes.read(from: &reader)
        isSKey = try reader.readUInt8()
        ticketFlags = try reader.readUInt32()
        try reader.skipTypedList(field: "address")
        let authdataStart = reader.offset - base
        try reader.skipTypedList(field: "authdata")
        authdataRange = Int32(authdataStart)..<Int32(reader.offset - base)
        let ticket = try reader.readDataRange()
        ticketRange = Int32(ticket.lowerBound - base)..<Int32(ticket.upperBound - base)
        let second = try reader.readDataRange()
        secondTicketRange = Int32(second.lowerBound - base)..<Int32(second.upperBound - base)
        let length = reader.offset - base
        bytes = SecureBytes(copying: source[base..<base + length])
    }

    /// Reads one credential from the reader's position (it has no length prefix of its own).
    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMCredential {
        let credential = try KCMCredential(parsing: reader.bytes, range: reader.offset..<reader.end)
        try reader.skip(credential.bytes.count)
        return credential
    }

    /// The server realm is `X-CACHECONF:`: a ccache configuration entry, not a ticket.
    public var isConfigEntry: Bool {
        bytes[server.realmRange].bytesEqual(KCMPrincipal.configRealm)
    }

    /// The client's match key (see ``KCMPrincipal/matchKey``).
    public var clientKey: Slice<SecureBytes> { bytes[client.countStart..<Int(client.end)] }
    /// The server's match key (see ``KCMPrincipal/matchKey``).
    public var serverKey: Slice<SecureBytes> { bytes[server.countStart..<Int(server.end)] }
    /// The server's component count word and encoded components, without the realm.
    public var serverComponentCount: Slice<SecureBytes> { bytes[server.countStart..<server.countStart + 4] }
    public var serverComponents: Slice<SecureBytes> { bytes[server.componentsRange] }
    public var clientComponentCount: Slice<SecureBytes> { bytes[client.countStart..<client.countStart + 4] }
    public var clientComponents: Slice<SecureBytes> { bytes[client.componentsRange] }
    public var authdata: Slice<SecureBytes> { bytes[Int(authdataRange.lowerBound)..<Int(authdataRange.upperBound)] }
    public var secondTicket: Slice<SecureBytes> {
        bytes[Int(secondTicketRange.lowerBound)..<Int(secondTicketRange.upperBound)]
    }
    public var ticket: Slice<SecureBytes> { bytes[Int(ticketRange.lowerBound)..<Int(ticketRange.upperBound)] }

    /// Decodes every field (for tools and tests; the daemon does not need this).
    public func decodeFields() throws(KCMDecodingError) -> KCMCredentialFields {
        var reader = KCMReader(Array(bytes))
        return try KCMCredentialFields.read(from: &reader)
    }
}

extension KCMCredential {
    /// `range` of the credential's bytes (all of them when nil) as C's `char *` and a length, for a
    /// libkrb5 call that reads them in place (`krb5_unmarshal_credentials`, `krb5_decode_ticket`):
    /// no copy leaves ``SecureBytes``.
    public func withCBuffer<Result>(
        _ range: Range<Int>? = nil, _ body: (_ data: UnsafeMutablePointer<CChar>?, _ length: UInt32) -> Result
    ) -> Result {
        bytes.withUnsafeBytes { raw in
            let part = range ?? 0..<raw.count
            let start = raw.baseAddress?.advanced(by: part.lowerBound).assumingMemoryBound(to: CChar.self)
            return body(UnsafeMutablePointer(mutating: start), UInt32(part.count))
        }
    }
}
