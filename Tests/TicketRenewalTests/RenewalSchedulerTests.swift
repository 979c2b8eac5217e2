import Glibc
import KCM
import Synchronization
import Testing

@testable import TicketRenewal

/// A stand-in for the KDC: answers from a script, can hold a renewal until released, and records the
/// thread each renewal ran on.
final class ScriptedRenewer: CredentialRenewing, @unchecked Sendable {
    enum Answer {
        case renew(lifetime: UInt32)
        case fail(String, permanent: Bool)
    }

    private let state = Mutex<(answers: [Answer], calls: Int, threads: [pthread_t], held: Bool)>(([], 0, [], false))
    private let finished = Mutex(0)
    let clock: TestClock

    init(clock: TestClock, answers: [Answer] = []) {
        self.clock = clock
        state.withLock { $0.answers = answers }
    }

    func script(_ answers: Answer...) { state.withLock { $0.answers += answers } }
    func hold() { state.withLock { $0.held = true } }
    func release() { state.withLock { $0.held = false } }
    var calls: Int { state.withLock { $0.calls } }
    var threads: [pthread_t] { state.withLock { $0.threads } }
    /// Renewals that returned their answer.
    var returned: Int { finished.withLock { $0 } }

    func renew(_ credential: KCMCredential, kdcOffset: Int32) -> Result<KCMCredential, RenewalError> {
        let answer: Answer = state.withLock {
            $0.calls += 1
            $0.threads.append(pthread_self())
            return $0.answers.isEmpty ? .fail("no answer scripted", permanent: false) : $0.answers.removeFirst()
        }
        while state.withLock({ $0.held }) { usleep(1000) }
        defer { finished.withLock { $0 += 1 } }
        switch answer {
        case .renew(let lifetime):
            var fields = try! credential.decodeFields()
            let now = clock.now
            fields.times.starttime = now
            fields.times.endtime = min(fields.times.renewTill, now + lifetime)
            return .success(fields.credential())
        case .fail(let message, let permanent):
            return .failure(RenewalError(code: -1_765_328_228, message: message, isPermanent: permanent))
        }
    }
}

final class TestClock: Sendable {
    private let value: Mutex<UInt32>
    init(_ start: UInt32) { value = Mutex(start) }
    var now: UInt32 { value.withLock { $0 } }
    func set(_ time: UInt32) { value.withLock { $0 = time } }
}

/// What `apply` received, in order.
final class AppliedResults: Sendable {
    private let results = Mutex<[RenewalResult]>([])
    private let accept = Mutex(true)
    func record(_ result: RenewalResult) -> Bool {
        results.withLock { $0.append(result) }
        return accept.withLock { $0 }
    }
    func refuse() { accept.withLock { $0 = false } }
    var all: [RenewalResult] { results.withLock { $0 } }
    var renewed: [KCMCredential] {
        all.compactMap { if case .renewed(let credential) = $0.outcome { credential } else { nil } }
    }
    var failures: [(RenewalError, Bool, UInt32?)] {
        all.compactMap { if case .failed(let e, let first, let retry) = $0.outcome { (e, first, retry) } else { nil } }
    }
    var stops: [RenewalStopReason] {
        all.compactMap { if case .stopped(let reason) = $0.outcome { reason } else { nil } }
    }
}

let start: UInt32 = 1_700_000_000

func candidate(
    cache: UInt64 = 1, credential: UInt64 = 1, name: String = "1000", lifetime: UInt32 = 36_000,
    renewTill: UInt32? = nil, flags: UInt32 = 0x0080_0000, startedAt: UInt32 = start
) -> RenewalCandidate {
    let stored = KCMCredentialFields(
        client: KCMPrincipal("alice@CCACHED.TEST"),
        server: KCMPrincipal("krbtgt/CCACHED.TEST@CCACHED.TEST", nameType: 2),
        key: [UInt8](repeating: 7, count: 32),
        times: KCMTicketTimes(
            authtime: startedAt, starttime: startedAt, endtime: startedAt + lifetime,
            renewTill: renewTill ?? startedAt + 86_400), ticketFlags: flags, ticket: [1, 2, 3]
    ).credential()
    return RenewalCandidate(
        cacheName: KCMCacheName(name), cacheUUID: KCMUUID(high: 1, low: cache),
        credentialUUID: KCMUUID(high: 2, low: credential), credential: stored)
}

