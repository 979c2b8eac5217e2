import Glibc
import KCM

/// Where a CCACHED_RENEW request's connection thread sleeps until the renewal worker has done its
/// batch: a pthread mutex and condition, so the wait costs no CPU however long the KDC takes.
// @unchecked Sendable: `results` is only read or written with `mutex` held; the pthread objects live
// at fixed heap addresses for the object's life.
final class RenewalCompletion: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var results: [KCMRenew.CacheResult]?

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(finished, nil)
    }

    deinit {
        pthread_cond_destroy(finished)
        pthread_mutex_destroy(mutex)
        finished.deallocate()
        mutex.deallocate()
    }

    /// Called once, by the worker (or at once when no worker can start).
    func finish(_ value: [KCMRenew.CacheResult]) {
        pthread_mutex_lock(mutex)
        results = value
        pthread_cond_broadcast(finished)
        pthread_mutex_unlock(mutex)
    }

    /// Blocks until ``finish(_:)``.
    func wait() -> [KCMRenew.CacheResult] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while results == nil { pthread_cond_wait(finished, mutex) }
        return results ?? []
    }
}
