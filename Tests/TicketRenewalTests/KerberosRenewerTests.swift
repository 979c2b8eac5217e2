import CredentialStore
import Foundation
import Glibc
import KCM
import Krb5Caches
import SecureMemory
import Synchronization
import TestSupport
import Testing

@testable import TicketRenewal

/// KerberosRenewer against a real MIT KDC with tickets from the real `kinit`.
@Suite("KerberosRenewer with a real KDC", .serialized)
final class KerberosRenewerTests {
    let kdc: TestKDC
    /// libkrb5 with the test realm's configuration, for the caches `kinit` writes.
    let krb5: Krb5Library

    init() throws {
        kdc = try TestKDC()
        krb5 = try Krb5Library(configuration: kdc.configuration)
    }
    deinit { kdc.shutdown() }

    /// The cache's ticket-granting ticket (config entries skipped).
    func tgt(in cache: String) throws -> KCMCredential {
        let credentials = try krb5.read(cache: "FILE:" + cache).credentials
        guard let tgt = credentials.first(where: { !$0.isConfigEntry && RenewalTimes($0).isTicketGrantingTicket })
        else { throw TestbedError.setup("no TGT in \(cache): \(credentials.count) credentials") }
        return tgt
    }

    /// TGS requests for the realm's TGT in the KDC log: renewals (a client asks for krbtgt itself).
    func tgtRequests() -> [Substring] {
        kdc.log.split(separator: "\n").filter {
            $0.contains("TGS_REQ") && $0.contains("for krbtgt/CCACHED.TEST@CCACHED.TEST")
        }
    }

