import KCM

/// When a credential is renewed: a pure function of its times, the clock and its failures.
///
/// A ticket is due when less than ``thresholdFraction`` of its lifetime remains, and never later
/// than ``margin`` seconds before it expires; but never sooner than ``minimumInterval`` (or half
/// its lifetime, if that is shorter) after it started, so a ticket shorter than the margin is
/// renewed at half-life rather than over and over. After a failure the next attempt waits for a
/// back-off that doubles from ``initialBackoff`` to at most ``maximumBackoff``, each delay drawn
/// between half and all of its value (jitter), so many daemons never retry in step and a dead KDC
/// never causes a busy loop.
public struct RenewalPolicy: Hashable, Sendable {
    /// Renew when less than this fraction of the lifetime remains: `--renew-threshold`, in (0, 1).
    public let thresholdFraction: Double
    /// Renew at the latest this many seconds before the end time: `--renew-margin`.
    public let margin: UInt32
    /// A ticket is never renewed sooner than this many seconds (or half its lifetime) after its start.
    public let minimumInterval: UInt32
    /// The first delay after a failure, in seconds (at least 1).
    public let initialBackoff: UInt32
    /// The longest delay between attempts, in seconds.
    public let maximumBackoff: UInt32
    /// Whether renewable service tickets are renewed too, not only ticket-granting tickets.
    public let renewsServiceTickets: Bool

    /// The defaults: one third, five minutes, one minute, 10 s back-off doubling to 10 minutes.
    public static let defaultThreshold = 1.0 / 3.0
    public static let defaultMargin: UInt32 = 300

    public init(
        thresholdFraction: Double = RenewalPolicy.defaultThreshold, margin: UInt32 = RenewalPolicy.defaultMargin,
        minimumInterval: UInt32 = 60, initialBackoff: UInt32 = 10, maximumBackoff: UInt32 = 600,
        renewsServiceTickets: Bool = true
    ) throws(RenewalPolicyError) {
        guard thresholdFraction > 0, thresholdFraction < 1 else { throw .threshold(thresholdFraction) }
        guard initialBackoff >= 1 else { throw .initialBackoff(initialBackoff) }
        guard maximumBackoff >= initialBackoff else { throw .maximumBackoff(maximumBackoff, initial: initialBackoff) }
        self.thresholdFraction = thresholdFraction
        self.margin = margin
        self.minimumInterval = minimumInterval
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.renewsServiceTickets = renewsServiceTickets
    }

    /// When `ticket` should be renewed at `now` (KDC clock), given the failures since its last success.
    public func decide(_ ticket: RenewalTimes, now: UInt32, failure: RenewalFailureState? = nil) -> RenewalDecision {
        guard ticket.isRenewable else { return .never(.notRenewable) }
        guard ticket.ticketFlags & RenewalTimes.invalidFlag == 0 else { return .never(.invalid) }
        guard ticket.isTicketGrantingTicket || renewsServiceTickets else { return .never(.excluded) }
        let times = ticket.times
        guard now < times.endtime else { return .never(.expired) }
        // A KDC grants at most renew_till: a renewal could not extend the ticket.
        guard times.renewTill > times.endtime else { return .never(.renewTillReached) }

        let lifetime = times.lifetime
        let remainingAtThreshold = UInt32((Double(lifetime) * thresholdFraction).rounded(.down))
        let byThreshold = times.endtime - remainingAtThreshold
        let byMargin = times.endtime > margin ? times.endtime - margin : 0
        let earliestAge = max(1, min(minimumInterval, lifetime / 2))
        let earliest = times.start.addingReportingOverflow(earliestAge)
        var due = max(min(byThreshold, byMargin), earliest.overflow ? UInt32.max : earliest.partialValue)
        if let failure { due = max(due, failure.retryAt) }
        return .due(at: due)
    }

    /// The range a delay is drawn from after `failures` failures in a row (1 = the first).
    public func backoffRange(afterFailures failures: Int) -> ClosedRange<UInt32> {
        var delay = initialBackoff
        var doublings = max(0, failures - 1)
        while doublings > 0, delay < maximumBackoff {
            delay = delay > maximumBackoff / 2 ? maximumBackoff : delay * 2
            doublings -= 1
        }
        delay = min(delay, maximumBackoff)
        return max(1, delay / 2)...delay
    }

    /// The failure state after one more failure at `now` with `cause`; the delay comes from `random`.
    public func failed<R: RandomNumberGenerator>(
        after previous: RenewalFailureState?, cause: String, now: UInt32, using random: inout R
    ) -> RenewalFailureState {
        let failures = (previous?.consecutiveFailures ?? 0) + 1
        let delay = UInt32.random(in: backoffRange(afterFailures: failures), using: &random)
        let retry = now.addingReportingOverflow(delay)
        return RenewalFailureState(
            consecutiveFailures: failures, retryAt: retry.overflow ? .max : retry.partialValue, lastCause: cause)
    }
}
