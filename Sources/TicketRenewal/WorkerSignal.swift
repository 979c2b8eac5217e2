import Glibc

/// A pthread mutex with two condition variables: the renewal queue's lock, "work arrived" and "the
/// worker went idle". The scheduler's state is only touched with it held.
// @unchecked Sendable: the pthread objects live at fixed heap addresses for the object's life and
// are only used through pthread calls, which are thread-safe by definition.
final class WorkerSignal: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let work = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let idle = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(work, nil)
        pthread_cond_init(idle, nil)
    }

    deinit {
        pthread_cond_destroy(idle)
        pthread_cond_destroy(work)
        pthread_mutex_destroy(mutex)
        idle.deallocate()
        work.deallocate()
        mutex.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// With the lock held: sleeps until ``signalWork()`` (no CPU while waiting).
    func waitForWork() { pthread_cond_wait(work, mutex) }
    /// With the lock held: sleeps until ``signalIdle()``.
    func waitForIdle() { pthread_cond_wait(idle, mutex) }
    func signalWork() { pthread_cond_signal(work) }
    func signalIdle() { pthread_cond_broadcast(idle) }
}