@Suite("RenewalScheduler")
final class RenewalSchedulerTests {
    let clock = TestClock(start)
    let applied = AppliedResults()
    let renewer: ScriptedRenewer
    let scheduler: RenewalScheduler

    init() throws {
        renewer = ScriptedRenewer(clock: clock)
        let applied = applied
        scheduler = RenewalScheduler(
            policy: try RenewalPolicy(initialBackoff: 10, maximumBackoff: 600), renewer: renewer,
            clock: { [clock] in clock.now }, random: ScriptedRandom([.max]), apply: { applied.record($0) })
    }

    // The worker keeps its scheduler alive until told to stop.
    deinit { scheduler.shutdown() }

    /// Moves the clock to `now` and ticks the scheduler there with the one ``candidate()``: a due
    /// renewal's usual start. Returns the next tick time.
    @discardableResult
    func tick(at now: UInt32) -> UInt32? {
        clock.set(now)
        return scheduler.tick(now: now, candidates: [candidate()])
    }

    @Test("a ticket not yet due is left alone and the next tick time is its due time")
    func notDue() {
        let next = scheduler.tick(now: start + 100, candidates: [candidate()])
        scheduler.waitUntilIdle()
        #expect(next == start + 24_000)
        #expect(renewer.calls == 0)
        #expect(scheduler.cacheStates[KCMUUID(high: 1, low: 1)]?.nextDue == start + 24_000)
    }

    @Test("a due ticket is renewed on the worker thread while tick returns at once")
    func renewsOffTheCallersThread() {
        renewer.script(.renew(lifetime: 36_000))
        renewer.hold()
        let next = tick(at: start + 24_000)
        // tick came back although the renewal is still held inside the "KDC".
        #expect(next == nil)
        #expect(applied.all.isEmpty)
        // The job may still be queued: the renewal is held in the "KDC", so the worker is busy
        // soon and stays so until released. (One status read per check: two reads, one of busy and
        // one of the queue, could fall on either side of the worker taking the job, and see
        // neither.)
        var waited = 0
        while !scheduler.workerStatus.busy && waited < 200 {
            usleep(10_000)
            waited += 1
        }
        #expect(scheduler.workerStatus.busy)
        renewer.release()
        scheduler.waitUntilIdle()
        #expect(renewer.calls == 1)
        #expect(renewer.threads.allSatisfy { pthread_equal($0, pthread_self()) == 0 })
        let renewed = applied.renewed
        #expect(renewed.count == 1)
        #expect(renewed.first?.times.endtime == start + 24_000 + 36_000)
        #expect(applied.all.first?.candidate.credentialUUID == KCMUUID(high: 2, low: 1))
        let state = scheduler.cacheStates[KCMUUID(high: 1, low: 1)]
        #expect(state?.lastRenewal == start + 24_000)
        #expect(state?.lastError == nil)
        #expect(scheduler.workerStatus.renewed == 1)
    }

    @Test("a ticket being renewed is not queued again by later ticks")
    func inFlightNotRequeued() {
        renewer.script(.renew(lifetime: 36_000))
        renewer.hold()
        for second in 0..<5 { scheduler.tick(now: start + 24_000 + UInt32(second), candidates: [candidate()]) }
        renewer.release()
        scheduler.waitUntilIdle()
        #expect(renewer.calls == 1)
    }

    @Test("a non-renewable ticket is never renewed and never reported")
    func nonRenewable() {
        for offset: UInt32 in [0, 24_000, 35_999] {
            scheduler.tick(now: start + offset, candidates: [candidate(flags: 0x0040_0000)])
        }
        scheduler.waitUntilIdle()
        #expect(renewer.calls == 0)
        #expect(applied.all.isEmpty)
        #expect(scheduler.cacheStates[KCMUUID(high: 1, low: 1)]?.note == "not renewable")
    }

