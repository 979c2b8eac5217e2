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
    // @unchecked Sendable: handed from one thread to another under `lock`, and run by one thread.
    private final class Work: @unchecked Sendable {
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

    // A condition lock, not Synchronization's Mutex: a parked thread sleeps with a deadline.
    private let lock = ConditionLock()
    /// Threads waiting in `park`.
    private var parked = 0
    /// Work handed over and not yet taken; never more than `parked`.
    private var pending: [Work] = []
    /// Threads started so far.
    private var created = 0

    public init(maximumParked: Int, parkSeconds: Int) {
        self.maximumParked = maximumParked
        self.parkSeconds = parkSeconds
    }

    // The pools live as long as the process (static lets): nothing to tear down.

    /// Runs `body` on a parked thread if one is free, else on a new detached one with a stack of
    /// `stackSize` bytes. Returns 0 or the errno of `pthread_create`.
    public func start(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Int32 {
        let work = Work(body)
        let handedOver = lock.withLock {
            guard parked <= pending.count else {
                pending.append(work)
                lock.signal()
                return true
            }
            created += 1
            return false
        }
        if handedOver { return 0 }
        do throws(Errno) {
            try Threads.start(stackSize: stackSize) { [self] in
                var next: Work? = work
                while let work = next.take() {
                    work.runOnce()
                    next = park()
                }
            }
            return 0
        } catch {
            return error.rawValue
        }
    }

    /// How many threads were created so far.
    public var createdCount: Int { lock.withLock { created } }

    /// Waits up to `parkSeconds` for work handed over by `start`; nil means exit.
    private func park() -> Work? {
        lock.withLock {
            guard parked < maximumParked else { return nil }
            parked += 1
            defer { parked -= 1 }
            let deadline = ConditionLock.deadline(afterSeconds: parkSeconds)
            while pending.isEmpty {
                if !lock.wait(until: deadline) && pending.isEmpty { return nil }
            }
            return pending.removeFirst()
        }
    }
}
