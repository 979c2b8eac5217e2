import CCacheDaemon
import CredentialStore
import Glibc
import KCM
import Synchronization
import TestSupport
import Testing

/// The dispatcher answers every opcode with the status and payload MIT and Heimdal expect
/// (kcm-protocol.md §3, §5, §6.6, §15), with correct framing.
@Suite("RequestDispatcher")
struct RequestDispatcherTests {
    let missing = KCMCacheName("nope")

    @Test("replies are framed as L, transport 0, status, payload with L = 4 + payload")
    func framing() {
        let harness = DispatchHarness()
        let ok = harness.send(.getDefaultCache)
        #expect(ok.transport == 0)
        #expect(ok.status == .success)
        #expect(ok.length == UInt32(4 + ok.payload.count))
        #expect(ok.payload == Array("1000".utf8) + [0])
        let error = harness.send(.getPrincipal(name: missing))
        #expect(error.transport == 0)
        #expect(error.length == 4)
        #expect(error.payload.isEmpty)
    }

    @Test(
        "every named operation on a missing cache answers KRB5_FCC_NOFILE",
        arguments: [
            KCMRequest.destroy(name: "nope"),
            .store(name: "nope", credential: ticket("host/a@KCMTEST.LOCAL")),
            .retrieve(name: "nope", flags: .cached, template: KCMMatchTemplate(client: alice)),
            .getPrincipal(name: "nope"),
            .getCredUUIDList(name: "nope"),
            .getCredByUUID(name: "nope", uuid: KCMUUID(high: 1, low: 1)),
            .removeCred(name: "nope", flags: [], template: KCMMatchTemplate(client: alice)),
            .setFlags(name: "nope", flags: 0),
            .moveCache(from: "nope", to: "other"),
            .getKDCOffset(name: "nope"),
            .setKDCOffset(name: "nope", offset: 5),
            .getCredList(name: "nope"),
        ])
    func missingCache(request: KCMRequest) {
        let harness = DispatchHarness()
        let reply = harness.send(request)
        #expect(reply.status == .fccNoFile, "\(request.opcode!)")
        #expect(harness.store.cacheCount == 0)
    }

    @Test("GET_DEFAULT_CACHE never fails; SET_DEFAULT_CACHE accepts a name that does not exist")
    func defaultCache() {
        let harness = DispatchHarness()
        #expect(harness.send(.setDefaultCache(name: "1000:7")).status == .success)
        #expect(harness.send(.getDefaultCache).payload == Array("1000:7".utf8) + [0])
        #expect(harness.store.cacheCount == 0)
        #expect(harness.send(.setDefaultCache(name: KCMCacheName(bytes: []))).status == .ccBadName)
    }

    @Test("the empty name (Heimdal's KCM:) means the default cache; it still cannot become the default")
    func emptyNameIsTheDefault() {
        let harness = DispatchHarness()
        let empty = KCMCacheName(bytes: [])
        #expect(harness.send(.getPrincipal(name: empty)).status == .fccNoFile)
        #expect(harness.send(.initialize(name: empty, principal: alice)).status == .success)
        #expect(harness.store.cacheCount == 1)
        #expect(harness.send(.getPrincipal(name: "1000")).status == .success)
        #expect(harness.send(.store(name: empty, credential: ticket("host/a@KCMTEST.LOCAL"))).status == .success)
        #expect(harness.send(.getCredUUIDList(name: "1000")).payload.count == 16)
        #expect(harness.send(.setDefaultCache(name: "1000:2")).status == .success)
        #expect(harness.send(.getPrincipal(name: empty)).status == .fccNoFile, "now the empty name is 1000:2")
        #expect(harness.send(.setDefaultCache(name: empty)).status == .ccBadName)
        #expect(harness.send(.destroy(name: "1000")).status == .success)
    }

    @Test("unknown UUIDs answer KRB5_CC_END; an unmatched RETRIEVE answers KRB5_CC_NOTFOUND")
    func notFoundCodes() {
        let harness = DispatchHarness()
        #expect(harness.send(.initialize(name: "1000", principal: alice)).status == .success)
        #expect(harness.send(.getCacheByUUID(uuid: KCMUUID(high: 9, low: 9))).status == .ccEnd)
        #expect(harness.send(.getCredByUUID(name: "1000", uuid: KCMUUID(high: 9, low: 9))).status == .ccEnd)
        let retrieve = harness.send(
            .retrieve(name: "1000", flags: .cached, template: KCMMatchTemplate(client: alice, server: tgtServer)))
        #expect(retrieve.status == .ccNotFound)
        let remove = harness.send(
            .removeCred(name: "1000", flags: [], template: KCMMatchTemplate(client: alice, server: tgtServer)))
        #expect(remove.status == .success)
    }

