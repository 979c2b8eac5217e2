import CredentialStore
import KCM
import TestSupport
import Testing

@Suite("ChangeJournal")
struct ChangeJournalTests {
    @Test("counters grow by one per change; changes(after:) returns what came later, oldest first")
    func countersAndChanges() {
        var journal = ChangeJournal(capacity: 8, epoch: 42)
        #expect(journal.counter == 0)
        #expect(journal.changes(after: 0) == .changes([]))
        #expect(journal.record(.cacheCreated, "1000") == 1)
        #expect(journal.record(.credentialsStored, "1000") == 2)
        #expect(journal.record(.defaultSwitched, "1000:1") == 3)
        #expect(journal.counter == 3)
        #expect(
            journal.changes(after: 0)
                == .changes([
                    .init(counter: 1, kind: .cacheCreated, cacheName: "1000"),
                    .init(counter: 2, kind: .credentialsStored, cacheName: "1000"),
                    .init(counter: 3, kind: .defaultSwitched, cacheName: "1000:1"),
                ]))
        #expect(journal.changes(after: 2) == .changes([.init(counter: 3, kind: .defaultSwitched, cacheName: "1000:1")]))
        #expect(journal.changes(after: 3) == .changes([]))
    }

    @Test("the ring keeps the last `capacity` changes; an older counter must resync")
    func ringWraps() {
        var journal = ChangeJournal(capacity: 4, epoch: 1)
        for n in 1...10 { journal.record(.credentialsStored, KCMCacheName("c\(n)")) }
        #expect(journal.oldestCounter == 7)
        // Changes 7...10 are kept: a watcher at 6 gets all four, one at 5 or earlier must resync.
        guard case .changes(let recent) = journal.changes(after: 6) else {
            Issue.record("expected changes")
            return
        }
        #expect(recent.map(\.counter) == [7, 8, 9, 10])
        #expect(recent.map(\.cacheName) == ["c7", "c8", "c9", "c10"])
        #expect(journal.changes(after: 5) == .resync)
        #expect(journal.changes(after: 0) == .resync)
        guard case .changes(let last) = journal.changes(after: 8) else {
            Issue.record("expected changes")
            return
        }
        #expect(last.map(\.counter) == [9, 10])
    }

    @Test("every wrap position answers correctly")
    func everyWrapPosition() {
        for capacity in 1...5 {
            var journal = ChangeJournal(capacity: capacity, epoch: 1)
            for n in 1...20 {
                journal.record(.purged, KCMCacheName("c\(n)"))
                let counter = UInt64(n)
                for after in 0...counter {
                    let result = journal.changes(after: after)
                    if counter - after > UInt64(capacity) {
                        #expect(result == .resync, "capacity \(capacity) counter \(counter) after \(after)")
                    } else {
                        let expected = (after + 1..<counter + 1).map {
                            ChangeJournal.Change(counter: $0, kind: .purged, cacheName: KCMCacheName("c\($0)"))
                        }
                        #expect(result == .changes(expected), "capacity \(capacity) counter \(counter) after \(after)")
                    }
                }
            }
        }
    }

    @Test("a counter from the future or another epoch must resync")
    func otherLife() {
        var journal = ChangeJournal(capacity: 4, epoch: 7)
        journal.record(.cacheCreated, "1000")
        #expect(journal.changes(after: 5) == .resync)
        #expect(journal.changes(after: 0, epoch: 8) == .resync)
        #expect(journal.changes(after: 0, epoch: 7) != .resync)
        #expect(journal.changes(after: 0, epoch: 0) == .resync)
        #expect(ChangeJournal(epoch: 0).epoch != 0)
        #expect(ChangeJournal().epoch != 0)
        #expect(ChangeJournal().epoch != ChangeJournal().epoch)
    }

    @Test("a limit returns the oldest changes first; the rest come on the next call")
    func limit() {
        var journal = ChangeJournal(capacity: 16, epoch: 1)
        for n in 1...6 { journal.record(.credentialsRemoved, KCMCacheName("c\(n)")) }
        guard case .changes(let first) = journal.changes(after: 1, limit: 2) else {
            Issue.record("expected changes")
            return
        }
        #expect(first.map(\.counter) == [2, 3])
        guard case .changes(let rest) = journal.changes(after: 3, limit: 100) else {
            Issue.record("expected changes")
            return
        }
        #expect(rest.map(\.counter) == [4, 5, 6])
    }
}

/// The store's mutating methods record exactly the changes watchers are told about, never bytes.
@Suite("CredentialStore journal hooks")
struct CredentialStoreJournalTests {
    func kinds(_ store: CredentialStore, after: UInt64 = 0) -> [String] {
        guard case .changes(let changes) = store.journal.changes(after: after) else { return ["resync"] }
        return changes.map { "\($0.kind) \($0.cacheName)" }
    }

