/// A ticket's four times (MIT's `krb5_ticket_times`): KDC clock, Unix seconds, each a `u32` on the
/// wire in this order. A credential and a match template carry them alike.
public struct KCMTicketTimes: Hashable, Sendable {
    public var authtime: UInt32
    /// 0 when the ticket carries no start time (it then starts at ``authtime``).
    public var starttime: UInt32
    public var endtime: UInt32
    /// 0 when the ticket is not renewable.
    public var renewTill: UInt32

    public init(authtime: UInt32 = 0, starttime: UInt32 = 0, endtime: UInt32 = 0, renewTill: UInt32 = 0) {
        self.authtime = authtime
        self.starttime = starttime
        self.endtime = endtime
        self.renewTill = renewTill
    }

    /// When the ticket became valid.
    public var start: UInt32 { starttime != 0 ? starttime : authtime }

    /// The ticket's lifetime in seconds (0 when the times are inconsistent).
    public var lifetime: UInt32 { endtime > start ? endtime - start : 0 }

    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMTicketTimes {
        KCMTicketTimes(
            authtime: try reader.readUInt32(), starttime: try reader.readUInt32(), endtime: try reader.readUInt32(),
            renewTill: try reader.readUInt32())
    }

    public func write(to writer: inout KCMWriter) {
        writer.write(authtime)
        writer.write(starttime)
        writer.write(endtime)
        writer.write(renewTill)
    }
}
