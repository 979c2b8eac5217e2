/// The template of RETRIEVE and REMOVE_CRED ("mcred"): a header word says which optional fields
/// follow; times, is_skey and flags are always there.
public struct KCMMatchTemplate: Hashable, Sendable {
    /// Header bits saying which optional fields are present.
    public struct Fields: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let client = Fields(rawValue: 0x01)
        public static let server = Fields(rawValue: 0x02)
        public static let keyblock = Fields(rawValue: 0x04)
        public static let ticket = Fields(rawValue: 0x08)
        public static let secondTicket = Fields(rawValue: 0x10)
        public static let authdata = Fields(rawValue: 0x20)
        public static let addresses = Fields(rawValue: 0x40)
    }

    public var client: KCMPrincipal?
    public var server: KCMPrincipal?
    /// The keyblock's enctype; 0 when absent.
    public var enctype: Int16
    public var times: KCMTicketTimes
    public var isSKey: UInt8
    public var ticketFlags: UInt32
    /// The authdata list's encoding (`u32 count` + elements); an absent list is the empty one.
    public var authdata: [UInt8]
    public var ticket: [UInt8]
    public var secondTicket: [UInt8]

    public init(
        client: KCMPrincipal? = nil, server: KCMPrincipal? = nil, enctype: Int16 = 0,
        times: KCMTicketTimes = KCMTicketTimes(), isSKey: UInt8 = 0, ticketFlags: UInt32 = 0,
        authdata: [KCMCredentialFields.AuthData] = [], ticket: [UInt8] = [],
        secondTicket: [UInt8] = []
    ) {
        self.client = client
        self.server = server
        self.enctype = enctype
        self.times = times
        self.isSKey = isSKey
        self.ticketFlags = ticketFlags
        var writer = KCMWriter()
        KCMCredentialFields.AuthData.writeList(authdata, to: &writer)
        self.authdata = writer.bytes
        self.ticket = ticket
        self.secondTicket = secondTicket
    }

    static let emptyList: [UInt8] = [0, 0, 0, 0]

    /// Decodes a template, tolerating Heimdal's habit of omitting a header bit for empty fields.
    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMMatchTemplate {
        let fields = Fields(rawValue: try reader.readUInt32())
        var template = KCMMatchTemplate()
        if fields.contains(.client) { template.client = try KCMPrincipal.read(from: &reader) }
        if fields.contains(.server) { template.server = try KCMPrincipal.read(from: &reader) }
        if fields.contains(.keyblock) {
            template.enctype = try reader.readInt16()
            _ = try reader.readDataRange()
        }
        template.times = try KCMTicketTimes.read(from: &reader)
        template.isSKey = try reader.readUInt8()
        template.ticketFlags = try reader.readUInt32()
        if fields.contains(.addresses) { try reader.skipTypedList(field: "address") }
        if fields.contains(.authdata) {
            let start = reader.offset
            try reader.skipTypedList(field: "authdata")
            template.authdata = Array(reader.bytes[start..<reader.offset])
        }
        if fields.contains(.ticket) { template.ticket = try reader.readData() }
        if fields.contains(.secondTicket) { template.secondTicket = try reader.readData() }
        return template
    }

    /// Encodes the template the way MIT's client does: a field is present when it is non-empty.
    public func write(to writer: inout KCMWriter) {
        var fields: Fields = []
        if client != nil { fields.insert(.client) }
        if server != nil { fields.insert(.server) }
        if enctype != 0 { fields.insert(.keyblock) }
        if !ticket.isEmpty { fields.insert(.ticket) }
        if !secondTicket.isEmpty { fields.insert(.secondTicket) }
        if authdata != Self.emptyList { fields.insert(.authdata) }
        writer.write(fields.rawValue)
        client?.write(to: &writer)
        server?.write(to: &writer)
        if fields.contains(.keyblock) {
            writer.write(enctype)
            writer.write(UInt32(0))
        }
        times.write(to: &writer)
        writer.write(isSKey)
        writer.write(ticketFlags)
        if fields.contains(.authdata) { writer.writeBytes(authdata) }
        if fields.contains(.ticket) { writer.writeData(ticket) }
        if fields.contains(.secondTicket) { writer.writeData(secondTicket) }
    }
}
