import Glibc
import SystemCalls
import Testing

@Suite("ConditionLock and Threads")
struct ConditionLockTests {
    /// What the threads of one test share, only with the lock held.
    final class Shared: @unchecked Sendable {
        let lock = ConditionLock(conditions: 2)
        var ready = false
        var done = false
    }

    @Test("a thread waiting on a condition wakes when another signals it, and reports back on another")
    func wakes() throws {
        let shared = Shared()
        try Threads.start(stackSize: 0) {
            shared.lock.withLock {
                while !shared.ready { shared.lock.wait(0) }
                shared.done = true
                shared.lock.signal(1)
            }
        }
        shared.lock.withLock {
            shared.ready = true
            shared.lock.signal(0)
        }
        // A bound, not a timing assertion: the worker answers at once. Only a signal ends the
        // wait before the deadline.
        let finished = shared.lock.withLock {
            let deadline = ConditionLock.deadline(afterSeconds: 10)
            while !shared.done {
                if !shared.lock.wait(1, until: deadline) { return false }
            }
            return true
        }
        #expect(finished)
    }

    @Test("a timed wait nobody signals returns false once its deadline passed")
    func timedWaitTimesOut() {
        let lock = ConditionLock()
        let woken = lock.withLock { lock.wait(until: ConditionLock.deadline(afterSeconds: 0)) }
        #expect(!woken)
    }

    @Test("a joinable thread runs its body and can be joined")
    func joinable() throws {
        let shared = Shared()
        let thread = try Threads.start(stackSize: 128 << 10, joinable: true) {
            shared.lock.withLock { shared.done = true }
        }
        #expect(pthread_join(thread, nil) == 0)
        #expect(shared.lock.withLock { shared.done })
    }
}
