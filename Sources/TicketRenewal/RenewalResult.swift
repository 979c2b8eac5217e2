import KCM

/// What the worker hands the daemon's `apply` closure for one credential.
public struct RenewalResult: Sendable {
    public enum Outcome: Sendable {
        /// The KDC renewed the ticket: replace exactly ``RenewalResult/candidate``'s credential
        /// (cache UUID + credential UUID, only if it still holds the original bytes) with this one.
        case renewed(KCMCredential)
        /// The renewal failed. `firstOfCause` is true the first time this message is seen for this
        /// credential (log it then, not again); `retryAt` is the next attempt (local clock, Unix
        /// seconds), nil when it will not be retried.
        case failed(RenewalError, firstOfCause: Bool, retryAt: UInt32?)
        /// The credential will not be renewed any more (reported once per credential and reason).
        case stopped(RenewalStopReason)
    }

    public let candidate: RenewalCandidate
    public let outcome: Outcome

    public init(candidate: RenewalCandidate, outcome: Outcome) {
        self.candidate = candidate
        self.outcome = outcome
    }
}