    @Test("renew_till reached is reported once, however often the ticket is looked at")
    func renewTillReportedOnce() {
        let last = candidate(lifetime: 600, renewTill: start + 600)
        for offset: UInt32 in [400, 401, 450, 500, 599] { scheduler.tick(now: start + offset, candidates: [last]) }
        scheduler.waitUntilIdle()
        #expect(renewer.calls == 0)
        #expect(applied.stops == [.renewTillReached])
        #expect(scheduler.cacheStates[KCMUUID(high: 1, low: 1)]?.note == "renewable lifetime reached")
    }

    @Test("a failure backs off: no attempt before the retry time, one after it; each cause is first once")
    func failureBacksOff() {
        renewer.script(
            .fail("Cannot contact any KDC for realm 'CCACHED.TEST'", permanent: false),
            .fail("Cannot contact any KDC for realm 'CCACHED.TEST'", permanent: false),
            .fail("KDC has no support for encryption type", permanent: false), .renew(lifetime: 36_000))
        var now = start + 24_000
        tick(at: now)
        scheduler.waitUntilIdle()
        #expect(renewer.calls == 1)
        // ScriptedRandom(.max) draws the top of each range: 10 s after the first failure.
        #expect(applied.failures.map(\.2) == [now + 10])
        #expect(applied.failures.map(\.1) == [true])
        #expect(scheduler.cacheStates[KCMUUID(high: 1, low: 1)]?.lastError?.contains("Cannot contact") == true)

        // Ticks before the retry time: nothing.
        for second: UInt32 in 1...9 {
            let next = scheduler.tick(now: now + second, candidates: [candidate()])
            #expect(next == now + 10)
        }
        scheduler.waitUntilIdle()
        #expect(renewer.calls == 1)

        now += 10
        tick(at: now)
        scheduler.waitUntilIdle()
        #expect(renewer.calls == 2)
        #expect(applied.failures.last?.1 == false)  // same cause: not logged again
        #expect(applied.failures.last?.2 == now + 20)  // doubled

        now += 20
        tick(at: now)
        scheduler.waitUntilIdle()
        #expect(applied.failures.last?.1 == true)  // a new cause is logged
        #expect(scheduler.tick(now: now, candidates: [candidate()]) == now + 40)
        #expect(scheduler.cacheStates[KCMUUID(high: 1, low: 1)]?.consecutiveFailures == 3)

        now += 40
        tick(at: now)
        scheduler.waitUntilIdle()
        #expect(applied.renewed.count == 1)
        let state = scheduler.cacheStates[KCMUUID(high: 1, low: 1)]
        #expect(state?.lastError == nil)
        #expect(state?.lastRenewal == now)
        #expect(scheduler.workerStatus.failed == 3)
        #expect(scheduler.workerStatus.renewed == 1)
    }

    @Test("a permanent error stops attempts for that ticket")
    func permanentError() {
        renewer.script(.fail("cannot renew a ticket for a service of another realm", permanent: true))
        for offset: UInt32 in [24_000, 24_100, 30_000] {
            tick(at: start + offset)
            scheduler.waitUntilIdle()
        }
        #expect(renewer.calls == 1)
        #expect(applied.failures.first?.2 == nil)
        #expect(scheduler.cacheStates[KCMUUID(high: 1, low: 1)]?.note?.contains("another realm") == true)
    }

    @Test("a renewal the daemon could not store (the ticket changed meanwhile) is not counted")
    func refusedApply() {
        renewer.script(.renew(lifetime: 36_000))
        applied.refuse()
        tick(at: start + 24_000)
        scheduler.waitUntilIdle()
        #expect(applied.renewed.count == 1)
        #expect(scheduler.cacheStates[KCMUUID(high: 1, low: 1)]?.lastRenewal == nil)
        #expect(scheduler.workerStatus.renewed == 0)
    }

