import Glibc

/// A pthread mutex with condition variables, for a thread that must sleep, without using CPU,
/// until another says so or a deadline passes: what Synchronization's `Mutex` cannot do. The
/// conditions are numbered from 0 (`conditions` of them, all on the lock's one mutex); timed waits
/// use `CLOCK_MONOTONIC`. The one mutex-and-condition wrapper of every module.
// @unchecked Sendable: the pthread objects live at fixed heap addresses for the object's life and
// are only used through pthread calls, which are thread-safe by definition.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conditions: UnsafeMutablePointer<pthread_cond_t>
    private let count: Int

    public init(conditions: Int = 1) {
        precondition(conditions > 0)
        count = conditions
        self.conditions = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: conditions)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        for index in 0..<conditions { pthread_cond_init(self.conditions + index, &attributes) }
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        for index in 0..<count { pthread_cond_destroy(conditions + index) }
        pthread_mutex_destroy(mutex)
        conditions.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the lock held.
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// With the lock held: releases it and sleeps until `condition` is signalled (or, rarely, for
    /// no reason: test what is waited for in a loop), then holds it again.
    public func wait(_ condition: Int = 0) {
        pthread_cond_wait(conditions + condition, mutex)
    }

    /// The moment `seconds` from now on the clock of timed waits (`CLOCK_MONOTONIC`).
    public static func deadline(afterSeconds seconds: Int) -> timespec {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += seconds
        return deadline
    }

    /// As ``wait(_:)``, but at most until `deadline` (``deadline(afterSeconds:)``). False when it
    /// passed.
    public func wait(_ condition: Int = 0, until deadline: timespec) -> Bool {
        var deadline = deadline
        return pthread_cond_timedwait(conditions + condition, mutex, &deadline) != ETIMEDOUT
    }

    /// Wakes one thread waiting on `condition` (call with the lock held).
    public func signal(_ condition: Int = 0) { pthread_cond_signal(conditions + condition) }

    /// Wakes every thread waiting on `condition` (call with the lock held).
    public func broadcast(_ condition: Int = 0) { pthread_cond_broadcast(conditions + condition) }
}
