import KCM
import TestSupport
import Testing

@testable import CredentialStore

/// At `--max-caches`, a cache whose every ticket has expired makes room for a new one instead of
/// refusing every `kinit` until the purge grace has passed; nothing still of use is ever evicted.
@Suite("cache eviction at the cache limit")
struct CacheEvictionTests {
    static let now: UInt32 = 1_800_000_000

    static func store(maximumCaches: Int = 3) -> CredentialStore {
        let store = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCaches: maximumCaches))
        store.clock = { now }
        return store
    }

    /// A TGT ending at `end`, renewable until `renewTill` (0: not renewable).
    static func tgt(end: UInt32, renewTill: UInt32 = 0) -> KCMCredential {
        ticket(
            client: Fixture.alice, server: Fixture.krbtgt, authtime: end - 36_000, starttime: end - 36_000,
            endtime: end, renewTill: renewTill)
    }

    /// A cache named `name` holding `credentials`, made the way kinit makes one.
    static func fill(_ store: CredentialStore, _ name: KCMCacheName, _ credentials: [KCMCredential]) throws {
        try store.initialize(name, principal: Fixture.alice)
        for credential in credentials { try store.store(credential, in: name) }
    }

    @Test(
        "at the limit, INITIALIZE of a new cache evicts the least recently used fully expired cache, and says so once"
    )
    func evictsOldestExpired() throws {
        let store = Self.store()
        var evicted: [CacheEviction] = []
        store.onEviction = { evicted.append($0) }
        try Self.fill(store, "1000:old", [Self.tgt(end: Self.now - 7200)])
        try Self.fill(store, "1000:newer", [Self.tgt(end: Self.now - 60)])
        try Self.fill(store, "1000:live", [Self.tgt(end: Self.now + 3600)])
        // kinit: GEN_NEW, then INITIALIZE of the new name.
        let name = store.generateName()
        try store.initialize(name, principal: Fixture.alice)
        #expect(store.cacheNames == ["1000:newer", "1000:live", name])
        #expect(evicted == [CacheEviction(name: "1000:old", expiredAt: Self.now - 7200, now: Self.now)])
        #expect(evicted.first?.logLine.contains("evicted cache 1000:old, whose tickets all expired 7200 s ago") == true)
        #expect(store.evictions == 1)
        #expect(store.refusals == CredentialStoreRefusals())
        // REPLACE of a new name evicts too, the expired cache used least recently: the one kinit
        // filled, now expired, rather than the older one a client has just read a ticket from.
        try store.store(Self.tgt(end: Self.now - 1), in: name)
        _ = storeError { try store.retrieve(from: "1000:newer", matching: serverMatcher(Fixture.host)) }
        try store.replace("1000:r", principal: Fixture.alice, kdcOffset: 0, credentials: [])
        #expect(store.cacheNames == ["1000:newer", "1000:live", "1000:r"])
        #expect(evicted.map(\.name) == ["1000:old", name])
    }

    @Test(
        "a live, a renewable, an empty (kinit filling it), a config-only and an expiry-less cache are never evicted: the limit refuses"
    )
    func neverEvictsWhatIsOfUse() throws {
        let store = Self.store(maximumCaches: 5)
        var evicted: [CacheEviction] = []
        store.onEviction = { evicted.append($0) }
        try Self.fill(store, "1000:live", [Self.tgt(end: Self.now - 60), Self.tgt(end: Self.now + 60)])
        try Self.fill(store, "1000:renewable", [Self.tgt(end: Self.now - 60, renewTill: Self.now + 86_400)])
        // INITIALIZE done, STORE not yet: what kinit's new cache looks like between the two.
        try Self.fill(store, "1000:filling", [])
        try Self.fill(store, "1000:config", [configEntry("pa_type", "2")])
        try Self.fill(store, "1000:forever", [ticket(endtime: 0)])
        #expect(throws: CredentialStoreError.limitReached(.caches, limit: 5)) {
            try store.initialize("1000:new", principal: Fixture.alice)
        }
        #expect(store.cacheCount == 5)
        #expect(evicted.isEmpty)
        #expect(store.refusals == CredentialStoreRefusals(caches: 1))
    }

    @Test("an INITIALIZE the byte limit refuses evicts nothing: a refused request changes nothing")
    func refusedRequestEvictsNothing() throws {
        let expired = Self.tgt(end: Self.now - 60)
        let record = CredentialCache.recordBytes(name: "1000:a", principal: Fixture.alice)
        let store = CredentialStore(
            ownerUID: 1000,
            limits: CredentialStoreLimits(maximumCaches: 1, maximumCredentialBytes: record + expired.bytes.count + 10))
        store.clock = { Self.now }
        try Self.fill(store, "1000:a", [expired])
        #expect(throws: CredentialStoreError.limitReached(.credentialBytes, limit: store.limits.maximumCredentialBytes))
        {
            try store.initialize("1000:b", principal: Fixture.alice)
        }
        #expect(store.cacheNames == ["1000:a"])
        #expect(store.evictions == 0)
    }

    @Test(
        "an evicted default falls back to the most recently used cache left; re-initialising at the limit evicts nothing"
    )
    func evictedDefault() throws {
        let store = Self.store(maximumCaches: 2)
        try Self.fill(store, "1000", [Self.tgt(end: Self.now - 10)])
        try Self.fill(store, "1000:1", [Self.tgt(end: Self.now + 10)])
        try store.setDefault("1000")
        // kinit into an existing cache needs no room.
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(Self.tgt(end: Self.now - 10), in: "1000")
        #expect(store.evictions == 0)
        try store.initialize("1000:2", principal: Fixture.alice)
        #expect(store.cacheNames == ["1000:1", "1000:2"])
        // Evicted before the new cache exists: the default goes to the one left (kinit then
        // switches to its new cache itself).
        #expect(store.defaultName == "1000:1")
    }
}
