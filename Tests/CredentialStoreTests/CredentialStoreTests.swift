import CredentialStore
import KCM
import TestSupport
import Testing

/// ``CredentialStore`` has the KCM semantics of §5, §6 and §10: the `"<uid>"` default (DESTROY moves
/// it to the most recently used cache left), GEN_NEW names that create nothing, INITIALIZE/REPLACE/MOVE
/// keeping cache UUIDs, STORE replacing what it supersedes (config entries read back their new value), RETRIEVE/REMOVE_CRED
/// results, and the error each failure maps to.
@Suite("CredentialStore")
struct CredentialStoreTests {
    let store = CredentialStore(ownerUID: 1000)

    // MARK: Default name and generated names

    @Test("the default name is \"<uid>\" at first, and no cache exists")
    func initialDefault() {
        #expect(store.defaultName == "1000")
        #expect(CredentialStore(ownerUID: 0).defaultName == "0")
        #expect(store.cacheCount == 0)
        #expect(store.cacheUUIDs.isEmpty)
        #expect(storeError { try store.cache(named: "1000") } == .noSuchCache("1000"))
    }

    @Test("generateName returns \"<uid>:1\", \"<uid>:2\", … and creates nothing")
    func generateName() {
        #expect(store.generateName() == "1000:1")
        #expect(store.generateName() == "1000:2")
        #expect(store.generateName() == "1000:3")
        #expect(store.cacheCount == 0)
        #expect(store.cacheUUIDs.isEmpty)
        #expect(storeError { try store.cache(named: "1000:1") } == .noSuchCache("1000:1"))
    }

    @Test("generateName skips names of existing caches, and never repeats one it returned")
    func generateNameSkipsExisting() throws {
        try store.initialize("1000:1", principal: Fixture.alice)
        try store.initialize("1000:3", principal: Fixture.bob)
        let uuids = store.cacheUUIDs
        #expect(store.generateName() == "1000:2")
        #expect(store.generateName() == "1000:4")
        #expect(store.cacheCount == 2)
        #expect(store.cacheUUIDs == uuids)
        // A name returned earlier is not returned again, even when no cache took it.
        var seen: Set<KCMCacheName> = ["1000:2", "1000:4"]
        for _ in 0..<100 {
            let name = store.generateName()
            #expect(!seen.contains(name))
            #expect(name != "1000:1" && name != "1000:3")
            seen.insert(name)
        }
    }

    @Test("setDefault accepts a cache that does not exist, and creates nothing")
    func setDefaultNonexistent() throws {
        try store.setDefault("1000:mycache")
        #expect(store.defaultName == "1000:mycache")
        #expect(store.cacheCount == 0)
        try store.setDefault("mycache")
        #expect(store.defaultName == "mycache")
    }

    // MARK: Name validity

    static let invalidNames: [KCMCacheName] = [
        KCMCacheName(bytes: []), KCMCacheName(bytes: [UInt8](repeating: 0x61, count: 4097)),
    ]