    @Test("per-cache state: the earliest due ticket of each cache, caches that are gone forgotten")
    func perCacheState() {
        let a1 = candidate(cache: 1, credential: 1, name: "1000", lifetime: 36_000)
        let a2 = candidate(cache: 1, credential: 2, name: "1000", lifetime: 3_600)
        let b = candidate(cache: 2, credential: 3, name: "1000:1", lifetime: 7_200)
        let next = scheduler.tick(now: start, candidates: [a1, a2, b])
        #expect(next == start + 2_400)
        let states = scheduler.cacheStates
        #expect(states[KCMUUID(high: 1, low: 1)]?.nextDue == start + 2_400)
        #expect(states[KCMUUID(high: 1, low: 2)]?.nextDue == start + 4_800)
        #expect(states[KCMUUID(high: 1, low: 2)]?.cacheName == "1000:1")
        scheduler.tick(now: start, candidates: [a1])
        #expect(scheduler.cacheStates.count == 1)
        #expect(scheduler.cacheStates[KCMUUID(high: 1, low: 1)]?.nextDue == start + 24_000)
    }

    @Test("RENEW now: renews what is renewable before it is due and answers per cache")
    func renewNow() {
        renewer.script(.renew(lifetime: 36_000), .fail("KDC refused", permanent: false))
        let done = Mutex<[KCMRenew.CacheResult]?>(nil)
        let ok = candidate(cache: 1, credential: 1, name: "1000")
        let bad = candidate(cache: 2, credential: 2, name: "1000:1")
        let plain = candidate(cache: 3, credential: 3, name: "1000:2", flags: 0)
        clock.set(start + 50)
        scheduler.renewNow([ok, bad, plain], now: start + 50) { results in done.withLock { $0 = results } }
        scheduler.waitUntilIdle()
        let results = done.withLock { $0 } ?? []
        #expect(results.map(\.cacheName) == ["1000", "1000:1", "1000:2"])
        #expect(results.map(\.outcome) == [.renewed, .failed, .nothingToRenew])
        #expect(results[0].renewedCount == 1)
        #expect(results[0].endtime == start + 50 + 36_000)
        #expect(results[1].failedCount == 1)
        #expect(results[1].message == "KDC refused")
        #expect(results[2].message == "not renewable")
        #expect(renewer.calls == 2)
    }

    @Test("RENEW answers for every named cache, in that order, even one without a renewable ticket")
    func renewNowNamedCaches() {
        renewer.script(.renew(lifetime: 36_000))
        let done = Mutex<[KCMRenew.CacheResult]?>(nil)
        scheduler.renewNow(
            [candidate(cache: 2, credential: 2, name: "1000:1")], cacheNames: ["1000", "1000:1"], now: start
        ) { results in done.withLock { $0 = results } }
        scheduler.waitUntilIdle()
        let results = done.withLock { $0 } ?? []
        #expect(results.map(\.cacheName) == ["1000", "1000:1"])
        #expect(results.map(\.outcome) == [.nothingToRenew, .renewed])
        #expect(results.map(\.message) == ["no renewable ticket", ""])
    }

    @Test("RENEW of nothing renewable answers at once, on the worker")
    func renewNowNothing() {
        let done = Mutex<[KCMRenew.CacheResult]?>(nil)
        scheduler.renewNow([candidate(flags: 0)], now: start) { results in done.withLock { $0 = results } }
        scheduler.waitUntilIdle()
        #expect(done.withLock { $0 }?.first?.outcome == .nothingToRenew)
        #expect(renewer.calls == 0)
    }

    @Test("shutdown during a renewal returns without waiting for the KDC, and apply is never called after it")
    func shutdownDuringRenewal() {
        renewer.script(.renew(lifetime: 36_000))
        renewer.hold()
        tick(at: start + 24_000)
        while renewer.calls == 0 { usleep(1000) }
        scheduler.shutdown()  // returns although the renewal is still held
        renewer.release()
        while renewer.returned == 0 { usleep(1000) }
        usleep(50_000)  // let the detached worker reach the point where it would call apply
        #expect(applied.all.isEmpty)
        #expect(scheduler.workerStatus.renewed == 0)
    }

    @Test("shutdown stops the worker and later ticks start nothing")
    func shutdownStops() {
        scheduler.shutdown()
        scheduler.tick(now: start + 24_000, candidates: [candidate()])
        #expect(renewer.calls == 0)
        #expect(scheduler.workerStatus.queued <= 1)
    }
}
