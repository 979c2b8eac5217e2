import Glibc
import Synchronization
import SystemCalls

/// One start at a time per (uid, session): concurrent first connections of a session wait for the
/// one that starts the daemon instead of starting their own. (The daemon's own "already running"
/// check — it never displaces a live socket — covers a second door or a client-started daemon.)
///
/// Waiting is bounded by the caller's deadline; the table holds only keys being started right now,
/// so it stays empty between starts however many connections come and go.
package final class StartGate: Sendable {
    package struct Key: Hashable, Sendable {
        package let uid: UInt32
        package let session: String
        package init(uid: UInt32, session: String) {
            self.uid = uid
            self.session = session
        }
    }

    private let busy = Mutex<Set<Key>>([])

    package init() {}

    /// How many keys are being started now (for tests and status).
    package var count: Int { busy.withLock { $0.count } }

    /// Runs `body` holding `key`; nil when the key stayed held by another thread past `deadline`
    /// (monotonic milliseconds).
    package func withKey<R>(_ key: Key, deadline: Int64, _ body: () throws(DoorError) -> R) throws(DoorError) -> R? {
        while !busy.withLock({ $0.insert(key).inserted }) {
            guard Int64(MonotonicClock.milliseconds()) < deadline else { return nil }
            usleep(10_000)
        }
        defer { _ = busy.withLock { $0.remove(key) } }
        return try body()
    }
}
