import CredentialStore
import KCM
import TestSupport
import Testing

/// `replaceRenewed` swaps exactly one credential, keeps every UUID, the order, the cache's identity
/// and the default, and refuses stale or mismatched results.
@Suite("CredentialStore.replaceRenewed")
struct CredentialStoreRenewalTests {
    let store = CredentialStore(ownerUID: 1000)
    let tgt = ticket(server: Fixture.krbtgt, renewTill: Fixture.now + 86_400)
    let renewed = ticket(
        server: Fixture.krbtgt, starttime: Fixture.now + 24_000, endtime: Fixture.now + 60_000,
        renewTill: Fixture.now + 86_400, ticket: [9, 9, 9])

    init() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(configEntry("fast_avail", "yes"), in: "1000")
        try store.store(tgt, in: "1000")
        try store.store(ticket(server: Fixture.host), in: "1000")
        try store.initialize("1000:1", principal: Fixture.bob)
        try store.setDefault("1000:1")
    }

    var cache: CredentialCache { try! store.cache(named: "1000") }

    @Test("the renewed ticket takes the old one's place, UUID and position; nothing else changes")
    func replaces() throws {
        let before = entries(of: cache.credentials)
        let counter = store.journal.counter
        let result = try store.replaceRenewed(
            cacheUUID: cache.uuid, credentialUUID: before[1].uuid, original: tgt, renewed: renewed)
        #expect(result == .replaced)
        let after = entries(of: cache.credentials)
        #expect(after.map(\.uuid) == before.map(\.uuid))
        #expect(after[1].credential.times.endtime == Fixture.now + 60_000)
        #expect(after[1].credential.bytes == renewed.bytes)
        #expect(after[0].credential.bytes == before[0].credential.bytes)
        #expect(after[2].credential.bytes == before[2].credential.bytes)
        #expect(store.defaultName == "1000:1")
        #expect(cache.principal == Fixture.alice)
        #expect(store.cacheUUIDs.count == 2)
        #expect(
            store.journal.changes(after: counter)
                == .changes([.init(counter: counter + 1, kind: .credentialsRenewed, cacheName: "1000")]))
        #expect(
            store.encodedCredentialBytes == before.reduce(0) { $0 + $1.credential.bytes.count } - tgt.bytes.count
                + renewed.bytes.count)
    }

    @Test("a ticket replaced by the user meanwhile is kept; the renewal is dropped")
    func superseded() throws {
        let uuid = entries(of: cache.credentials)[1].uuid
        try store.store(ticket(server: Fixture.krbtgt, ticket: [7]), in: "1000")
        #expect(
            try store.replaceRenewed(cacheUUID: cache.uuid, credentialUUID: uuid, original: tgt, renewed: renewed)
                == .credentialSuperseded)
        // Same UUID but other bytes (cannot happen today, but the check is on the bytes).
        let current = entries(of: cache.credentials).last!
        #expect(
            try store.replaceRenewed(
                cacheUUID: cache.uuid, credentialUUID: current.uuid, original: tgt, renewed: renewed)
                == .credentialSuperseded)
    }

    @Test("a destroyed cache, or a renewal for another client or server, changes nothing")
    func goneOrMismatched() throws {
        let cacheUUID = cache.uuid
        let uuid = entries(of: cache.credentials)[1].uuid
        let other = ticket(client: Fixture.bob, server: Fixture.krbtgt)
        #expect(
            try store.replaceRenewed(cacheUUID: cacheUUID, credentialUUID: uuid, original: tgt, renewed: other)
                == .mismatch)
        let counter = store.journal.counter
        try store.destroy("1000")
        #expect(
            try store.replaceRenewed(cacheUUID: cacheUUID, credentialUUID: uuid, original: tgt, renewed: renewed)
                == .cacheGone)
        #expect(store.journal.counter == counter + 1)
    }
}
