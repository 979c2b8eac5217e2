import CredentialStore
import KCM
import TestSupport
import Testing

/// The store's limits refuse a new cache, credential or byte with KRB5_CC_NOMEM and an explanation,
/// never lose what is already stored, and count each refusal against the limit that made it.
@Suite("CredentialStore limits")
struct CredentialStoreLimitTests {
    func ticket(_ server: String, bytes: Int = 100) -> KCMCredential {
        KCMCredentialFields(
            client: KCMPrincipal("alice@R"), server: KCMPrincipal(server), key: [1], endtime: 4_000_000_000,
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
        #expect(throws: CredentialStoreError.self) { try store.replace("c", principal: KCMPrincipal("a@R"), kdcOffset: 0, credentials: []) }
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
            try store.replace("a", principal: KCMPrincipal("alice@R"), kdcOffset: 0, credentials: [ticket("1/h@R"), ticket("2/h@R"), ticket("3/h@R")])
        }
        #expect(try store.cache(named: "a").credentials.count == 2)
        #expect(store.refusals == CredentialStoreRefusals(credentialsPerCache: 2))
        #expect(store.largestCacheCredentialCount == 2)
    }

    @Test("the byte limit counts every cache; a refused store or replace leaves everything as it was")
    func byteLimit() throws {
        let one = ticket("s1/h@R", bytes: 1000).bytes.count
        let store = CredentialStore(ownerUID: 1000, limits: CredentialStoreLimits(maximumCredentialBytes: 2 * one + 10))
        try store.initialize("a", principal: KCMPrincipal("alice@R"))
        try store.initialize("b", principal: KCMPrincipal("alice@R"))
        try store.store(ticket("s1/h@R", bytes: 1000), in: "a")
        try store.store(ticket("s2/h@R", bytes: 1000), in: "b")
        #expect(throws: CredentialStoreError.limitReached(.credentialBytes, limit: 2 * one + 10)) {
            try store.store(self.ticket("s3/h@R", bytes: 1000), in: "a")
        }
        #expect(throws: CredentialStoreError.self) {
            try store.replace("a", principal: KCMPrincipal("alice@R"), kdcOffset: 0, credentials: [ticket("s1/h@R", bytes: 1000), ticket("s9/h@R", bytes: 1000)])
        }
        #expect(store.credentialCount == 2)
        #expect(store.credentialBytes == 2 * one)
        #expect(store.refusals == CredentialStoreRefusals(credentialBytes: 2))
        // Replacing a cache's own bytes with as many is within the limit.
        try store.replace("a", principal: KCMPrincipal("alice@R"), kdcOffset: 0, credentials: [ticket("s4/h@R", bytes: 1000)])
        #expect(store.credentialBytes == 2 * one)
        #expect(store.refusals == CredentialStoreRefusals(credentialBytes: 2))
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