    @Test("kinit-like sequences: create, store, remove, switch, destroy")
    func lifecycle() throws {
        let store = CredentialStore(ownerUID: 1000)
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(ticket(server: Fixture.krbtgt), in: "1000")
        try store.store(ticket(server: Fixture.host), in: "1000")
        try store.removeCredentials(from: "1000", matching: serverMatcher(Fixture.host))
        // Removing nothing is no change.
        try store.removeCredentials(from: "1000", matching: serverMatcher(Fixture.host))
        try store.initialize("1000", principal: Fixture.alice)
        // Re-initialising an empty cache is no change either.
        try store.initialize("1000", principal: Fixture.alice)
        try store.setDefault("1000:1")
        try store.setDefault("1000:1")
        try store.destroy("1000")
        #expect(
            kinds(store) == [
                "created 1000", "stored 1000", "stored 1000", "removed 1000", "removed 1000", "default 1000:1",
                "destroyed 1000",
            ])
    }

    @Test("REPLACE of a new cache is created + stored; MOVE stores the destination, destroys the source")
    func replaceAndMove() throws {
        let store = CredentialStore(ownerUID: 1000)
        try store.replace("tmp", principal: Fixture.alice, kdcOffset: 0, credentials: [ticket()])
        try store.setDefault("tmp")
        let before = store.journal.counter
        try store.move(from: "tmp", to: "1000")
        #expect(kinds(store, after: before) == ["created 1000", "stored 1000", "destroyed tmp", "default 1000"])
        #expect(kinds(store).prefix(3) == ["created tmp", "stored tmp", "default tmp"])
    }

    @Test("purge records the caches it emptied; destroyAll records every cache and the default's return")
    func purgeAndDestroyAll() throws {
        let store = CredentialStore(ownerUID: 1000)
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(ticket(endtime: Fixture.now - 100), in: "1000")
        try store.initialize("1000:1", principal: Fixture.alice)
        try store.store(ticket(), in: "1000:1")
        try store.setDefault("1000:1")
        var before = store.journal.counter
        store.purge(now: Fixture.now, grace: 10)
        #expect(kinds(store, after: before) == ["purged 1000"])
        before = store.journal.counter
        store.destroyAll()
        #expect(kinds(store, after: before) == ["destroyed 1000", "destroyed 1000:1", "default 1000"])
    }

    @Test("a refused change records nothing")
    func refused() throws {
        let store = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCredentialsPerCache: 1))
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(ticket(server: Fixture.krbtgt), in: "1000")
        let before = store.journal.counter
        #expect(storeError { try store.store(ticket(server: Fixture.host), in: "1000") } != nil)
        #expect(storeError { try store.setDefault(KCMCacheName(bytes: [])) } != nil)
        #expect(store.journal.counter == before)
    }
}

/// What the daemon answers CCACHED_WATCH with, straight from the journal.
@Suite("ChangeJournal watch replies")
struct ChangeJournalWatchTests {
    @Test("a new watcher (epoch 0) learns the epoch and counter; then waits, then gets the changes")
    func startWaitChanges() {
        var journal = ChangeJournal(capacity: 4, epoch: 99)
        journal.record(.cacheCreated, "1000")
        let first = journal.watchReply(for: KCMWatch.Request(epoch: 0, after: 0, timeoutMilliseconds: 60_000))
        #expect(first == KCMWatch.Reply(epoch: 99, next: 1, resync: true))
        // Nothing new after 1: nil, the daemon waits.
        #expect(journal.watchReply(for: KCMWatch.Request(epoch: 99, after: 1)) == nil)
        #expect(
            journal.timeoutReply(for: KCMWatch.Request(epoch: 99, after: 1)) == KCMWatch.Reply(epoch: 99, next: 1))
        journal.record(.credentialsRenewed, "1000")
        journal.record(.defaultSwitched, "1000:1")
        #expect(
            journal.watchReply(for: KCMWatch.Request(epoch: 99, after: 1))
                == KCMWatch.Reply(
                    epoch: 99, next: 3,
                    events: [
                        KCMChangeEvent(counter: 2, kind: .credentialsRenewed, cacheName: "1000"),
                        KCMChangeEvent(counter: 3, kind: .defaultSwitched, cacheName: "1000:1"),
                    ]))
        // Every journal kind maps to the wire kind of the same word.
        for kind in ChangeJournal.Kind.allCases {
            #expect(KCMChangeEvent.Kind(rawValue: kind.rawValue).description == kind.description)
        }
    }

    @Test("another epoch, a future counter or a lost one: resync at once; a limit pages the changes")
    func resyncAndLimit() {
        var journal = ChangeJournal(capacity: 4, epoch: 5)
        for n in 1...6 { journal.record(.credentialsStored, KCMCacheName("c\(n)")) }
        let resync = KCMWatch.Reply(epoch: 5, next: 6, resync: true)
        #expect(journal.watchReply(for: KCMWatch.Request(epoch: 6, after: 6)) == resync)
        #expect(journal.watchReply(for: KCMWatch.Request(epoch: 5, after: 7)) == resync)
        #expect(journal.watchReply(for: KCMWatch.Request(epoch: 5, after: 1)) == resync)
        let page = journal.watchReply(for: KCMWatch.Request(epoch: 5, after: 2), limit: 3)
        #expect(page?.events.map(\.counter) == [3, 4, 5])
        #expect(page?.next == 5)
    }
}