    @Test("an empty or over-long name is refused with BADNAME", arguments: invalidNames)
    func invalidName(name: KCMCacheName) {
        let expected = CredentialStoreError.invalidName(length: name.bytes.count)
        #expect(storeError { try store.setDefault(name) } == expected)
        #expect(storeError { try store.initialize(name, principal: Fixture.alice) } == expected)
        #expect(
            storeError { try store.replace(name, principal: Fixture.alice, kdcOffset: 0, credentials: []) } == expected)
        #expect(store.defaultName == "1000")
        #expect(store.cacheCount == 0)
    }

    @Test("a 4096-byte name is allowed")
    func longestName() throws {
        let name = KCMCacheName(bytes: [UInt8](repeating: 0x61, count: 4096))
        try store.initialize(name, principal: Fixture.alice)
        try store.setDefault(name)
        #expect(try store.cache(named: name).name == name)
    }

    /// On the wire a name ends at its first NUL (§2.1), so a cache whose name contains one could never
    /// be named by a client, and GET_CACHE_BY_UUID would hand out a truncated name.
    @Test("a name containing a NUL byte is refused with BADNAME")
    func nameWithNUL() {
        let name = KCMCacheName(bytes: ascii("1000:a") + [0] + ascii("b"))
        #expect(
            storeError { try store.initialize(name, principal: Fixture.alice) }
                == .invalidName(length: name.bytes.count))
        #expect(storeError { try store.setDefault(name) } == .invalidName(length: name.bytes.count))
        #expect(store.cacheCount == 0)
    }

    @Test("moving a cache to an invalid name fails and leaves the source alone")
    func moveToInvalidName() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(ticket(), in: "1000")
        #expect(storeError { try store.move(from: "1000", to: KCMCacheName(bytes: [])) } == .invalidName(length: 0))
        #expect(try store.cache(named: "1000").credentials.count == 1)
        #expect(store.cacheCount == 1)
    }

    // MARK: INITIALIZE

    @Test("initialize creates a cache with the principal, no credentials and offset 0")
    func initializeCreates() throws {
        try store.initialize("1000", principal: Fixture.alice)
        let cache = try store.cache(named: "1000")
        #expect(cache.name == "1000")
        #expect(cache.principal == Fixture.alice)
        #expect(cache.credentials.isEmpty)
        #expect(cache.kdcOffset == 0)
        #expect(store.cacheUUIDs == [cache.uuid])
        #expect(try store.cacheName(uuid: cache.uuid) == "1000")
    }

    @Test("initialize of an existing cache keeps its UUID, replaces the principal, empties it, resets the offset")
    func initializeExisting() throws {
        try store.initialize("1000", principal: Fixture.alice)
        let cache = try store.cache(named: "1000")
        let uuid = cache.uuid
        try store.store(ticket(), in: "1000")
        try store.store(configEntry("fast_avail", "yes"), in: "1000")
        cache.kdcOffset = -17
        try store.initialize("1000", principal: Fixture.bob)
        let again = try store.cache(named: "1000")
        #expect(again.uuid == uuid)
        #expect(again.principal == Fixture.bob)
        #expect(again.credentials.isEmpty)
        #expect(again.kdcOffset == 0)
        #expect(store.cacheUUIDs == [uuid])
        #expect(store.credentialCount == 0)
        #expect(store.encodedCredentialBytes == 0)
        #expect(store.credentialBytes == again.recordBytes)
    }

    // MARK: DESTROY

    @Test("destroy removes the cache and its UUID; the default falls back to the cache that remains")
    func destroy() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.initialize("1000:1", principal: Fixture.bob)
        try store.store(ticket(), in: "1000")
        let uuid = try store.cache(named: "1000").uuid
        try store.destroy("1000")
        #expect(storeError { try store.cache(named: "1000") } == .noSuchCache("1000"))
        #expect(storeError { try store.cacheName(uuid: uuid) } == .unknownUUID(uuid))
        #expect(store.defaultName == "1000:1")
        #expect(store.cacheCount == 1)
        #expect(store.cacheUUIDs == [try store.cache(named: "1000:1").uuid])
        #expect(store.credentialCount == 0)
    }

    @Test(
        "destroying the default with other caches left makes the most recently used one the default (sssd-kcm, Heimdal); the last cache leaves its name"
    )
    func destroyDefault() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.initialize("1000:1", principal: Fixture.bob)
        try store.initialize("1000:2", principal: Fixture.bob)
        // 1000:1 used last (a kvno storing a service ticket), 1000:2 created after it.
        try store.store(ticket(), in: "1000:1")
        // Reading and listing are not uses: klist -A walks every cache.
        _ = try store.cache(named: "1000:2").credentials.uuids
        _ = try store.cache(named: "1000:2").principal
        let before = store.journal.counter
        try store.destroy("1000")
        #expect(store.defaultName == "1000:1")
        #expect(store.journal.counter == before + 2, "destroyed, then the default switched")
        // RETRIEVE is a use (kvno, GSSAPI); the other cache becomes the fallback.
        try store.setDefault("1000:1")
        _ = storeError { try store.retrieve(from: "1000:2", matching: serverMatcher(Fixture.host)) }
        try store.destroy("1000:1")
        #expect(store.defaultName == "1000:2")
        // Destroying a cache that is not the default leaves the default alone.
        try store.initialize("1000:3", principal: Fixture.alice)
        try store.destroy("1000:3")
        #expect(store.defaultName == "1000:2")
        // The last cache: nothing to fall back to, the name stays (kinit re-creates it).
        try store.destroy("1000:2")
        #expect(store.defaultName == "1000:2")
        #expect(storeError { try store.cache(named: store.defaultName) } == .noSuchCache("1000:2"))
    }

    @Test("kswitch to a cache counts as its use: destroying the new default falls back to the one switched from")
    func switchIsUse() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.initialize("1000:1", principal: Fixture.bob)
        try store.initialize("1000:2", principal: Fixture.bob)
        try store.setDefault("1000")
        try store.setDefault("1000:1")
        try store.destroy("1000:1")
        #expect(store.defaultName == "1000")
    }

    @Test("a default that names no cache stays as it is when another cache is destroyed")
    func danglingDefaultStays() throws {
        try store.initialize("1000:1", principal: Fixture.bob)
        try store.initialize("1000:2", principal: Fixture.bob)
        try store.setDefault("1000:9")
        try store.destroy("1000:1")
        #expect(store.defaultName == "1000:9")
    }

    @Test("destroy of a missing cache throws noSuchCache (FCC_NOFILE)")
    func destroyMissing() throws {
        let error = storeError { try store.destroy("1000") }
        #expect(error == .noSuchCache("1000"))
        try store.initialize("1000", principal: Fixture.alice)
        try store.destroy("1000")
        #expect(storeError { try store.destroy("1000") } == .noSuchCache("1000"))
    }

    @Test("a destroyed name can be created again, with a new UUID")
    func recreate() throws {
        try store.initialize("1000", principal: Fixture.alice)
        let first = try store.cache(named: "1000").uuid
        try store.destroy("1000")
        try store.initialize("1000", principal: Fixture.alice)
        let second = try store.cache(named: "1000").uuid
        #expect(first != second)
        #expect(store.cacheUUIDs == [second])
    }

    @Test("cacheUUIDs lists caches in creation order, without destroyed ones")
    func cacheOrder() throws {
        let names: [KCMCacheName] = ["1000:b", "1000", "1000:a", "x", "1000:c"]
        for name in names { try store.initialize(name, principal: Fixture.alice) }
        var expected = try names.map { try store.cache(named: $0).uuid }
        #expect(store.cacheUUIDs == expected)
        try store.destroy("1000:a")
        try store.destroy("1000:b")
        expected.removeAll { (try? store.cacheName(uuid: $0)) == nil }
        #expect(store.cacheUUIDs == expected)
        #expect(try store.cacheUUIDs.map { try store.cacheName(uuid: $0) } == ["1000", "x", "1000:c"])
        // Re-initializing keeps the position; replace of a new name goes last.
        try store.initialize("1000", principal: Fixture.bob)
        try store.replace("1000:z", principal: Fixture.bob, kdcOffset: 0, credentials: [])
        #expect(try store.cacheUUIDs.map { try store.cacheName(uuid: $0) } == ["1000", "x", "1000:c", "1000:z"])
    }

    // MARK: REPLACE

    @Test("replace creates an absent cache with principal, offset and credentials in order")
    func replaceCreates() throws {
        let credentials = [configEntry("fast_avail", "yes"), ticket(server: Fixture.krbtgt), ticket()]
        try store.replace("1000", principal: Fixture.alice, kdcOffset: 42, credentials: credentials)
        let cache = try store.cache(named: "1000")
        #expect(cache.principal == Fixture.alice)
        #expect(cache.kdcOffset == 42)
        let stored = entries(of: cache.credentials).map(\.credential.bytes)
        #expect(stored == credentials.map(\.bytes))
        #expect(Set(cache.credentials.uuids).count == 3)
        #expect(store.cacheUUIDs == [cache.uuid])
    }

    @Test("replace of an existing cache keeps its UUID and gives every credential a fresh UUID")
    func replaceExisting() throws {
        try store.initialize("1000", principal: Fixture.alice)
        let cacheUUID = try store.cache(named: "1000").uuid
        try store.store(ticket(), in: "1000")
        try store.store(configEntry("pa_type", "2"), in: "1000")
        let oldUUIDs = try store.cache(named: "1000").credentials.uuids
        // The very same credential bytes come back in the replacement.
        let replacement = [ticket(), ticket(server: Fixture.krbtgt)]
        try store.replace("1000", principal: Fixture.bob, kdcOffset: -5, credentials: replacement)
        let cache = try store.cache(named: "1000")
        #expect(cache.uuid == cacheUUID)
        #expect(cache.principal == Fixture.bob)
        #expect(cache.kdcOffset == -5)
        let newUUIDs = cache.credentials.uuids
        #expect(newUUIDs.count == 2)
        #expect(Set(newUUIDs).isDisjoint(with: oldUUIDs))
        for old in oldUUIDs {
            #expect(storeError { try store.credential(in: "1000", uuid: old) } == .unknownUUID(old))
        }
        #expect(try newUUIDs.map { try store.credential(in: "1000", uuid: $0).bytes } == replacement.map(\.bytes))
        #expect(store.cacheCount == 1)
    }

    @Test("replace keeps duplicates exactly as given (no de-duplication)")
    func replaceKeepsDuplicates() throws {
        try store.replace(
            "1000", principal: Fixture.alice, kdcOffset: 0, credentials: [ticket(endtime: 1), ticket(endtime: 2)])
        #expect(try store.cache(named: "1000").credentials.count == 2)
    }

    // MARK: STORE and de-duplication

    @Test("store appends in order and needs an existing cache")
    func storeAppends() throws {
        #expect(storeError { try store.store(ticket(), in: "1000") } == .noSuchCache("1000"))
        try store.initialize("1000", principal: Fixture.alice)
        let credentials = [ticket(server: Fixture.krbtgt), ticket(), configEntry("pa_type", "2")]
        for credential in credentials { try store.store(credential, in: "1000") }
        let cache = try store.cache(named: "1000")
        #expect(
            try cache.credentials.uuids.map { try store.credential(in: "1000", uuid: $0).bytes }
                == credentials.map(\.bytes))
        #expect(store.credentialCount == 3)
        #expect(store.encodedCredentialBytes == credentials.reduce(0) { $0 + $1.bytes.count })
        #expect(store.credentialBytes == store.encodedCredentialBytes + cache.recordBytes)
    }

    @Test("set_config twice then get_config reads the NEW value, and one entry remains (MIT #9178)")
    func configEntryReplaced() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(ticket(server: Fixture.krbtgt), in: "1000")
        try store.store(configEntry("pa_config_data", "first"), in: "1000")
        try store.store(ticket(), in: "1000")
        try store.store(configEntry("pa_config_data", "second"), in: "1000")
        #expect(ticketText(try store.retrieve(from: "1000", matching: configLookup("pa_config_data"))) == "second")
        let cache = try store.cache(named: "1000")
        #expect(cache.credentials.count == 3)
        let values = entries(of: cache.credentials).map(\.credential).filter(\.isConfigEntry).map(ticketText)
        #expect(values == ["second"])
    }

    @Test("config entries with different keys, or for a different client, are kept apart")
    func configEntriesApart() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(configEntry("fast_avail", "yes"), in: "1000")
        try store.store(configEntry("pa_type", "2"), in: "1000")
        try store.store(configEntry("pa_type", "3", client: Fixture.bob), in: "1000")
        #expect(try store.cache(named: "1000").credentials.count == 3)
        #expect(ticketText(try store.retrieve(from: "1000", matching: configLookup("pa_type"))) == "2")
        #expect(
            ticketText(try store.retrieve(from: "1000", matching: configLookup("pa_type", client: Fixture.bob))) == "3")
        #expect(ticketText(try store.retrieve(from: "1000", matching: configLookup("fast_avail"))) == "yes")
    }

    @Test("a new ticket for the same client and server replaces the old one")
    func ticketReplaced() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(ticket(endtime: Fixture.now - 10, ticket: [1]), in: "1000")
        try store.store(
            ticket(
                server: principal("host/server.kcmtest.local@KCMTEST.LOCAL", nameType: 1), endtime: Fixture.now + 10,
                ticket: [2]), in: "1000")
        let cache = try store.cache(named: "1000")
        #expect(cache.credentials.count == 1)
        let lookup = CredentialMatcher(
            flags: KCMMatchFlags(rawValue: 0x0300_0001),
            template: KCMMatchTemplate(
                client: Fixture.alice, server: Fixture.host, times: KCMTicketTimes(endtime: Fixture.now)))
        #expect(Array(try store.retrieve(from: "1000", matching: lookup).ticket) == [2])
    }

    @Test(
        "tickets that differ in client, server realm or is_skey are kept apart",
        arguments: [
            ("client", ticket(client: Fixture.bob)),
            ("server realm", ticket(server: principal("host/server.kcmtest.local@OTHER.REALM", nameType: 3))),
            ("server name", ticket(server: principal("host/other.kcmtest.local@KCMTEST.LOCAL", nameType: 3))),
            ("is_skey and second ticket", ticket(isSKey: 1, secondTicket: [0x61, 0x00])),
            ("is_skey alone", ticket(isSKey: 1)),
            ("second ticket alone", ticket(secondTicket: [0x61, 0x00])),
        ])
    func ticketsApart(difference: String, other: KCMCredential) throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(ticket(), in: "1000")
        try store.store(other, in: "1000")
        let cache = try store.cache(named: "1000")
        #expect(cache.credentials.count == 2, "differing \(difference)")
        let stored = entries(of: cache.credentials).map(\.credential.bytes)
        #expect(stored == [ticket().bytes, other.bytes])
    }

    // MARK: RETRIEVE, REMOVE_CRED, GET_CRED_BY_UUID

    @Test("retrieve returns the first match; no match is CC_NOTFOUND; a missing cache is FCC_NOFILE")
    func retrieve() throws {
        #expect(storeError { try store.retrieve(from: "1000", matching: configLookup("x")) } == .noSuchCache("1000"))
        try store.initialize("1000", principal: Fixture.alice)
        let error = storeError { try store.retrieve(from: "1000", matching: configLookup("start_realm")) }
        #expect(error == .noMatchingCredential)
        try store.store(ticket(client: Fixture.alice, ticket: [1]), in: "1000")
        try store.store(ticket(client: Fixture.bob, ticket: [2]), in: "1000")
        let anyClient = serverMatcher(Fixture.host)
        #expect(Array(try store.retrieve(from: "1000", matching: anyClient).ticket) == [1])
    }

    @Test("removeCredentials removes every match and returns the count; none matched is not an error")
    func removeCredentials() throws {
        #expect(
            storeError { try store.removeCredentials(from: "1000", matching: configLookup("x")) }
                == .noSuchCache("1000"))
        try store.initialize("1000", principal: Fixture.alice)
        #expect(try store.removeCredentials(from: "1000", matching: configLookup("start_realm")) == 0)
        try store.store(ticket(client: Fixture.alice), in: "1000")
        try store.store(ticket(client: Fixture.bob), in: "1000")
        try store.store(ticket(server: Fixture.krbtgt), in: "1000")
        try store.store(configEntry("start_realm", "R"), in: "1000")
        #expect(try store.removeCredentials(from: "1000", matching: serverMatcher(Fixture.host)) == 2)
        #expect(try store.removeCredentials(from: "1000", matching: serverMatcher(Fixture.host)) == 0)
        // set_config(key, NULL): flags 0, client + server.
        let unset = CredentialMatcher(
            flags: [], template: KCMMatchTemplate(client: Fixture.alice, server: configServer("start_realm")))
        #expect(try store.removeCredentials(from: "1000", matching: unset) == 1)
        #expect(
            storeError { try store.retrieve(from: "1000", matching: configLookup("start_realm")) }
                == .noMatchingCredential)
        #expect(store.credentialCount == 1)
    }

    @Test("credential(in:uuid:) finds by UUID; unknown UUIDs and other caches' UUIDs are CC_END")
    func credentialByUUID() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.initialize("1000:1", principal: Fixture.bob)
        try store.store(ticket(ticket: [7]), in: "1000")
        try store.store(ticket(client: Fixture.bob, ticket: [8]), in: "1000:1")
        let mine = try #require(try store.cache(named: "1000").credentials.uuids.first)
        let theirs = try #require(try store.cache(named: "1000:1").credentials.uuids.first)
        #expect(Array(try store.credential(in: "1000", uuid: mine).ticket) == [7])
        let unknown = KCMUUID(high: 0, low: 0)
        #expect(storeError { try store.credential(in: "1000", uuid: unknown) } == .unknownUUID(unknown))
        #expect(storeError { try store.credential(in: "1000", uuid: theirs) } == .unknownUUID(theirs))
        #expect(storeError { try store.credential(in: "1000", uuid: try store.cache(named: "1000").uuid) } != nil)
        #expect(storeError { try store.credential(in: "nope", uuid: mine) } == .noSuchCache("nope"))
    }

    // MARK: MOVE_CACHE

    @Test("move to a new name transfers principal, credentials and offset, and destroys the source")
    func moveToNew() throws {
        try store.initialize("1000:tmp", principal: Fixture.alice)
        let source = try store.cache(named: "1000:tmp")
        source.kdcOffset = 77
        try store.store(ticket(server: Fixture.krbtgt), in: "1000:tmp")
        try store.store(ticket(), in: "1000:tmp")
        let credentialUUIDs = source.credentials.uuids
        try store.move(from: "1000:tmp", to: "1000")
        #expect(storeError { try store.cache(named: "1000:tmp") } == .noSuchCache("1000:tmp"))
        #expect(storeError { try store.cacheName(uuid: source.uuid) } == .unknownUUID(source.uuid))
        let destination = try store.cache(named: "1000")
        #expect(destination.principal == Fixture.alice)
        #expect(destination.kdcOffset == 77)
        #expect(destination.credentials.uuids == credentialUUIDs)
        #expect(store.cacheCount == 1)
        #expect(store.cacheUUIDs == [destination.uuid])
        #expect(store.credentialCount == 2)
    }

    @Test("move onto an existing cache keeps the destination's UUID and replaces its contents")
    func moveToExisting() throws {
        try store.initialize("1000", principal: Fixture.bob)
        try store.store(ticket(client: Fixture.bob), in: "1000")
        try store.store(configEntry("fast_avail", "yes", client: Fixture.bob), in: "1000")
        let destinationUUID = try store.cache(named: "1000").uuid
        try store.initialize("1000:1", principal: Fixture.alice)
        try store.store(ticket(ticket: [9]), in: "1000:1")
        try store.move(from: "1000:1", to: "1000")
        let destination = try store.cache(named: "1000")
        #expect(destination.uuid == destinationUUID)
        #expect(destination.principal == Fixture.alice)
        #expect(destination.kdcOffset == 0)
        #expect(destination.credentials.count == 1)
        #expect(Array(try store.retrieve(from: "1000", matching: serverMatcher(Fixture.host)).ticket) == [9])
        #expect(store.cacheUUIDs == [destinationUUID])
        #expect(store.credentialCount == 1)
    }

    @Test("a default that named the source now names the destination; another default is left alone")
    func moveUpdatesDefault() throws {
        try store.initialize("1000:1", principal: Fixture.alice)
        try store.setDefault("1000:1")
        try store.move(from: "1000:1", to: "1000:2")
        #expect(store.defaultName == "1000:2")
        try store.initialize("1000:3", principal: Fixture.alice)
        try store.move(from: "1000:3", to: "1000:4")
        #expect(store.defaultName == "1000:2")
    }

    @Test("move of a missing source throws noSuchCache and creates nothing")
    func moveMissing() {
        #expect(storeError { try store.move(from: "1000:1", to: "1000") } == .noSuchCache("1000:1"))
        #expect(storeError { try store.move(from: "1000:1", to: "1000:1") } == .noSuchCache("1000:1"))
        #expect(store.cacheCount == 0)
    }

    @Test("move to itself is a successful no-op")
    func moveToItself() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.store(ticket(), in: "1000")
        let uuid = try store.cache(named: "1000").uuid
        try store.move(from: "1000", to: "1000")
        let cache = try store.cache(named: "1000")
        #expect(cache.uuid == uuid)
        #expect(cache.credentials.count == 1)
        #expect(cache.principal == Fixture.alice)
        #expect(store.cacheUUIDs == [uuid])
    }

    // MARK: Everything at once

    @Test("destroyAll empties everything and resets the default to \"<uid>\"")
    func destroyAll() throws {
        try store.initialize("1000", principal: Fixture.alice)
        try store.initialize("1000:1", principal: Fixture.bob)
        try store.store(ticket(), in: "1000")
        try store.setDefault("1000:1")
        let uuids = store.cacheUUIDs
        store.destroyAll()
        #expect(store.cacheCount == 0)
        #expect(store.cacheUUIDs.isEmpty)
        #expect(store.credentialCount == 0)
        #expect(store.credentialBytes == 0)
        #expect(store.defaultName == "1000")
        for uuid in uuids { #expect(storeError { try store.cacheName(uuid: uuid) } == .unknownUUID(uuid)) }
        #expect(storeError { try store.cache(named: "1000:1") } == .noSuchCache("1000:1"))
    }

    @Test("credentialCount, credentialBytes and cacheCount total over every cache")
    func totals() throws {
        var bytes = 0
        for (index, name) in ["1000", "1000:1", "1000:2"].enumerated() {
            try store.initialize(KCMCacheName(name), principal: Fixture.alice)
            for n in 0...index {
                let credential = ticket(server: principal("host/h\(n)@KCMTEST.LOCAL"))
                try store.store(credential, in: KCMCacheName(name))
                bytes += credential.bytes.count
            }
        }
        #expect(store.cacheCount == 3)
        #expect(store.credentialCount == 6)
        #expect(store.encodedCredentialBytes == bytes)
        let records = try ["1000", "1000:1", "1000:2"].reduce(0) {
            try $0 + store.cache(named: KCMCacheName($1)).recordBytes
        }
        #expect(store.credentialBytes == bytes + records)
        try store.destroy("1000:2")
        #expect(store.cacheCount == 2)
        #expect(store.credentialCount == 3)
    }

    @Test("cache and credential UUIDs of one store are all distinct and never all-zero")
    func storeUUIDs() throws {
        var all: [KCMUUID] = []
        for cache in 0..<5 {
            let name = KCMCacheName("1000:\(cache)")
            try store.initialize(name, principal: Fixture.alice)
            for n in 0..<5 { try store.store(ticket(server: principal("host/h\(n)@R")), in: name) }
            try store.replace(name, principal: Fixture.alice, kdcOffset: 0, credentials: [ticket(), ticket()])
            all += try store.cache(named: name).credentials.uuids
        }
        all += store.cacheUUIDs
        #expect(all.count == 15)
        #expect(Set(all).count == all.count)
        #expect(!all.contains(KCMUUID(high: 0, low: 0)))
    }

    // Each error's krb5 code is the daemon's to choose: RequestFailureTests checks the mapping.
    static let errorTable: [(error: CredentialStoreError, mentions: String)] = [
        (.noSuchCache("1000:x"), "1000:x"),
        (.noMatchingCredential, "no matching credential"),
        (.unknownUUID(KCMUUID(high: 1, low: 2)), "UUID"),
        (.invalidName(length: 4097), "4097"),
        (.limitReached(.caches, limit: 7), "7 caches"),
    ]

    @Test("each error names what failed", arguments: errorTable)
    func errors(error: CredentialStoreError, mentions: String) {
        #expect(error.description.contains(mentions))
    }
}
