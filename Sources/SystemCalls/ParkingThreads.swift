import Glibc

/// Runs closures on threads of their own with a small stack, reusing finished threads: a thread
/// whose work ended parks for a while (at most `maximumParked` of them, each for `parkSeconds`)
/// and takes the next closure instead of exiting, because creating a thread, faulting in its stack
/// and unmapping it again cost more than the short work it is given (a connection's requests, a
/// routing). A closure that comes while every parked thread is busy still gets a new thread: no
/// work ever waits for another's. An idle process goes back to no extra thread.
///
/// The daemon's connection threads and the door's routing threads are two pools of this kind.
public final class ParkingThreads: @unchecked Sendable {
    // @unchecked: every field below is read and written only with `lock` held.

    /// The work handed to a thread. Run once and let go of as it ends: a thread that parks keeps its
    /// `Work` until it takes the next, and what the closure captured (a connection, the credentials
    /// of a reply it had yet to send) must not live on with it.
    private final class Work {
        private var run: (() -> Void)?
        init(_ run: @escaping () -> Void) { self.run = run }

        func runOnce() {
            guard let run = run.take() else { return }
            run()
        }
    }

    /// At most this many finished threads wait for work; more exit at once.
    public let maximumParked: Int
    /// How long a finished thread waits for work before it exits.
    public let parkSeconds: Int

    // A pthread mutex and condition, not Synchronization's Mutex: a parked thread sleeps with a
    // deadline.
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Threads waiting in `park`.
    private var parked = 0
    /// Work handed over and not yet taken; never more than `parked`.
    private var pending: [Work] = []
    /// Threads started so far.
    private var created = 0

    public init(maximumParked: Int, parkSeconds: Int) {
        self.maximumParked = maximumParked
        self.parkSeconds = parkSeconds
        pthread_mutex_init(lock, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(wake, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    // The pools live as long as the process (static lets): nothing to tear down.

    /// Runs `body` on a parked thread if one is free, else on a new detached one with a stack of
    /// `stackSize` bytes. Returns 0 or the errno of `pthread_create`.
    public func start(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Int32 {
        let work = Work(body)
        pthread_mutex_lock(lock)
        if parked > pending.count {
            pending.append(work)
            pthread_cond_signal(wake)
            pthread_mutex_unlock(lock)
            return 0
        }
        created += 1
        pthread_mutex_unlock(lock)
        let context = Unmanaged.passRetained(Started(pool: self, first: work)).toOpaque()
        var attributes = pthread_attr_t()
        var result = pthread_attr_init(&attributes)
        guard result == 0 else {
            Unmanaged<Started>.fromOpaque(context).release()
            return result
        }
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        if stackSize > 0 { pthread_attr_setstacksize(&attributes, stackSize) }
        var thread = pthread_t()
        result = pthread_create(
            &thread, &attributes,
            { raw in
                let started = Unmanaged<Started>.fromOpaque(raw!).takeRetainedValue()
                var next: Work? = started.first
                let pool = started.pool
                while let work = next.take() {
                    work.runOnce()
                    next = pool.park()
                }
                return nil
            }, context)
        if result != 0 { Unmanaged<Started>.fromOpaque(context).release() }
        return result
    }

    /// How many threads were created so far.
    public var createdCount: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return created
    }

    /// What a new thread starts with.
    private final class Started {
        let pool: ParkingThreads
        let first: Work
        init(pool: ParkingThreads, first: Work) {
            self.pool = pool
            self.first = first
        }
    }

    /// Waits up to `parkSeconds` for work handed over by `start`; nil means exit.
    private func park() -> Work? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        guard parked < maximumParked else { return nil }
        parked += 1
        defer { parked -= 1 }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += parkSeconds
        while pending.isEmpty {
            if pthread_cond_timedwait(wake, lock, &deadline) == ETIMEDOUT && pending.isEmpty {
                return nil
            }
        }
        return pending.removeFirst()
    }
}
