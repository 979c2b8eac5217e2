import Glibc
import KCM
import SystemCalls

/// Decides which tickets are due and renews them on one worker thread of its own, never on the
/// caller's thread and never with the caller's store lock held.
///
/// The daemon drives it: ``tick(now:candidates:)`` with a snapshot of its tickets (taken under the
/// store lock, then released) whenever the returned time comes or the collection changed. Each result
/// goes to `apply`, always on the worker thread and never during a call into the scheduler, so
/// `apply` may take the store lock: for ``RenewalResult/Outcome/renewed(_:)`` it replaces exactly that
/// credential and returns whether it did; other outcomes are for the log (the return value is
/// ignored).
// @unchecked Sendable: `state` and `thread` are only read or written with `signal`'s mutex held.
public final class RenewalScheduler: @unchecked Sendable {
    private struct Key: Hashable {
        let cache: KCMUUID
        let credential: KCMUUID
    }

    private struct CredentialState {
        var failure: RenewalFailureState?
        var reportedStop: RenewalStopReason?
        var permanentError: RenewalError?
        var inFlight = false
    }

    /// A RENEW request: its results so far, and whom to tell when its last renewal is done.
    private final class Batch {
        var results: [KCMRenew.CacheResult] = []
        let completion: @Sendable ([KCMRenew.CacheResult]) -> Void
        init(completion: @escaping @Sendable ([KCMRenew.CacheResult]) -> Void) { self.completion = completion }

        func note(_ name: KCMCacheName, _ update: (inout KCMRenew.CacheResult) -> Void) {
            if let index = results.firstIndex(where: { $0.cacheName == name }) {
                update(&results[index])
            } else {
                var result = KCMRenew.CacheResult(cacheName: name, outcome: .nothingToRenew)
                update(&result)
                results.append(result)
            }
        }
    }

    private enum Job {
        case renew(RenewalCandidate, Batch?)
        case report(RenewalResult)
        case finish(Batch)
    }

    private struct State {
        var credentials: [Key: CredentialState] = [:]
        var caches: [KCMUUID: CacheRenewalState] = [:]
        var queue: [Job] = []
        var busy = false
        var stopping = false
        var renewed: UInt64 = 0
        var failed: UInt64 = 0
        var random: AnyRandom
    }

    private struct AnyRandom: RandomNumberGenerator {
        var base: any RandomNumberGenerator
        mutating func next() -> UInt64 { base.next() }
    }

    public let policy: RenewalPolicy
    private let renewer: any CredentialRenewing
    private let clock: @Sendable () -> UInt32
    private let apply: @Sendable (RenewalResult) -> Bool
    private let signal = WorkerSignal()
    /// Held by the worker around each `apply`, and taken once by ``shutdown()``: after shutdown
    /// returns, `apply` is never running and never called again.
    private let applyGate = WorkerSignal()
    private var state: State
    private var thread: pthread_t?
    /// The worker's stack: libkrb5 and the resolver need more than a connection thread.
    private let stackSize: Int

    /// `clock` is the local time in Unix seconds (the worker's, for failure times); `random` draws
    /// the back-off jitter.
    public init(
        policy: RenewalPolicy, renewer: any CredentialRenewing = KerberosRenewer(),
        clock: @escaping @Sendable () -> UInt32 = { UInt32(clamping: time(nil)) },
        random: any RandomNumberGenerator = SystemRandomNumberGenerator(), stackSize: Int = 1 << 20,
        apply: @escaping @Sendable (RenewalResult) -> Bool
    ) {
        self.policy = policy
        self.renewer = renewer
        self.clock = clock
        self.apply = apply
        self.stackSize = stackSize
        state = State(random: AnyRandom(base: random))
    }

    deinit { shutdown() }

    // MARK: - Driving

