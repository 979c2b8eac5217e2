import CSupport
import Glibc

/// Runs a closure on a thread of its own with a small stack. The event loop serves most
/// connections itself; one that must wait (a CCACHED_WATCH, a CCACHED_RENEW, a reply its socket
/// does not take at once) gets a thread here, so one slow client never delays another.
///
/// A thread whose connection ended parks for a while (at most `maximumParked` of them, each for
/// `parkSeconds`) and takes the next connection instead of exiting: creating a thread, faulting in
/// its stack and buffers and unmapping them again at exit cost more than a short connection's
/// requests. An idle daemon goes back to one thread.
enum ConnectionThread {
    /// The work handed to a thread. Run once, and let go of as it ends: a thread that parks keeps
    /// its `Body` until it exits, and what the closure captured (a connection, the credentials of
    /// a reply it had yet to send) must not live on with it.
    private final class Body {
        private var run: (() -> Void)?
        init(_ run: @escaping () -> Void) { self.run = run }

        func runOnce() {
            guard let run = run.take() else { return }
            run()
        }
    }

    /// At most this many finished threads wait for a connection; more exit at once.
    static let maximumParked = 4
    /// How long a finished thread waits for another connection before it exits.
    static let parkSeconds = 10

    /// The parked threads and the connections handed to them. A pthread mutex and condition, not
    /// Synchronization's Mutex: a parked thread must sleep with a deadline.
    private final class Pool: @unchecked Sendable {
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// Threads waiting in `park`.
        var parked = 0
        /// Connections handed over and not yet taken; never more than `parked`.
        var pending: [Body] = []

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
        pthread_mutex_unlock(pool.lock)
        let context = Unmanaged.passRetained(work).toOpaque()
        let result = ccached_spawn_thread(
            { raw in
                var next: Body? = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                while let work = next.take() {
                    work.runOnce()
                    next = ConnectionThread.park()
                }
                return nil
            }, context, stackSize)
        if result != 0 { Unmanaged<Body>.fromOpaque(context).release() }
        return result
    }

    /// Waits up to `parkSeconds` for a connection handed over by `start`; nil means exit.
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
