/// What ``RenewalPolicy`` says about one credential at one moment.
public enum RenewalDecision: Hashable, Sendable {
    /// Renew at this time (KDC clock, Unix seconds); at or before `now` means now.
    case due(at: UInt32)
    /// Never renew this credential; the reason is worth telling the user once.
    case never(RenewalStopReason)
}

/// Why a credential will not be renewed.
public enum RenewalStopReason: String, Hashable, Sendable, CustomStringConvertible {
    /// The ticket has no RENEWABLE flag or no renew-till time.
    case notRenewable = "not renewable"
    /// A renewal could not move the end time any more: `renew_till` is at or before it.
    case renewTillReached = "renewable lifetime reached"
    /// The ticket has already expired; a KDC refuses to renew it.
    case expired = "expired"
    /// A postdated ticket still marked invalid: it needs validation, not renewal.
    case invalid = "postdated ticket not yet validated"
    /// Renewal of this kind of ticket is switched off (``RenewalPolicy/renewsServiceTickets``).
    case excluded = "service ticket renewal is off"

    public var description: String { rawValue }
}