    /// Looks at every candidate at `now` (local clock, Unix seconds), queues the due ones for the
    /// worker and returns when to tick next (nil = nothing will become due by itself). Returns at once.
    /// `candidates` is the whole collection's snapshot: the state of caches not in it is forgotten.
    @discardableResult
    public func tick(now: UInt32, candidates: [RenewalCandidate]) -> UInt32? {
        signal.withLock {
            var next: UInt32?
            var present = Set<Key>()
            var presentCaches = Set<KCMUUID>()
            for candidate in candidates where !presentCaches.contains(candidate.cacheUUID) {
                presentCaches.insert(candidate.cacheUUID)
                var cache = state.caches[candidate.cacheUUID] ?? CacheRenewalState(cacheName: candidate.cacheName)
                cache.nextDue = nil
                cache.note = nil
                cache.consecutiveFailures = 0
                state.caches[candidate.cacheUUID] = cache
            }
            for candidate in candidates {
                let key = Key(cache: candidate.cacheUUID, credential: candidate.credentialUUID)
                present.insert(key)
                var credential = state.credentials[key] ?? CredentialState()
                defer { state.credentials[key] = credential }
                var cache = state.caches[candidate.cacheUUID]!
                defer { state.caches[candidate.cacheUUID] = cache }
                cache.consecutiveFailures = max(cache.consecutiveFailures, credential.failure?.consecutiveFailures ?? 0)
                if credential.inFlight {
                    cache.nextDue = now
                    continue
                }
                if let error = credential.permanentError {
                    if cache.nextDue == nil { cache.note = "not renewed: \(error.message)" }
                    continue
                }
                let localOffset = Int64(candidate.kdcTime(now)) - Int64(now)
                switch policy.decide(candidate.times, now: candidate.kdcTime(now), failure: credential.failure) {
                case .never(let reason):
                    if cache.nextDue == nil, reason != .notRenewable || cache.note == nil {
                        cache.note = reason.rawValue
                    }
                    if reason != .notRenewable, credential.reportedStop != reason {
                        credential.reportedStop = reason
                        state.queue.append(.report(RenewalResult(candidate: candidate, outcome: .stopped(reason))))
                    }
                case .due(let at):
                    let local = UInt32(clamping: Int64(at) - localOffset)
                    cache.note = nil
                    cache.nextDue = min(cache.nextDue ?? local, max(local, now))
                    if local <= now {
                        credential.inFlight = true
                        state.queue.append(.renew(candidate, nil))
                    } else {
                        next = min(next ?? local, local)
                    }
                }
            }
            // Forget tickets and caches that are gone (renewed in place, removed, destroyed).
            state.credentials = state.credentials.filter { present.contains($0.key) || $0.value.inFlight }
            state.caches = state.caches.filter { presentCaches.contains($0.key) }
            startWorkerIfNeeded()
            return next
        }
    }

    /// RENEW: renews every renewable ticket among `candidates` now, whatever its due time or back-off,
    /// and calls `completion` on the worker thread with one result per cache once all of them are
    /// done: first the caches of `cacheNames` in that order (those without a candidate answer
    /// "no renewable ticket"), then any other cache of the candidates.
    public func renewNow(
        _ candidates: [RenewalCandidate], cacheNames: [KCMCacheName] = [], now: UInt32,
        completion: @escaping @Sendable ([KCMRenew.CacheResult]) -> Void
    ) {
        signal.withLock {
            let batch = Batch(completion: completion)
            for name in cacheNames { batch.note(name) { _ in } }
            for candidate in candidates {
                let key = Key(cache: candidate.cacheUUID, credential: candidate.credentialUUID)
                var credential = state.credentials[key] ?? CredentialState()
                if case .never(let reason) = policy.decide(candidate.times, now: candidate.kdcTime(now)) {
                    batch.note(candidate.cacheName) { result in
                        if result.message.isEmpty || reason != .notRenewable { result.message = reason.rawValue }
                    }
                    continue
                }
                if credential.inFlight {
                    batch.note(candidate.cacheName) { $0.message = "a renewal was already under way" }
                    continue
                }
                credential.inFlight = true
                credential.permanentError = nil
                state.credentials[key] = credential
                batch.note(candidate.cacheName) { _ in }
                state.queue.append(.renew(candidate, batch))
            }
            state.queue.append(.finish(batch))
            startWorkerIfNeeded()
        }
    }

    // MARK: - State

    /// Per cache, by cache UUID: what `ccachectl list -v` shows.
    public var cacheStates: [KCMUUID: CacheRenewalState] { signal.withLock { state.caches } }

    /// The worker's state for `ccachectl status`.
    public var workerStatus: KCMRenewalState.Worker {
        signal.withLock {
            KCMRenewalState.Worker(
                enabled: true, busy: state.busy,
                queued: UInt32(clamping: state.queue.count { if case .renew = $0 { true } else { false } }),
                renewed: state.renewed, failed: state.failed)
        }
    }

    /// Blocks until the queue is empty and the worker idle (for tests and orderly shutdown).
    public func waitUntilIdle() {
        signal.withLock {
            while !state.queue.isEmpty || state.busy { signal.waitForIdle() }
        }
    }

    /// Stops the worker; queued work is dropped and `apply` is not called again. Returns at once
    /// even while a renewal talks to an unreachable KDC (libkrb5 gives up on a silent one after
    /// about 27 s): that thread is detached, drops its result and exits by itself. The worker keeps
    /// the scheduler alive, so the daemon calls this when it stops — without its store lock held,
    /// since an `apply` in progress is waited for.
    public func shutdown() {
        let (worker, busy): (pthread_t?, Bool) = signal.withLock {
            state.stopping = true
            state.queue.removeAll()
            signal.signalWork()
            defer { thread = nil }
            return (thread, state.busy)
        }
        applyGate.withLock {}
        guard let worker, pthread_equal(worker, pthread_self()) == 0 else { return }
        if busy {
            pthread_detach(worker)
        } else {
            pthread_join(worker, nil)
        }
    }

    // MARK: - The worker

