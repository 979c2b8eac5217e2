/// A credential with every field decoded: what a client builds before it stores, and what tools
/// show. The daemon itself keeps ``KCMCredential`` instead.
public struct KCMCredentialFields: Hashable, Sendable {
    /// A ticket's typed datum on the wire: a 16-bit `type`, then `data`.
    public struct Typed<Tag: FixedWidthInteger & Sendable>: Hashable, Sendable {
        public var type: Tag
        public var data: [UInt8]
        public init(type: Tag, data: [UInt8]) {
            self.type = type
            self.data = data
        }
    }

    /// An address of a ticket (`u16 type`, `data`): 2 = IPv4, 24 = IPv6.
    public typealias Address = Typed<UInt16>

    /// An authorization-data element (`s16 type`, `data`).
    public typealias AuthData = Typed<Int16>

    public var client: KCMPrincipal
    public var server: KCMPrincipal
    public var enctype: Int16
    public var key: [UInt8]
    public var times: KCMTicketTimes
    public var isSKey: UInt8
    public var ticketFlags: UInt32
    public var addresses: [Address]
    public var authdata: [AuthData]
    public var ticket: [UInt8]
    public var secondTicket: [UInt8]

    public init(
        client: KCMPrincipal, server: KCMPrincipal, enctype: Int16 = 18, key: [UInt8] = [],
        times: KCMTicketTimes = KCMTicketTimes(), isSKey: UInt8 = 0, ticketFlags: UInt32 = 0,
        addresses: [Address] = [], authdata: [AuthData] = [], ticket: [UInt8] = [], secondTicket: [UInt8] = []
    ) {
        self.client = client
        self.server = server
        self.enctype = enctype
        self.key = key
        self.times = times
        self.isSKey = isSKey
        self.ticketFlags = ticketFlags
        self.addresses = addresses
        self.authdata = authdata
        self.ticket = ticket
        self.secondTicket = secondTicket
    }

    /// Reads the fields in wire order (Swift evaluates the arguments left to right).
    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMCredentialFields {
        KCMCredentialFields(
            client: try KCMPrincipal.read(from: &reader), server: try KCMPrincipal.read(from: &reader),
            enctype: try reader.readInt16(), key: try reader.readData(), times: try KCMTicketTimes.read(from: &reader),
            isSKey: try reader.readUInt8(), ticketFlags: try reader.readUInt32(),
            addresses: try Address.readList(field: "address", from: &reader),
            authdata: try AuthData.readList(field: "authdata", from: &reader), ticket: try reader.readData(),
            secondTicket: try reader.readData())
    }

    public func write(to writer: inout KCMWriter) {
        client.write(to: &writer)
        server.write(to: &writer)
        writer.write(enctype)
        writer.writeData(key)
        times.write(to: &writer)
        writer.write(isSKey)
        writer.write(ticketFlags)
        Address.writeList(addresses, to: &writer)
        AuthData.writeList(authdata, to: &writer)
        writer.writeData(ticket)
        writer.writeData(secondTicket)
    }

    /// The wire encoding.
    public var encoded: [UInt8] {
        var writer = KCMWriter(capacity: 256 + ticket.count)
        write(to: &writer)
        return writer.bytes
    }

    /// The wire form the daemon keeps.
    public func credential() -> KCMCredential {
        // The encoding just written always parses.
        try! KCMCredential(parsing: encoded)
    }
}

extension KCMCredentialFields.Typed {
    /// Reads a list of typed data as a credential carries its addresses and authdata: `u32 count`,
    /// then each element's 16-bit type and data.
    static func readList(field: String, from reader: inout KCMReader) throws(KCMDecodingError) -> [Self] {
        var list: [Self] = []
        for _ in 0..<(try reader.readCount(field: field, minimumItemSize: 6)) {
            list.append(Self(type: Tag(truncatingIfNeeded: try reader.readUInt16()), data: try reader.readData()))
        }
        return list
    }

    /// Writes `list` in the form ``readList(field:from:)`` reads.
    static func writeList(_ list: [Self], to writer: inout KCMWriter) {
        writer.write(UInt32(truncatingIfNeeded: list.count))
        for element in list {
            writer.write(UInt16(truncatingIfNeeded: element.type))
            writer.writeData(element.data)
        }
    }
}

extension KCMReader {
    /// Steps over a list of typed data (a credential's addresses or authdata, see
    /// ``KCMCredentialFields/Typed``) without copying it.
    mutating func skipTypedList(field: String) throws(KCMDecodingError) {
        for _ in 0..<(try readCount(field: field, minimumItemSize: 6)) {
            try skip(2)
            _ = try readDataRange()
        }
    }
}
