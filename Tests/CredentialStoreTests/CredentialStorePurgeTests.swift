import CredentialStore
import KCM
import TestSupport
import Testing

/// The purge of expired tickets and ticketless caches: it never touches a valid ticket, a config
/// entry, or a cache that was just created.
@Suite("CredentialStore purge")
struct CredentialStorePurgeTests {
    func credential(_ server: String, endtime: UInt32) -> KCMCredential {
        KCMCredentialFields(
            client: KCMPrincipal("alice@R"), server: KCMPrincipal(server), key: [1],
            times: KCMTicketTimes(endtime: endtime), ticket: [7]
        ).credential()
    }

    @Test("tickets expired longer ago than the grace go; valid ones, config entries and endtime 0 stay")
    func expiredTickets() throws {
        let store = CredentialStore(ownerUID: 1000)
        try store.initialize("a", principal: KCMPrincipal("alice@R"))
        try store.store(credential("old/h@R", endtime: 1000), in: "a")
        try store.store(credential("recent/h@R", endtime: 9_500), in: "a")
        try store.store(credential("valid/h@R", endtime: 20_000), in: "a")
        try store.store(credential("krb5_ccache_conf_data/fast_avail@X-CACHECONF:", endtime: 0), in: "a")
        try store.store(credential("forever/h@R", endtime: 0), in: "a")
        let result = store.purge(now: 10_000, grace: 600)
        #expect(result == CredentialStore.PurgeResult(credentials: 1, caches: 0))
        let servers = try store.cache(named: "a").credentials.uuids.map {
            try store.credential(in: "a", uuid: $0).decodeFields().server.description
        }
        #expect(servers == ["recent/h@R", "valid/h@R", "krb5_ccache_conf_data/fast_avail@X-CACHECONF:", "forever/h@R"])
    }

    @Test("a cache without tickets goes only after a later purge finds it still ticketless past the grace")
    func ticketlessCaches() throws {
        let store = CredentialStore(ownerUID: 1000)
        try store.initialize("fresh", principal: KCMPrincipal("alice@R"))
        try store.initialize("stale", principal: KCMPrincipal("alice@R"))
        try store.store(credential("krbtgt/R@R", endtime: 1000), in: "stale")
        try store.store(credential("krb5_ccache_conf_data/pa_type@X-CACHECONF:", endtime: 0), in: "stale")
        try store.setDefault("stale")
        // First look: the expired TGT goes; both caches are now ticketless, but only just noticed.
        #expect(store.purge(now: 10_000, grace: 600) == CredentialStore.PurgeResult(credentials: 1, caches: 0))
        #expect(store.cacheCount == 2)
        // The user stores a ticket into "fresh" meanwhile: it is no longer a leftover.
        try store.store(credential("host/h@R", endtime: 50_000), in: "fresh")
        #expect(store.purge(now: 10_300, grace: 600) == CredentialStore.PurgeResult(credentials: 0, caches: 0))
        #expect(store.purge(now: 10_700, grace: 600) == CredentialStore.PurgeResult(credentials: 0, caches: 1))
        #expect(store.cacheNames == ["fresh"])
        // The purged default falls back to the cache left, as after a DESTROY.
        #expect(store.defaultName == "fresh")
    }
}
