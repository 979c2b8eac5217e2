import CSupport
import Glibc

/// Runs a closure on a thread of its own with a small stack: one per connection being routed, so
/// a slow daemon start (or a daemon slow to answer the hand-off) for one user never holds up
/// another.
///
/// A thread whose routing ended parks for a while (at most ``maximumParked`` of them, each for
/// ``parkSeconds``) and takes the next connection instead of exiting: creating a thread and
/// unmapping its stack again cost more than routing a connection from the cache. So under a steady
/// stream of connections no thread is created per connection, and an idle door goes back to its
/// accept thread alone. A connection that comes while every parked thread is busy still gets a new
/// thread: no connection ever waits for another's routing.
enum DoorThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// At most this many finished threads wait for a connection; more exit at once.
    static let maximumParked = 8
    /// How long a finished thread waits for another connection before it exits.
    static let parkSeconds = 10

    /// The parked threads and the work handed to them. A pthread mutex and condition: a parked
    /// thread sleeps with a deadline.
    private final class Pool: @unchecked Sendable {
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// Threads waiting in `park`.
        var parked = 0
        /// Work handed over and not yet taken; never more than `parked`.
        var pending: [Body] = []
        /// Threads started so far (for tests and the log).
        var created = 0

        init() {
            pthread_mutex_init(lock, nil)
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
            pthread_cond_init(wake, &attributes)
            pthread_condattr_destroy(&attributes)
        }
    }

    private static let pool = Pool()

    /// Runs `body` on a parked thread if one is free, else on a new one. Returns 0 or the errno of
    /// `pthread_create`.
    static func start(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Int32 {
        let work = Body(body)
        pthread_mutex_lock(pool.lock)
        if pool.parked > pool.pending.count {
            pool.pending.append(work)
            pthread_cond_signal(pool.wake)
            pthread_mutex_unlock(pool.lock)
            return 0
        }
        pool.created += 1
        pthread_mutex_unlock(pool.lock)
        let context = Unmanaged.passRetained(work).toOpaque()
        let result = ccached_spawn_thread(
            { raw in
                var next: Body? = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                while let work = next {
                    work.run()
                    next = DoorThread.park()
                }
                return nil
            }, context, stackSize)
        if result != 0 { Unmanaged<Body>.fromOpaque(context).release() }
        return result
    }

    /// How many threads were created so far.
    static var createdCount: Int {
        pthread_mutex_lock(pool.lock)
        defer { pthread_mutex_unlock(pool.lock) }
        return pool.created
    }

    /// Waits up to `parkSeconds` for work handed over by `start`; nil means exit.
    private static func park() -> Body? {
        pthread_mutex_lock(pool.lock)
        defer { pthread_mutex_unlock(pool.lock) }
        guard pool.parked < maximumParked else { return nil }
        pool.parked += 1
        defer { pool.parked -= 1 }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += parkSeconds
        while pool.pending.isEmpty {
            if pthread_cond_timedwait(pool.wake, pool.lock, &deadline) == ETIMEDOUT && pool.pending.isEmpty {
                return nil
            }
        }
        return pool.pending.removeFirst()
    }
}
