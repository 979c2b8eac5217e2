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

    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMCredentialFields {
        let client = try KCMPrincipal.read(from: &reader)
        let server = try KCMPrincipal.read(from: &reader)
        let enctype = try reader.readInt16()
        let key = try reader.readData()
        let times = try KCMTicketTimes.read(from: &reader)
        let isSKey = try reader.readUInt8()
        let flags = try reader.readUInt32()
        var addresses: [Address] = []
        for _ in 0..<(try reader.readCount(field: "address", minimumItemSize: 6)) {
            addresses.append(Address(type: try reader.readUInt16(), data: try reader.readData()))
        }
        var authdata: [AuthData] = []
        for _ in 0..<(try reader.readCount(field: "authdata", minimumItemSize: 6)) {
            authdata.append(AuthData(type: try reader.readInt16(), data: try reader.readData()))
        }
        return KCMCredentialFields(
            client: client, server: server, enctype: enctype, key: key, times: times, isSKey: isSKey,
            ticketFlags: flags, addresses: addresses, authdata: authdata, ticket: try reader.readData(),
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
        writer.write(UInt32(truncatingIfNeeded: addresses.count))
        for address in addresses {
            writer.write(address.type)
            writer.writeData(address.data)
        }
        writer.write(UInt32(truncatingIfNeeded: authdata.count))
        for element in authdata {
            writer.write(element.type)
            writer.writeData(element.data)
        }
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