    @Test(
        "kinit -l 20s -r 5m, renewed: later start and end, same authtime and renew-till, the KDC saw a TGS renewal, kvno works with it"
    )
    func renewsTGT() throws {
        let cache = try kdc.kinit("alice", ["-l", "20s", "-r", "5m"])
        let original = try tgt(in: cache)
        let times = RenewalTimes(original)
        #expect(times.isRenewable)
        #expect(original.times.endtime - original.times.starttime == 20)
        let before = tgtRequests().count
        sleep(2)  // the KDC's clock has second resolution: the renewed start must be later

        let result = KerberosRenewer(configurationPath: kdc.configuration).renew(original, kdcOffset: 0)
        let renewed = try result.get()
        #expect(renewed.times.starttime > original.times.starttime)
        #expect(renewed.times.endtime > original.times.endtime)
        #expect(renewed.times.authtime == original.times.authtime)
        #expect(renewed.times.renewTill == original.times.renewTill)
        #expect(renewed.clientKey.bytesEqual(original.clientKey))
        #expect(renewed.serverKey.bytesEqual(original.serverKey))
        #expect(!renewed.ticket.bytesEqual(original.ticket))
        #expect(renewed.ticketFlags & RenewalTimes.renewableFlag != 0)
        let requests = tgtRequests()
        #expect(requests.count == before + 1, "KDC log:\n\(kdc.log)")
        print("KDC log line for the renewal: \(requests.last ?? "none")")

        // The renewed TGT works: kvno gets a service ticket with it and nothing else.
        let renewedCache = "FILE:" + cache + ".renewed"
        try krb5.write(cache: renewedCache, principal: renewed.decodeFields().client, credentials: [renewed])
        let kvno = try kdc.run(["kvno", "-c", renewedCache, "host/localhost"])
        #expect(kvno.succeeded, "\(kvno)")
        // Our encoder writes what libkrb5's marshaller writes, byte for byte: libkrb5 reads the
        // renewed ticket back from the FILE cache (beside kvno's service ticket) and marshals it to
        // the same bytes.
        let reread = try krb5.read(cache: renewedCache).credentials
        #expect(
            reread.contains { $0.bytes == renewed.bytes }, "the renewed ticket's encoding differs from libkrb5's")
        #expect(try renewed.decodeFields().key.count == 32, "an aes256 session key")
    }

    @Test("kinit's tickets in a store: the scheduler renews the TGT through the KDC into the store, default unchanged")
    func renewsIntoStore() throws {
        let cache = try kdc.kinit("alice", ["-l", "20s", "-r", "5m"])
        let credentials = try krb5.read(cache: "FILE:" + cache).credentials
        let store = LockedStore()
        try store.withLock { store in
            try store.replace(
                "1000:1", principal: KCMPrincipal("alice@CCACHED.TEST"), kdcOffset: 0, credentials: credentials)
            try store.initialize("1000", principal: KCMPrincipal("bob@CCACHED.TEST"))
            try store.setDefault("1000")
        }
        let original = try tgt(in: cache)
        let scheduler = RenewalScheduler(
            policy: try RenewalPolicy(), renewer: KerberosRenewer(configurationPath: kdc.configuration),
            apply: { result in store.withLock { result.apply(to: $0) } })
        defer { scheduler.shutdown() }
        // A 20 s ticket is due at half-life: tick until it has been renewed (at most 20 s).
        var renewed: KCMCredential?
        for _ in 0..<200 {
            scheduler.tick(now: UInt32(time(nil)), candidates: store.withLock { $0.renewalCandidates() })
            scheduler.waitUntilIdle()
            renewed = store.withLock { store in
                store.renewalCandidates(in: "1000:1").first { $0.credential.times.endtime > original.times.endtime }?
                    .credential
            }
            if renewed != nil { break }
            usleep(100_000)
        }
        let ticket = try #require(renewed, "no renewal within 20 s; KDC log:\n\(kdc.log)")
        #expect(ticket.times.starttime > original.times.starttime)
        #expect(ticket.times.starttime >= original.times.starttime + 10)  // not before half-life
        #expect(store.withLock { $0.defaultName } == "1000")
        #expect(store.withLock { $0.cacheUUIDs.count } == 2)
        #expect(store.withLock { try! $0.cache(named: "1000:1").credentials.count } == credentials.count)
    }

    @Test("a renewable service ticket is renewed too")
    func renewsServiceTicket() throws {
        let cache = try kdc.kinit("bob", ["-l", "1h", "-r", "5m"])
        let kvno = try kdc.run(["kvno", "-c", "FILE:" + cache, "host/localhost"])
        #expect(kvno.succeeded, "\(kvno)")
        let credentials = try krb5.read(cache: "FILE:" + cache).credentials
        let service = try #require(
            credentials.first { !$0.isConfigEntry && !RenewalTimes($0).isTicketGrantingTicket })
        #expect(RenewalTimes(service).isRenewable, "kvno's ticket flags: \(String(service.ticketFlags, radix: 16))")
        sleep(1)
        let renewed = try KerberosRenewer(configurationPath: kdc.configuration).renew(service, kdcOffset: 0).get()
        #expect(renewed.serverKey.bytesEqual(service.serverKey))
        #expect(renewed.times.starttime > service.times.starttime)
    }

    @Test("renew_till reached: the last renewal ends at renew_till and the policy stops there")
    func renewTillReached() throws {
        let cache = try kdc.kinit("carol", ["-l", "20s", "-r", "24s"])
        let original = try tgt(in: cache)
        #expect(original.times.renewTill > original.times.endtime)
        let policy = try RenewalPolicy()
        let now = UInt32(time(nil))
        guard case .due = policy.decide(RenewalTimes(original), now: now) else {
            Issue.record("a fresh renewable ticket must be due at some point")
            return
        }
        sleep(5)
        let renewed = try KerberosRenewer(configurationPath: kdc.configuration).renew(original, kdcOffset: 0).get()
        #expect(renewed.times.endtime == original.times.renewTill)
        #expect(policy.decide(RenewalTimes(renewed), now: UInt32(time(nil))) == .never(.renewTillReached))
    }

    @Test("KDC stopped: a clear error, the scheduler backs off; KDC back: the next attempt succeeds")
    func kdcDownThenBack() throws {
        let cache = try kdc.kinit("alice", ["-l", "1h", "-r", "2h"])
        let original = try tgt(in: cache)
        sleep(1)  // the KDC's clock has second resolution: the renewed end must be later
        kdc.stop()

        let direct = KerberosRenewer(configurationPath: kdc.configuration).renew(original, kdcOffset: 0)
        guard case .failure(let error) = direct else {
            Issue.record("renewal succeeded with the KDC stopped")
            return
        }
        print("renewal with the KDC stopped: \(error.message)")
        #expect(error.message.contains("Cannot contact any KDC for realm 'CCACHED.TEST'"))
        #expect(error.message.contains("alice@CCACHED.TEST"))
        #expect(error.code != 0)
        #expect(!error.isPermanent)

        let results = Mutex<[RenewalResult]>([])
        let counting = CountingRenewer(KerberosRenewer(configurationPath: kdc.configuration))
        // The scheduler's clock runs 50 minutes ahead (the ticket lives an hour), so the ticket is due;
        // the KDC keeps the real time.
        let shift = Int(original.times.starttime) + 3000 - Int(time(nil))
        let clock: @Sendable () -> UInt32 = { UInt32(Int(time(nil)) + shift) }
        let scheduler = RenewalScheduler(
            policy: try RenewalPolicy(initialBackoff: 10, maximumBackoff: 60), renewer: counting, clock: clock,
            apply: { result in
                results.withLock { $0.append(result) }
                return true
            })
        defer { scheduler.shutdown() }
        let candidate = RenewalCandidate(
            cacheName: "1000", cacheUUID: KCMUUID(high: 1, low: 1), credentialUUID: KCMUUID(high: 1, low: 2),
            credential: original)
        scheduler.tick(now: clock(), candidates: [candidate])
        scheduler.waitUntilIdle()
        #expect(counting.calls == 1)
        guard case .failed(let failure, let first, let retry) = results.withLock({ $0.last?.outcome }) else {
            Issue.record("expected a failure")
            return
        }
        #expect(first)
        #expect(failure.message.contains("Cannot contact any KDC"))
        // The retry comes 5-10 s after the failure (first back-off of 10 s, with jitter).
        let retryAt = try #require(retry)
        let failedAt = clock()
        #expect(retryAt >= failedAt + 4 && retryAt <= failedAt + 11)
        // Ticks before the retry time do not try again: no busy loop against a dead KDC.
        for _ in 0..<20 {
            let next = scheduler.tick(now: clock(), candidates: [candidate])
            #expect(next == retryAt)
        }
        scheduler.waitUntilIdle()
        #expect(counting.calls == 1)
        #expect(scheduler.cacheStates[candidate.cacheUUID]?.lastError?.contains("Cannot contact any KDC") == true)

        try kdc.restart()
        scheduler.tick(now: retryAt, candidates: [candidate])
        scheduler.waitUntilIdle()
        #expect(counting.calls == 2)
        guard case .renewed(let renewed) = results.withLock({ $0.last?.outcome }) else {
            Issue.record(
                "expected a renewal once the KDC is back: \(results.withLock { $0.last.map { "\($0.outcome)" } ?? "none" })"
            )
            return
        }
        #expect(renewed.times.endtime > original.times.endtime)
        #expect(scheduler.cacheStates[candidate.cacheUUID]?.lastError == nil)
        #expect(scheduler.cacheStates[candidate.cacheUUID]?.lastRenewal != nil)
    }

    @Test("a non-renewable ticket: the policy leaves it alone, and the KDC would refuse it anyway")
    func nonRenewable() throws {
        // The realm's krb5.conf asks for renewable tickets by default; this copy does not.
        let plain = kdc.directory.path + "/plain-krb5.conf"
        let text = String(decoding: try [UInt8](contentsOf: kdc.configuration), as: UTF8.self)
        try text.split(separator: "\n").filter { !$0.contains("renew_lifetime") }.joined(separator: "\n")
            .write(toPath: plain)
        let cache = kdc.directory.path + "/cc-plain"
        let result = try kdc.run(
            ["env", "KRB5_CONFIG=" + plain, "kinit", "-c", "FILE:" + cache, "-l", "1h", "alice"], input: "pw-alice\n")
        #expect(result.succeeded, "\(result)")
        let ticket = try tgt(in: cache)
        #expect(!RenewalTimes(ticket).isRenewable)
        #expect(try RenewalPolicy().decide(RenewalTimes(ticket), now: UInt32(time(nil))) == .never(.notRenewable))
        let refused = KerberosRenewer(configurationPath: kdc.configuration).renew(ticket, kdcOffset: 0)
        guard case .failure(let error) = refused else {
            Issue.record("the KDC renewed a non-renewable ticket")
            return
        }
        print("renewing a non-renewable ticket: \(error.message)")
        #expect(!error.message.isEmpty)
    }
}

/// Counts renewals passed through to a real renewer.
final class CountingRenewer: CredentialRenewing, Sendable {
    private let base: KerberosRenewer
    private let count = Mutex(0)
    init(_ base: KerberosRenewer) { self.base = base }
    var calls: Int { count.withLock { $0 } }
    func renew(_ credential: KCMCredential, kdcOffset: Int32) -> Result<KCMCredential, RenewalError> {
        count.withLock { $0 += 1 }
        return base.renew(credential, kdcOffset: kdcOffset)
    }
}

extension Array where Element == UInt8 {
    init(contentsOf path: String) throws {
        guard let file = fopen(path, "r") else { throw TestbedError.setup("cannot open \(path)") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        self = bytes
    }
}

extension String {
    func write(toPath path: String) throws {
        guard let file = fopen(path, "w") else { throw TestbedError.setup("cannot write \(path)") }
        defer { fclose(file) }
        _ = Array(utf8).withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    }
}
