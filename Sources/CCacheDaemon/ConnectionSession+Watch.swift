import CredentialStore
import KCM
import Synchronization
import SystemCalls

extension ConnectionSession {
    /// How a wait for a change ended (the answer of `receive`'s `waitForChange`).
    public enum Wake: Sendable {
        /// The beacon fired: the collection changed, look again.
        case changed
        /// The time passed.
        case timedOut
        /// The peer sent more before its answer: it gets the answer now.
        case peerSpoke
        /// The peer hung up: close the connection.
        case peerGone
    }

    /// The longest a CCACHED_WATCH waits, whatever the client asked: it just asks again.
    public static let maximumWatchMilliseconds: UInt32 = 300_000

    /// CCACHED_WATCH: the changes after `request.after` as soon as there are some, else the
    /// timeout reply once the (capped) timeout passed; nil when the peer left meanwhile. Holds the
    /// store lock only to look at the journal; between looks the thread sleeps in
    /// `waitForChange` on the beacon the next change fires.
    func awaitChange(
        _ request: KCMWatch.Request, waitForChange: (Int32?, Int32) -> Wake
    ) -> KCMWatch.Reply? {
        let state = self.state
        let timeout = UInt64(min(request.timeoutMilliseconds, Self.maximumWatchMilliseconds))
        let deadline = MonotonicClock.microseconds() / 1000 + timeout
        while true {
            // Taken before looking: a change after the look fires this beacon.
            let beacon = state.changes.beacon()
            if let reply = state.store.withLock({ $0.journal.watchReply(for: request) }) { return reply }
            let now = MonotonicClock.microseconds() / 1000
            guard now < deadline else { break }
            // Without a beacon (no descriptor left) the wait is a coarse re-check instead.
            let left = Int32(clamping: beacon == nil ? min(deadline - now, 1000) : deadline - now)
            let wake = withExtendedLifetime(beacon) { waitForChange(beacon?.fileDescriptor, left) }
            switch wake {
            case .changed: continue
            case .timedOut where beacon == nil && MonotonicClock.microseconds() / 1000 < deadline: continue
            case .timedOut: break
            case .peerSpoke: break
            case .peerGone: return nil
            }
            break
        }
        return state.store.withLock { $0.journal.timeoutReply(for: request) }
    }
}
