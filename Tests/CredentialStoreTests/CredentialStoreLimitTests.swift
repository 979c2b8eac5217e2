import KCM
import TestSupport
import Testing

@testable import CredentialStore

/// The store's limits refuse a new cache, credential or byte with KRB5_CC_NOMEM and an explanation,
/// never lose what is already stored, and count each refusal against the limit that made it.
@Suite("CredentialStore limits")
struct CredentialStoreLimitTests {
    func ticket(_ server: String, bytes: Int = 100) -> KCMCredential {
        KCMCredentialFields(
            client: KCMPrincipal("alice@R"), server: KCMPrincipal(server), key: [1],
            times: KCMTicketTimes(endtime: 4_000_000_000),
            ticket: [UInt8](repeating: 7, count: bytes)
        ).credential()
    }

    @Test("the cache limit refuses a new cache; replacing, moving and re-initialising existing ones still work")
    func cacheLimit() throws {
        let store = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCaches: 2))
        try store.initialize("a", principal: KCMPrincipal("alice@R"))
        try store.initialize("b", principal: KCMPrincipal("alice@R"))
        do {
            try store.initialize("c", principal: KCMPrincipal("alice@R"))
            Issue.record("a third cache was created")
        } catch {
            #expect(error == .limitReached(.caches, limit: 2))
            #expect(error.description == "the limit of 2 caches is reached; nothing was stored")
        }
        #expect(throws: CredentialStoreError.self) {
            try store.replace("c", principal: KCMPrincipal("a@R"), kdcOffset: 0, credentials: [])
        }
        try store.initialize("a", principal: KCMPrincipal("bob@R"))
        try store.replace("b", principal: KCMPrincipal("a@R"), kdcOffset: 0, credentials: [ticket("x/y@R")])
        try store.move(from: "b", to: "c")
        #expect(store.cacheCount == 2)
        // The refused INITIALIZE and REPLACE; the move did not count.
        #expect(store.refusals == CredentialStoreRefusals(caches: 2))
    }

    @Test("the per-cache limit refuses a new credential but lets one replace its predecessor")
    func credentialLimit() throws {
        let store = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCredentialsPerCache: 2))
        try store.initialize("a", principal: KCMPrincipal("alice@R"))
        try store.store(ticket("s1/h@R"), in: "a")
        try store.store(ticket("s2/h@R"), in: "a")
        #expect(throws: CredentialStoreError.limitReached(.credentialsPerCache, limit: 2)) {
            try store.store(self.ticket("s3/h@R"), in: "a")
        }
        try store.store(ticket("s2/h@R", bytes: 50), in: "a")  // supersedes, so the count stays 2
        #expect(try store.cache(named: "a").credentials.count == 2)
        #expect(throws: CredentialStoreError.self) {
            try store.replace(
                "a", principal: KCMPrincipal("alice@R"), kdcOffset: 0,
                credentials: [ticket("1/h@R"), ticket("2/h@R"), ticket("3/h@R")])
        }
        #expect(try store.cache(named: "a").credentials.count == 2)
        #expect(store.refusals == CredentialStoreRefusals(credentialsPerCache: 2))
        #expect(store.largestCacheCredentialCount == 2)
    }

    @Test("the byte limit counts every cache; a refused store or replace leaves everything as it was")
    func byteLimit() throws {
        let one = ticket("s1/h@R", bytes: 1000).bytes.count
        let record = CredentialCache.recordBytes(name: "a", principal: KCMPrincipal("alice@R"))
        let limit = 2 * one + 2 * record + 10
        let store = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCredentialBytes: limit))
        try store.initialize("a", principal: KCMPrincipal("alice@R"))
        try store.initialize("b", principal: KCMPrincipal("alice@R"))
        try store.store(ticket("s1/h@R", bytes: 1000), in: "a")
        try store.store(ticket("s2/h@R", bytes: 1000), in: "b")
        #expect(throws: CredentialStoreError.limitReached(.credentialBytes, limit: limit)) {
            try store.store(self.ticket("s3/h@R", bytes: 1000), in: "a")
        }
        #expect(throws: CredentialStoreError.self) {
            try store.replace(
                "a", principal: KCMPrincipal("alice@R"), kdcOffset: 0,
                credentials: [ticket("s1/h@R", bytes: 1000), ticket("s9/h@R", bytes: 1000)])
        }
        #expect(store.credentialCount == 2)
        #expect(store.credentialBytes == 2 * one + 2 * record)
        #expect(store.refusals == CredentialStoreRefusals(credentialBytes: 2))
        // Replacing a cache's own bytes with as many is within the limit.
        try store.replace(
            "a", principal: KCMPrincipal("alice@R"), kdcOffset: 0, credentials: [ticket("s4/h@R", bytes: 1000)])
        #expect(store.credentialBytes == 2 * one + 2 * record)
        #expect(store.refusals == CredentialStoreRefusals(credentialBytes: 2))
    }

    @Test("a cache's name and principal count against the byte limit, each component at its heap cost")
    func principalsAndNamesCount() throws {
        // The issue's principal: 838,860 one-byte components (a 4 MiB INITIALIZE body).
        let huge = KCMPrincipal(realm: ascii("R"), components: Array(repeating: [0x61], count: 838_860))
        #expect(huge.storageCost >= 838_860 * (KCMPrincipal.componentOverhead + 1))
        let small = KCMPrincipal("alice@R")
        let record = CredentialCache.recordBytes(name: "a", principal: small)
        #expect(record == CredentialCache.recordOverhead + 2 + small.storageCost)

        let limit = 1 << 20
        let store = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCredentialBytes: limit))
        try store.initialize("a", principal: small)
        #expect(store.credentialBytes == record, "an empty cache is not free")
        // Eight INITIALIZEs of the huge principal: every one refused, nothing stored, each counted.
        for index in 0..<8 {
            #expect(throws: CredentialStoreError.limitReached(.credentialBytes, limit: limit)) {
                try store.initialize(KCMCacheName("big\(index)"), principal: huge)
            }
        }
        #expect(store.cacheCount == 1)
        #expect(store.credentialBytes == record)
        #expect(store.refusals == CredentialStoreRefusals(credentialBytes: 8))
        // Nor may an existing cache take it on: the old principal stays.
        #expect(throws: CredentialStoreError.self) { try store.initialize("a", principal: huge) }
        #expect(try store.cache(named: "a").principal == small)
        #expect(throws: CredentialStoreError.self) {
            try store.replace("a", principal: huge, kdcOffset: 0, credentials: [])
        }
        #expect(try store.cache(named: "a").principal == small)

        // Long names cost their bytes: caches of 4096-byte names fill a small limit sooner.
        let named = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCredentialBytes: 4 * 8192))
        var created = 0
        for index in 0..<16 {
            let name = KCMCacheName(String(repeating: "n", count: 4090) + "\(index)")
            if (try? named.initialize(name, principal: small)) != nil { created += 1 }
        }
        #expect(created == 3, "three 4 KiB names (2 × 4 KiB each plus the record) fit in 32 KiB, not \(created)")
        #expect(named.credentialBytes <= 4 * 8192)
        #expect(named.refusals.credentialBytes == 16 - created)
    }

    @Test("moving a cache keeps the total exact: the source's record goes, the destination's is replaced")
    func moveAccounting() throws {
        let store = CredentialStore(ownerUID: 1000)
        try store.initialize("src", principal: KCMPrincipal("alice@R"))
        try store.store(ticket("s1/h@R", bytes: 100), in: "src")
        try store.initialize("dst", principal: KCMPrincipal("a/very/long/principal@SOME.REALM"))
        try store.store(ticket("s2/h@R", bytes: 500), in: "dst")
        try store.move(from: "src", to: "dst")
        let moved = try store.cache(named: "dst")
        #expect(store.credentialBytes == moved.recordBytes + moved.credentials.byteCount)
        #expect(moved.recordBytes == CredentialCache.recordBytes(name: "dst", principal: KCMPrincipal("alice@R")))
        // A move that would not fit is refused before anything changes.
        let tight = CredentialStore(
            ownerUID: 1000,
            limits: CredentialStoreLimits(
                maximumCredentialBytes: CredentialCache.recordBytes(name: "x", principal: KCMPrincipal("alice@R")) + 10)
        )
        try tight.initialize("x", principal: KCMPrincipal("alice@R"))
        #expect(throws: CredentialStoreError.self) {
            try tight.move(from: "x", to: KCMCacheName(String(repeating: "y", count: 200)))
        }
        #expect(tight.cacheCount == 1)
        #expect(try tight.cache(named: "x").principal == KCMPrincipal("alice@R"))
    }

    @Test("requests that fail for other reasons are not counted as refusals")
    func otherFailuresAreNotRefusals() throws {
        let store = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCaches: 1))
        #expect(throws: CredentialStoreError.noSuchCache("a")) { try store.store(self.ticket("s/h@R"), in: "a") }
        #expect(throws: CredentialStoreError.invalidName(length: 0)) {
            try store.initialize(KCMCacheName(bytes: []), principal: KCMPrincipal("alice@R"))
        }
        try store.initialize("a", principal: KCMPrincipal("alice@R"))
        #expect(throws: CredentialStoreError.noMatchingCredential) {
            try store.retrieve(from: "a", matching: CredentialMatcher(flags: [], template: KCMMatchTemplate()))
        }
        #expect(store.refusals == CredentialStoreRefusals())
    }

    @Test("the fullest cache's credential count is the usage against the per-cache limit")
    func largestCache() throws {
        let store = CredentialStore(ownerUID: 1000)
        #expect(store.largestCacheCredentialCount == 0)
        try store.initialize("a", principal: KCMPrincipal("alice@R"))
        try store.initialize("b", principal: KCMPrincipal("alice@R"))
        #expect(store.largestCacheCredentialCount == 0)
        let three = [ticket("1/h@R"), ticket("2/h@R"), ticket("3/h@R")]
        try store.replace("a", principal: KCMPrincipal("alice@R"), kdcOffset: 0, credentials: Array(three.prefix(2)))
        try store.replace("b", principal: KCMPrincipal("alice@R"), kdcOffset: 0, credentials: three)
        #expect(store.largestCacheCredentialCount == 3)
        try store.destroy("b")
        #expect(store.largestCacheCredentialCount == 2)
        store.destroyAll()
        #expect(store.largestCacheCredentialCount == 0)
    }
}
