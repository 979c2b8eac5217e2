import KCM
import SecureMemory

/// The parts of a credential that decide when it is renewed: its four times, its ticket flags and
/// whether it is a ticket-granting ticket.
public struct RenewalTimes: Hashable, Sendable {
    public var times: KCMTicketTimes
    /// Ticket flags in MIT's bit order (``renewableFlag``, ``invalidFlag``).
    public var ticketFlags: UInt32
    /// The server is `krbtgt/…`: a ticket-granting ticket.
    public var isTicketGrantingTicket: Bool

    /// `TKT_FLG_RENEWABLE`.
    public static let renewableFlag: UInt32 = 0x0080_0000
    /// `TKT_FLG_INVALID`: a postdated ticket that must be validated, not renewed.
    public static let invalidFlag: UInt32 = 0x0100_0000

    public init(times: KCMTicketTimes, ticketFlags: UInt32, isTicketGrantingTicket: Bool) {
        self.times = times
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
        self.init(times: credential.times, ticketFlags: credential.ticketFlags, isTicketGrantingTicket: isTGT)
    }

    private static let krbtgtComponent: [UInt8] = [0, 0, 0, 6] + Array("krbtgt".utf8)

    public var isRenewable: Bool { ticketFlags & Self.renewableFlag != 0 && times.renewTill != 0 }
}