    /// With the lock held.
    private func startWorkerIfNeeded() {
        guard !state.queue.isEmpty else { return }
        if thread == nil, !state.stopping {
            do throws(Errno) {
                // Joinable: stop() joins an idle worker.
                thread = try Threads.start(stackSize: stackSize, joinable: true) { [self] in runWorker() }
            } catch {
                // No worker: the renewals cannot run. They back off like failures; a RENEW request
                // is answered at once, on this thread (the only case where completion runs here).
                failQueued(RenewalError(message: "cannot start the renewal thread: \(error.message)"))
                return
            }
        }
        signal.signalWork()
    }

    /// With the lock held: turns queued renewals into back-offs when no worker can run them.
    private func failQueued(_ error: RenewalError) {
        let now = clock()
        for job in state.queue {
            guard case .renew(let candidate, _) = job else { continue }
            let key = Key(cache: candidate.cacheUUID, credential: candidate.credentialUUID)
            var credential = state.credentials[key] ?? CredentialState()
            credential.inFlight = false
            credential.failure = policy.failed(
                after: credential.failure, cause: error.message, now: candidate.kdcTime(now), using: &state.random)
            state.credentials[key] = credential
            state.caches[candidate.cacheUUID]?.lastError = error.message
        }
        let batches = state.queue.compactMap { job -> Batch? in if case .finish(let batch) = job { batch } else { nil }
        }
        state.queue.removeAll()
        for batch in batches {
            for index in batch.results.indices where batch.results[index].outcome != .renewed {
                batch.results[index].outcome = .failed
                batch.results[index].message = error.message
            }
            batch.completion(batch.results)
        }
    }

    private func runWorker() {
        while true {
            let job: Job? = signal.withLock {
                while state.queue.isEmpty && !state.stopping { signal.waitForWork() }
                if state.stopping { return nil }
                state.busy = true
                return state.queue.removeFirst()
            }
            guard let job else { break }
            run(job)
            signal.withLock {
                state.busy = false
                if state.queue.isEmpty { signal.signalIdle() }
            }
        }
        signal.withLock {
            state.busy = false
            signal.signalIdle()
        }
    }

    private func run(_ job: Job) {
        switch job {
        case .report(let result):
            _ = deliver(result)
        case .finish(let batch):
            let results = signal.withLock {
                batch.results.map { result in
                    var result = result
                    if result.outcome == .nothingToRenew, result.message.isEmpty {
                        result.message = "no renewable ticket"
                    }
                    return result
                }
            }
            batch.completion(results)
        case .renew(let candidate, let batch):
            let key = Key(cache: candidate.cacheUUID, credential: candidate.credentialUUID)
            let outcome = renewer.renew(candidate.credential, kdcOffset: candidate.kdcOffset)
            switch outcome {
            case .success(let renewed):
                guard let applied = deliver(RenewalResult(candidate: candidate, outcome: .renewed(renewed))) else {
                    return
                }
                let now = clock()
                signal.withLock {
                    state.credentials[key] = CredentialState()
                    if applied {
                        state.renewed += 1
                        state.caches[candidate.cacheUUID]?.lastRenewal = now
                        state.caches[candidate.cacheUUID]?.lastError = nil
                    }
                    batch?.note(candidate.cacheName) { result in
                        if applied {
                            result.renewedCount += 1
                            result.endtime = max(result.endtime, renewed.times.endtime)
                            if result.failedCount == 0 { result.outcome = .renewed }
                        } else if result.message.isEmpty {
                            result.message = "the ticket changed while it was renewed; the newer one was kept"
                        }
                    }
                }
            case .failure(let error):
                let now = clock()
                let report: RenewalResult = signal.withLock {
                    var credential = state.credentials[key] ?? CredentialState()
                    let firstOfCause = credential.failure?.lastCause != error.message
                    credential.inFlight = false
                    var retryAt: UInt32?
                    if error.isPermanent {
                        credential.permanentError = error
                    } else {
                        let failure = policy.failed(
                            after: credential.failure, cause: error.message, now: candidate.kdcTime(now),
                            using: &state.random)
                        credential.failure = failure
                        retryAt = UInt32(
                            clamping: Int64(failure.retryAt) - (Int64(candidate.kdcTime(now)) - Int64(now)))
                    }
                    state.credentials[key] = credential
                    state.failed += 1
                    state.caches[candidate.cacheUUID]?.lastError = error.message
                    batch?.note(candidate.cacheName) { result in
                        result.failedCount += 1
                        result.outcome = .failed
                        if result.message.isEmpty || result.failedCount == 1 { result.message = error.message }
                    }
                    return RenewalResult(
                        candidate: candidate, outcome: .failed(error, firstOfCause: firstOfCause, retryAt: retryAt))
                }
                _ = deliver(report)
            }
        }
    }

    /// Calls `apply` unless the scheduler was stopped meanwhile (nil then): the daemon may be tearing
    /// its store down.
    private func deliver(_ result: RenewalResult) -> Bool? {
        applyGate.withLock {
            guard !signal.withLock({ state.stopping }) else { return nil }
            return apply(result)
        }
    }
}
