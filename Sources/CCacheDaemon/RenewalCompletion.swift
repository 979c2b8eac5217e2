import KCM
import SystemCalls

/// Where a CCACHED_RENEW request's connection thread sleeps until the renewal worker has done its
/// batch: a ``ConditionLock``, so the wait costs no CPU however long the KDC takes.
// @unchecked Sendable: `results` is only read or written with `lock` held.
final class RenewalCompletion: @unchecked Sendable {
    private let lock = ConditionLock()
    private var results: [KCMRenew.CacheResult]?

    /// Called once, by the worker (or at once when no worker can start).
    func finish(_ value: [KCMRenew.CacheResult]) {
        lock.withLock {
            results = value
            lock.broadcast()
        }
    }

    /// Blocks until ``finish(_:)``.
    func wait() -> [KCMRenew.CacheResult] {
        lock.withLock {
            while results == nil { lock.wait() }
            return results ?? []
        }
    }
}
