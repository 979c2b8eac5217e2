import CredentialStore
import Glibc
import KCM
import SecureMemory
import Testing
import TicketRenewal

/// The scheduler, the store's snapshot and `apply` together, as the daemon will use them: a store
/// behind a mutex that is never held while the (scripted) KDC is asked.
@Suite("Renewal into a CredentialStore")
final class StoreRenewalTests {
    let clock = TestClock(start)
    let store = LockedStore()
    let renewer: ScriptedRenewer
    let scheduler: RenewalScheduler

    init() throws {
        renewer = ScriptedRenewer(clock: clock)
        let store = self.store
        scheduler = RenewalScheduler(
            policy: try RenewalPolicy(), renewer: renewer, clock: { [clock] in clock.now },
            apply: { result in store.withLock { result.apply(to: $0) } })
        try store.withLock { store in
            for (name, principal) in [("1000", "alice@CCACHED.TEST"), ("1000:1", "bob@CCACHED.TEST")] {
                try store.initialize(KCMCacheName(name), principal: KCMPrincipal(principal))
                try store.store(Self.tgt(principal), in: KCMCacheName(name))
                try store.store(Self.service(principal), in: KCMCacheName(name))
            }
            try store.setDefault("1000")
        }
    }

    deinit { scheduler.shutdown() }

    static func tgt(_ client: String) -> KCMCredential {
        KCMCredentialFields(
            client: KCMPrincipal(client), server: KCMPrincipal("krbtgt/CCACHED.TEST@CCACHED.TEST", nameType: 2),
            key: [UInt8](repeating: 1, count: 32),
            times: KCMTicketTimes(
                authtime: start, starttime: start, endtime: start + 36_000, renewTill: start + 86_400),
            ticketFlags: 0x0080_0000, ticket: [1]
        ).credential()
    }

    static func service(_ client: String) -> KCMCredential {
        KCMCredentialFields(
            client: KCMPrincipal(client), server: KCMPrincipal("host/localhost@CCACHED.TEST"),
            times: KCMTicketTimes(authtime: start, starttime: start, endtime: start + 36_000), ticketFlags: 0x0040_0000,
            ticket: [2]
        ).credential()
    }

    @Test("the snapshot holds the renewable tickets only, with their cache and UUIDs")
    func snapshot() {
        let candidates = store.withLock { $0.renewalCandidates() }
        #expect(candidates.map(\.cacheName) == ["1000", "1000:1"])
        #expect(candidates.allSatisfy { RenewalTimes($0.credential).isTicketGrantingTicket })
        #expect(store.withLock { $0.renewalCandidates(in: "1000:1") }.map(\.cacheName) == ["1000:1"])
        #expect(store.withLock { $0.renewalCandidates(in: "nope") }.isEmpty)
    }

    @Test("renewing the non-default cache replaces its TGT in place; the default and the other cache stay")
    func renewsOneCache() throws {
        renewer.script(.renew(lifetime: 36_000))
        let uuidsBefore = try store.withLock { try entries($0, "1000:1").map(\.uuid) }
        let otherBefore = try store.withLock { try entries($0, "1000").map(\.credential.bytes) }
        let counter = store.withLock { $0.journal.counter }
        clock.set(start + 24_000)
        let candidates = store.withLock { $0.renewalCandidates(in: "1000:1") }
        scheduler.tick(now: clock.now, candidates: candidates)
        scheduler.waitUntilIdle()
        try store.withLock { store in
            let after = try entries(store, "1000:1")
            #expect(after.map(\.uuid) == uuidsBefore)
            #expect(after[0].credential.times.endtime == start + 24_000 + 36_000)
            #expect(after[0].credential.times.starttime == start + 24_000)
            #expect(after[1].credential.bytes == Self.service("bob@CCACHED.TEST").bytes)
            #expect(try entries(store, "1000").map(\.credential.bytes) == otherBefore)
            #expect(store.defaultName == "1000")
            #expect(
                store.journal.changes(after: counter)
                    == .changes([.init(counter: counter + 1, kind: .credentialsRenewed, cacheName: "1000:1")]))
        }
        #expect(scheduler.cacheStates[store.withLock { $0.cacheUUIDs[1] }]?.lastRenewal == start + 24_000)
        // The next tick sees the renewed ticket: due again two thirds into its new lifetime.
        let next = scheduler.tick(now: clock.now, candidates: store.withLock { $0.renewalCandidates(in: "1000:1") })
        #expect(next == start + 24_000 + 24_000)
    }

    @Test("a kinit while the KDC answers wins: the renewal is dropped, the newer ticket kept")
    func userChangeWins() throws {
        renewer.script(.renew(lifetime: 36_000))
        renewer.hold()
        clock.set(start + 24_000)
        scheduler.tick(now: clock.now, candidates: store.withLock { $0.renewalCandidates(in: "1000") })
        // The store is free while the renewal is held in the "KDC": a STORE goes through now.
        var fresh = try Self.tgt("alice@CCACHED.TEST").decodeFields()
        fresh.ticket = [7, 7, 7]
        let newer = fresh.credential()
        try store.withLock { try $0.store(newer, in: "1000") }
        renewer.release()
        scheduler.waitUntilIdle()
        try store.withLock { store in
            let tickets = try entries(store, "1000")
            #expect(tickets.contains { $0.credential.bytes == newer.bytes })
            #expect(tickets.count == 2)
        }
        #expect(scheduler.workerStatus.renewed == 0)
    }

    func entries(_ store: CredentialStore, _ name: KCMCacheName) throws -> [CredentialList.Entry] {
        var result: [CredentialList.Entry] = []
        // swift-format-ignore: ReplaceForEachWithForLoop
        try store.cache(named: name).credentials.forEach { result.append($0) }
        return result
    }
}

/// The daemon's arrangement: one store, one lock.
// @unchecked Sendable: the store is only reached through withLock, under the pthread mutex.
final class LockedStore: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let store = CredentialStore(ownerUID: 1000)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (CredentialStore) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(store)
    }
}
