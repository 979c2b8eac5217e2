import KCM
import SecureMemory

/// The parts of a credential that decide when it is renewed: its four times (KDC clock, Unix
/// seconds), its ticket flags and whether it is a ticket-granting ticket.
public struct RenewalTimes: Hashable, Sendable {
    public var authtime: UInt32
    /// 0 when the ticket carries no start time (it then starts at ``authtime``).
    public var starttime: UInt32
    public var endtime: UInt32
    /// 0 when the ticket is not renewable.
    public var renewTill: UInt32
    /// Ticket flags in MIT's bit order (``renewableFlag``, ``invalidFlag``).
    public var ticketFlags: UInt32
    /// The server is `krbtgt/…`: a ticket-granting ticket.
    public var isTicketGrantingTicket: Bool

    /// `TKT_FLG_RENEWABLE`.
    public static let renewableFlag: UInt32 = 0x0080_0000
    /// `TKT_FLG_INVALID`: a postdated ticket that must be validated, not renewed.
    public static let invalidFlag: UInt32 = 0x0100_0000

    public init(
        authtime: UInt32, starttime: UInt32, endtime: UInt32, renewTill: UInt32, ticketFlags: UInt32,
        isTicketGrantingTicket: Bool
    ) {
        self.authtime = authtime
        self.starttime = starttime
        self.endtime = endtime
        self.renewTill = renewTill
        self.ticketFlags = ticketFlags
        self.isTicketGrantingTicket = isTicketGrantingTicket
    }

    /// The times of a stored credential (v4 bytes as the store keeps them).
    public init(_ credential: KCMCredential) {
        // Exactly two server components, the first `krbtgt` (`u32 6` and the six bytes).
        let components = credential.serverComponents
        let isTGT =
            credential.serverComponentCount.bytesEqual([0, 0, 0, 2]) && components.count >= 10
            && components.prefix(10).bytesEqual(Self.krbtgtComponent)
        self.init(
            authtime: credential.authtime, starttime: credential.starttime, endtime: credential.endtime,
            renewTill: credential.renewTill, ticketFlags: credential.ticketFlags, isTicketGrantingTicket: isTGT)
    }

    private static let krbtgtComponent: [UInt8] = [0, 0, 0, 6] + Array("krbtgt".utf8)

    /// When the ticket became valid.
    public var start: UInt32 { starttime != 0 ? starttime : authtime }

    /// The ticket's lifetime in seconds (0 when the times are inconsistent).
    public var lifetime: UInt32 { endtime > start ? endtime - start : 0 }

    public var isRenewable: Bool { ticketFlags & Self.renewableFlag != 0 && renewTill != 0 }
}
