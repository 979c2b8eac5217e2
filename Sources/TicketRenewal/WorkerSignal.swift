import SystemCalls

/// The renewal queue's lock with its two conditions, "work arrived" and "the worker went idle" (a
/// ``ConditionLock``). The scheduler's state is only touched with it held.
struct WorkerSignal: Sendable {
    private let lock = ConditionLock(conditions: 2)
    private static let work = 0
    private static let idle = 1

    func withLock<R>(_ body: () -> R) -> R { lock.withLock(body) }

    /// With the lock held: sleeps until ``signalWork()`` (no CPU while waiting).
    func waitForWork() { lock.wait(Self.work) }
    /// With the lock held: sleeps until ``signalIdle()``.
    func waitForIdle() { lock.wait(Self.idle) }
    func signalWork() { lock.signal(Self.work) }
    func signalIdle() { lock.broadcast(Self.idle) }
}