    @Test(
        "MIT's RETRIEVE from a cache with a KDC time offset answers KRB5_CC_NOSUPP, so MIT iterates and applies the offset; Heimdal's RETRIEVE and offset 0 are answered"
    )
    func skewedCacheRetrieve() {
        let harness = DispatchHarness()
        let host = ticket("host/a@KCMTEST.LOCAL")
        let template = KCMMatchTemplate(client: alice, server: principal("host/a@KCMTEST.LOCAL"))
        #expect(harness.send(.initialize(name: "1000", principal: alice)).status == .success)
        #expect(harness.send(.store(name: "1000", credential: host)).status == .success)
        #expect(harness.send(.retrieve(name: "1000", flags: .cached, template: template)).status == .success)
        #expect(harness.send(.setKDCOffset(name: "1000", offset: -3600)).status == .success)
        // MIT sets KCM_GC_CACHED on every RETRIEVE; the empty name (the default) is the same cache.
        #expect(harness.send(.retrieve(name: "1000", flags: .cached, template: template)).status == .ccNoSupp)
        #expect(
            harness.send(.retrieve(name: KCMCacheName(bytes: []), flags: .cached, template: template)).status
                == .ccNoSupp)
        // Heimdal never sets it and has no fallback: it keeps its answer.
        #expect(harness.send(.retrieve(name: "1000", flags: [], template: template)).status == .success)
        // Iteration still works, and reports the offset MIT then applies.
        #expect(harness.send(.getCredList(name: "1000")).status == .success)
        #expect(harness.send(.getKDCOffset(name: "1000")).payload == [0xFF, 0xFF, 0xF1, 0xF0])
        // A cache without an offset and a missing cache answer as before.
        #expect(harness.send(.retrieve(name: "nope", flags: .cached, template: template)).status == .fccNoFile)
        #expect(harness.send(.setKDCOffset(name: "1000", offset: 0)).status == .success)
        #expect(harness.send(.retrieve(name: "1000", flags: .cached, template: template)).status == .success)
    }

    @Test(
        "unimplemented opcodes answer KRB5_FCC_INTERNAL, undecodable bodies KRB5_CC_IO",
        arguments: [
            UInt16(1), 2, 13, 14, 15, 16, 24, 25, 26, 27, 28, 29, 12999, 13000, 13003, 0x5007, 0x50FF, 0xFFFF,
        ])
    func unsupported(opcode: UInt16) {
        let harness = DispatchHarness()
        #expect(harness.send(body: [2, 0, UInt8(opcode >> 8), UInt8(opcode & 0xFF)]).status == .fccInternal)
    }

    @Test("malformed requests answer KRB5_CC_IO and change nothing")
    func malformed() {
        let harness = DispatchHarness()
        #expect(harness.send(body: []).status == .ccIO)
        #expect(harness.send(body: [2, 0, 0]).status == .ccIO)
        #expect(harness.send(body: [3, 0, 0, 20]).status == .ccIO)
        #expect(harness.send(body: [2, 0, 0, 4, 0x31]).status == .ccIO)  // INITIALIZE "1" without NUL
        // A REPLACE whose second credential is cut short must not create or touch the cache.
        var body = KCMRequest.replace(
            name: "1000", kdcOffset: 3, principal: alice,
            credentials: [ticket("host/a@KCMTEST.LOCAL"), ticket("host/b@KCMTEST.LOCAL")]
        ).encodedBody()
        body.removeLast(10)
        #expect(harness.send(body: body).status == .ccIO)
        #expect(harness.store.cacheCount == 0)
        // NOOP succeeds, minor version 1 is accepted.
        #expect(harness.send(body: [2, 0, 0, 0]).status == .success)
        #expect(harness.send(body: [2, 1, 0, 20]).status == .success)
    }

    @Test("a peer that is not authorised gets KRB5_FCC_PERM for every opcode and learns nothing")
    func unauthorised() {
        var harness = DispatchHarness()
        #expect(harness.send(.initialize(name: "1000", principal: alice)).status == .success)
        #expect(harness.send(.store(name: "1000", credential: ticket("host/a@KCMTEST.LOCAL"))).status == .success)
        harness.authorized = false
        let requests: [KCMRequest] = [
            .getDefaultCache, .getCacheUUIDList, .genNew, .getPrincipal(name: "1000"), .getCredList(name: "1000"),
            .destroy(name: "1000"), .initialize(name: "1000", principal: alice), .unsupported(opcode: 99),
            .setDefaultCache(name: "x"),
        ]
        for request in requests {
            let reply = harness.send(request)
            #expect(reply.status == .fccPerm)
            #expect(reply.payload.isEmpty)
        }
        #expect(harness.send(body: [9, 9]).status == .fccPerm)
        #expect(harness.store.cacheCount == 1)
        #expect(harness.store.credentialCount == 1)
        #expect(harness.store.defaultName == "1000")
    }

    @Test("KDC offset: set by SET_KDC_OFFSET and REPLACE, reset by INITIALIZE, returned exactly")
    func kdcOffset() {
        let harness = DispatchHarness()
        #expect(harness.send(.initialize(name: "1000", principal: alice)).status == .success)
        #expect(harness.send(.setKDCOffset(name: "1000", offset: -42)).status == .success)
        #expect(harness.send(.getKDCOffset(name: "1000")).payload == [0xFF, 0xFF, 0xFF, 0xD6])
        #expect(harness.send(.initialize(name: "1000", principal: alice)).status == .success)
        #expect(harness.send(.getKDCOffset(name: "1000")).payload == [0, 0, 0, 0])
        #expect(
            harness.send(.replace(name: "1000", kdcOffset: 300, principal: alice, credentials: [])).status == .success)
        #expect(harness.send(.getKDCOffset(name: "1000")).payload == [0, 0, 1, 0x2C])
    }

    @Test("GET_CRED_LIST returns count and length-prefixed creds in storage order")
    func credentialList() throws {
        let harness = DispatchHarness()
        let creds = [ticket("krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL"), ticket("host/a@KCMTEST.LOCAL"), ticket("http/b@")]
        #expect(
            harness.send(.replace(name: "1000", kdcOffset: 0, principal: alice, credentials: creds)).status == .success)
        let reply = harness.send(.getCredList(name: "1000"))
        #expect(reply.status == .success)
        var reader = KCMReader(reply.payload)
        #expect(try reader.readUInt32() == 3)
        for credential in creds {
            let range = try reader.readDataRange()
            #expect(Array(reader.bytes[range]) == Array(credential.bytes))
        }
        #expect(reader.remaining == 0)
        // The UUID path lists the same creds in the same order.
        let uuids = harness.send(.getCredUUIDList(name: "1000")).payload
        #expect(uuids.count == 48)
        var uuidReader = KCMReader(uuids)
        for credential in creds {
            let uuid = try uuidReader.readUUID()
            #expect(harness.send(.getCredByUUID(name: "1000", uuid: uuid)).payload == Array(credential.bytes))
        }
    }

    @Test("a GET_CRED_LIST reply over MIT's 10 MiB limit answers KRB5_CC_NOSUPP so MIT iterates instead")
    func credentialListTooLarge() {
        let harness = DispatchHarness()
        let creds = (0..<11).map { ticket("big\($0)/x@KCMTEST.LOCAL", ticketBytes: 1_000_000) }
        #expect(
            harness.send(.replace(name: "1000", kdcOffset: 0, principal: alice, credentials: creds)).status == .success)
        #expect(harness.send(.getCredList(name: "1000")).status == .ccNoSupp)
        #expect(harness.send(.getCredUUIDList(name: "1000")).payload.count == 11 * 16)
    }

    @Test("the collection: GET_CACHE_UUID_LIST lists existing caches in creation order; GEN_NEW creates none")
    func collection() throws {
        let harness = DispatchHarness()
        #expect(harness.send(.getCacheUUIDList).payload.isEmpty)
        #expect(harness.send(.genNew).payload == Array("1000:1".utf8) + [0])
        #expect(harness.send(.initialize(name: "1000", principal: alice)).status == .success)
        #expect(harness.send(.initialize(name: "1000:1", principal: alice)).status == .success)
        #expect(harness.send(.initialize(name: "mine", principal: alice)).status == .success)
        #expect(harness.send(.destroy(name: "1000:1")).status == .success)
        let list = harness.send(.getCacheUUIDList).payload
        #expect(list.count == 32)
        var reader = KCMReader(list)
        #expect(harness.send(.getCacheByUUID(uuid: try reader.readUUID())).payload == Array("1000".utf8) + [0])
        #expect(harness.send(.getCacheByUUID(uuid: try reader.readUUID())).payload == Array("mine".utf8) + [0])
        #expect(harness.send(.genNew).payload == Array("1000:2".utf8) + [0])
    }

    @Test("MOVE_CACHE moves content, destroys the source and carries the default along")
    func moveCache() {
        let harness = DispatchHarness()
        #expect(harness.send(.initialize(name: "1000:tmp", principal: alice)).status == .success)
        #expect(harness.send(.store(name: "1000:tmp", credential: ticket("host/a@KCMTEST.LOCAL"))).status == .success)
        #expect(harness.send(.setDefaultCache(name: "1000:tmp")).status == .success)
        #expect(harness.send(.moveCache(from: "1000:tmp", to: "1000")).status == .success)
        #expect(harness.send(.getPrincipal(name: "1000:tmp")).status == .fccNoFile)
        #expect(harness.send(.destroy(name: "1000:tmp")).status == .fccNoFile)
        #expect(harness.send(.getCredUUIDList(name: "1000")).payload.count == 16)
        #expect(harness.send(.getDefaultCache).payload == Array("1000".utf8) + [0])
        #expect(harness.send(.setFlags(name: "1000", flags: 1)).status == .success)
    }

    @Test(
        "CCACHED_STATUS (version 4) reports every limit, the usage against it, what it refused, the memory kind and the state file"
    )
    func daemonStatus() throws {
        let harness = DispatchHarness(
            limits: CredentialStoreLimits(maximumCaches: 2, maximumCredentialsPerCache: 3, maximumCredentialBytes: 4096)
        )
        // What the daemon counts outside the store, as its connections would have.
        harness.state.openConnections.store(2, ordering: .relaxed)
        harness.state.oversizedRequests.store(1, ordering: .relaxed)
        harness.state.refusedConnections.store(4, ordering: .relaxed)
        harness.state.stalledRequests.store(5, ordering: .relaxed)
        #expect(harness.send(.initialize(name: "1000", principal: alice)).status == .success)
        #expect(harness.send(.initialize(name: "1000:1", principal: alice)).status == .success)
        #expect(harness.send(.initialize(name: "1000:2", principal: alice)).status == .ccNoMem)
        for server in ["a/h@KCMTEST.LOCAL", "b/h@KCMTEST.LOCAL", "c/h@KCMTEST.LOCAL"] {
            #expect(harness.send(.store(name: "1000", credential: ticket(server))).status == .success)
        }
        #expect(harness.send(.store(name: "1000", credential: ticket("d/h@KCMTEST.LOCAL"))).status == .ccNoMem)
        #expect(harness.send(.store(name: "1000:1", credential: ticket("a/h@KCMTEST.LOCAL"))).status == .success)
        let large = ticket("big/h@KCMTEST.LOCAL", ticketBytes: 4096)
        #expect(harness.send(.store(name: "1000:1", credential: large)).status == .ccNoMem)
        let replace = KCMRequest.replace(name: "1000:1", kdcOffset: 0, principal: alice, credentials: [large])
        #expect(harness.send(replace).status == .ccNoMem)
        // The largest body the session saw: the REPLACE of the large ticket.
        let largest = UInt32(replace.encodedBody().count)

        let reply = harness.send(.daemonStatus)
        #expect(reply.status == .success)
        var reader = KCMReader(reply.payload)
        let status = try KCMDaemonStatus.read(from: &reader)
        #expect(reader.remaining == 0)
        #expect(reply.payload.prefix(4) == [0, 0, 0, 4])
        #expect(status.pid == UInt32(getpid()))
        #expect(status.startedAt <= UInt64(time(nil)) && status.startedAt + 600 > UInt64(time(nil)))
        let memory = status.limits
        let expected = KCMDaemonStatus(
            pid: status.pid, ownerUID: 1000, startedAt: status.startedAt, caches: 2, credentials: 4,
            credentialBytes: UInt64(harness.store.credentialBytes), connections: 2,
            idleTimeout: DaemonConfiguration.defaultIdleTimeout,
            limits: KCMDaemonStatus.Limits(
                maximumRequestBytes: DaemonConfiguration.defaultMaximumRequestLength, largestRequestBytes: largest,
                oversizedRequests: 1,
                maximumCaches: 2, cacheRefusals: 1,
                maximumCredentialsPerCache: 3, largestCacheCredentials: 3, credentialsPerCacheRefusals: 1,
                maximumCredentialBytes: 4096, credentialBytesRefusals: 2,
                maximumConnections: UInt32(DaemonConfiguration.defaultMaximumConnections), connectionRefusals: 4,
                requestTimeout: DaemonConfiguration.defaultRequestTimeout, stalledRequests: 5,
                // The process's own secure memory, whatever other tests left in it.
                credentialMemoryBytes: memory.credentialMemoryBytes, lockedMemoryBytes: memory.lockedMemoryBytes,
                memlockLimit: memory.memlockLimit, unlockedMappings: memory.unlockedMappings),
            // Ordinary memory, and no state journal attached to this harness.
            memoryKind: .anonymous, keepsStateFile: false)
        #expect(status == expected)
    }
}
