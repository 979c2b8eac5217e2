import CredentialStore
import Glibc
import KCM
import Logging
import Synchronization
import TicketRenewal

/// The daemon's side of ticket renewal: feeds the ``RenewalScheduler`` a snapshot of the store from
/// the main loop's tick, applies what its worker renews, and answers CCACHED_RENEW and
/// CCACHED_RENEWAL_STATE.
///
/// Nothing here talks to a KDC: the scheduler's worker does, with no lock of the daemon held. The
/// store lock is taken only to snapshot the candidates (their bytes are shared, not copied) and to
/// replace a renewed ticket.
public final class RenewalDuty: Sendable {
    /// Whether tickets are renewed in the background (`--renew`); RENEW works either way.
    public let isEnabled: Bool
    let scheduler: RenewalScheduler
    /// The state whose store the worker's results go to. Set once by ``DaemonState``'s init, before
    /// any worker can exist; weak, since the state owns this duty.
    private let target: Target
    /// The journal counter of the last snapshot, and when the scheduler asked to be ticked next.
    private let schedule = Mutex<(counter: UInt64?, next: UInt32?)>((nil, nil))
    /// Set by every result the worker delivers: a failure moves no journal counter, yet its back-off
    /// must be scheduled.
    private let resultArrived = Atomic<Bool>(false)

    private final class Target: @unchecked Sendable {
        // @unchecked: written once in DaemonState.init, before the worker thread can start.
        weak var state: DaemonState?
    }

    init(configuration: DaemonConfiguration, logger: Logger) {
        isEnabled = configuration.renewsInBackground
        let target = Target()
        self.target = target
        scheduler = RenewalScheduler(policy: configuration.renewalPolicy) { [target] result in
            Self.log(result, logger: logger)
            guard let state = target.state else { return false }
            state.renewal.resultArrived.store(true, ordering: .relaxed)
            let applied = state.store.withLock { store in
                let applied = result.apply(to: store)
                if applied { state.saveState(of: store) }
                return applied
            }
            if applied { state.changes.notify() }
            return applied
        }
    }

    func attach(to state: DaemonState) { target.state = state }

    private static func log(_ result: RenewalResult, logger: Logger) {
        guard let (level, message) = logged(result) else { return }
        logger.log(level: level, "\(message)")
    }

    /// The level and text a result is logged with, or nil when it is not logged. The line names the
    /// cache and the ticket's server, both a client's text (any bytes a STORE carried), which
    /// EscapingLogHandler escapes on the way out.
    static func logged(_ result: RenewalResult) -> (level: Logger.Level, message: String)? {
        guard let line = result.logLine else { return nil }
        let level: Logger.Level =
            switch result.outcome {
            case .renewed: .info
            case .failed: .warning
            case .stopped: .notice
            }
        return (level, line)
    }

    /// From the main loop, about once a second: hands the scheduler a new snapshot when the
    /// collection changed, a result arrived, or the time it asked for came. Otherwise costs one
    /// lock to read the journal counter.
    func tick(store: borrowing Mutex<CredentialStore>, now: UInt32) {
        guard isEnabled else { return }
        let counter = store.withLock { $0.journal.counter }
        let arrived = resultArrived.exchange(false, ordering: .relaxed)
        let due = schedule.withLock { schedule in
            arrived || schedule.counter != counter || schedule.next.map { $0 <= now } ?? false
        }
        guard due else { return }
        let (candidates, snapshotCounter) = store.withLock { ($0.renewalCandidates(), $0.journal.counter) }
        let next = scheduler.tick(now: now, candidates: candidates)
        schedule.withLock { $0 = (snapshotCounter, next) }
    }

    /// CCACHED_RENEW: renews now on the worker and waits for it (this is a connection's thread,
    /// and the store lock is not held). A cache that does not exist is `noSuchCache`.
    func renewNow(_ request: KCMRenew.Request, store: borrowing Mutex<CredentialStore>) throws(RequestFailure)
        -> KCMRenew.Reply
    {
        let snapshot = store.withLock { store -> Result<([RenewalCandidate], [KCMCacheName]), CredentialStoreError> in
            if let name = request.cacheName {
                do throws(CredentialStoreError) {
                    _ = try store.cache(named: name)
                } catch {
                    return .failure(error)
                }
                return .success((store.renewalCandidates(in: name), [name]))
            }
            let names = store.cacheUUIDs.compactMap { try? store.cacheName(uuid: $0) }
            return .success((store.renewalCandidates(), names))
        }
        let (candidates, names): ([RenewalCandidate], [KCMCacheName])
        switch snapshot {
        case .success(let value): (candidates, names) = value
        case .failure(let error): throw .store(error)
        }
        let done = RenewalCompletion()
        scheduler.renewNow(candidates, cacheNames: names, now: UInt32(clamping: time(nil))) { done.finish($0) }
        return KCMRenew.Reply(results: done.wait())
    }

    /// CCACHED_RENEWAL_STATE for `store` (whose lock the caller holds): the worker, and every cache
    /// that holds tickets, in the collection's order.
    func state(of store: CredentialStore) -> KCMRenewalState {
        var worker = scheduler.workerStatus
        worker.enabled = isEnabled
        let states = isEnabled ? scheduler.cacheStates : [:]
        var caches: [KCMRenewalState.Cache] = []
        for uuid in store.cacheUUIDs {
            guard let name = try? store.cacheName(uuid: uuid), let cache = try? store.cache(named: name),
                !cache.credentials.isEmpty
            else { continue }
            if let state = states[uuid] {
                caches.append(state.wire)
            } else {
                let note = isEnabled ? RenewalStopReason.notRenewable.rawValue : "renewal off (--no-renew)"
                caches.append(KCMRenewalState.Cache(cacheName: name, note: note))
            }
        }
        return KCMRenewalState(worker: worker, caches: caches)
    }

    /// Stops the worker; call without the store lock held (an `apply` in progress is waited for).
    /// The daemon does as it exits; whoever else makes a ``DaemonState`` (the fuzz target, once per
    /// input) must too, since a started worker keeps its scheduler, and its thread, alive.
    public func shutdown() { scheduler.shutdown() }
}
