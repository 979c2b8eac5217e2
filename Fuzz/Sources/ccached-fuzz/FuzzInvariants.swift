import CCacheDaemon
import CredentialStore
import KCM
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What must hold after every step, whatever the input. A violation traps with a message, which
/// libFuzzer reports as a crash and saves the input for.
enum FuzzInvariants {
    /// The statuses the daemon may send (kcm-protocol.md §3); anything else is a mapping bug.
    static let statusesSent: Set<KCMStatus> = [
        .success, .ccBadName, .ccNotFound, .ccEnd, .ccIO, .fccPerm, .fccNoFile, .fccInternal, .ccNoMem, .ccNoSupp,
    ]

    static func fail(_ what: String) -> Never {
        fatalError("fuzz invariant violated: \(what)")
    }

    /// What a store may answer to a request it refuses (RequestFailure.status of a store error).
    static let storeRefusals: Set<KCMStatus> = [.fccNoFile, .ccNotFound, .ccEnd, .ccBadName, .ccNoMem]

    // MARK: - Framing

    /// The reply's words: `L`, transport 0, status; returns the status and the payload.
    private static func checkFraming(_ frame: [UInt8]) -> (KCMStatus, ArraySlice<UInt8>) {
        let header: KCMReplyHeader
        do {
            header = try KCMReplyHeader(decoding: frame)
        } catch {
            fail("a reply of \(frame.count) bytes whose header does not read: \(error)")
        }
        let status = header.status
        // L counts the status word and the payload, not the transport word (kcm-protocol.md §1.4).
        guard header.payloadLength == frame.count - KCMReplyHeader.length else {
            fail("reply length word \(header.replyLength) for a \(frame.count)-byte frame")
        }
        guard header.transport == 0 else { fail("reply transport word \(header.transport)") }
        guard statusesSent.contains(status) else { fail("reply status \(status) is not one the daemon sends") }
        let payload = frame[KCMReplyHeader.length...]
        guard status == .success || payload.isEmpty else {
            fail("error \(status) sent with a \(payload.count)-byte payload")
        }
        return (status, payload)
    }

    // MARK: - Replies

    /// Whether some cache has a KDC time offset, which makes an MIT RETRIEVE from it unsupported.
    private static func holdsClockOffset(_ store: CredentialStore) -> Bool {
        store.cacheUUIDs.contains { uuid in
            guard let name = try? store.cacheName(uuid: uuid), let cache = try? store.cache(named: name) else {
                return false
            }
            return cache.kdcOffset != 0
        }
    }

    /// Checks one reply frame against what was expected of its request and against the store and
    /// counters as they were before it (`before`, `countersBefore`) and are now (`store`, `state`,
    /// whose lock the caller holds). Returns the status, for the trace.
    @discardableResult
    static func checkReply(
        _ frame: [UInt8], expectation: FrameExpectation, before: StoreSnapshot, countersBefore: DaemonCounters,
        store: CredentialStore, state: DaemonState
    ) -> KCMStatus {
        let (status, payload) = checkFraming(frame)
        let counters = DaemonCounters(state)
        var expectedCounters = countersBefore
        if let length = expectation.acceptedBodyLength {
            expectedCounters.largestRequest = max(countersBefore.largestRequest, length)
        }
        if case .oversized = expectation { expectedCounters.oversizedRequests += 1 }
        // The fuzz clock never moves, so no request can have stalled.
        guard counters == expectedCounters else {
            fail("\(expectation) left counters at \(counters), expected \(expectedCounters)")
        }
        switch expectation {
        case .refused:
            guard status == .fccPerm else { fail("a refused peer's frame answered \(status)") }
        case .oversized:
            guard status == .ccNoMem else { fail("an oversized request answered \(status)") }
        case .malformed:
            guard status == .ccIO else { fail("a body that does not decode answered \(status)") }
        case .unsupported(let opcode, _):
            guard status == .fccInternal else { fail("unsupported opcode \(opcode) answered \(status)") }
        case .request(let opcode, _):
            // NOSUPP: a credential list over MIT's limit, or MIT's RETRIEVE from a cache with a KDC
            // time offset (Docs/protocol.md, "Clock skew").
            guard
                status == .success || storeRefusals.contains(status) || (status == .ccNoSupp && opcode == .getCredList)
                    || (status == .ccNoSupp && opcode == .retrieve && holdsClockOffset(store))
            else { fail("\(opcode) answered \(status), which no store refusal maps to") }
        }
        guard status == .success else {
            // A refusal of any kind leaves the store as it was (Docs/security.md: "refusal changes
            // nothing stored").
            guard StoreSnapshot(store) == before else { fail("\(expectation), answered \(status), changed the store") }
            return status
        }
        guard case .request(let opcode, _) = expectation else { fail("\(expectation) succeeded") }
        checkPayload(Array(payload), of: opcode, store: store, state: state)
        return status
    }

    /// The one reader every client uses, `KCMReply(payload:for:)`, takes the payload, and encoding
    /// what it read gives back exactly the bytes sent: no trailing bytes, nothing the reader skips.
    private static func checkRoundTrip(_ payload: [UInt8], of opcode: KCMOpcode) {
        let reply: KCMReply
        do {
            reply = try KCMReply(payload: payload, for: opcode)
        } catch {
            fail("\(opcode) succeeded with \(payload.count) bytes its reader refuses: \(error)")
        }
        var writer = KCMWriter(capacity: payload.count)
        reply.write(to: &writer)
        guard writer.bytes == payload else {
            fail("\(opcode)'s \(payload.count)-byte payload reads as \(writer.count) bytes' worth")
        }
    }

    /// A successful reply's payload is what its opcode promises (kcm-protocol.md §5) and agrees with
    /// the store.
    private static func checkPayload(
        _ payload: [UInt8], of opcode: KCMOpcode, store: CredentialStore, state: DaemonState
    ) {
        checkRoundTrip(payload, of: opcode)
        var reader = KCMReader(payload)
        switch opcode {
        case .noop, .initialize, .destroy, .store, .removeCred, .setFlags, .moveCache, .setDefaultCache,
            .setKDCOffset, .replace:
            guard payload.isEmpty else { fail("\(opcode) succeeded with a \(payload.count)-byte payload") }
        case .genNew:
            guard let name = singleName(payload), name.isValidForCreation, (try? store.cache(named: name)) == nil
            else { fail("GEN_NEW returned \(payload)") }
        case .getDefaultCache:
            guard payload == store.defaultName.bytes + [0] else { fail("GET_DEFAULT_CACHE returned \(payload)") }
        case .getCacheByUUID:
            guard let name = singleName(payload), (try? store.cache(named: name)) != nil else {
                fail("GET_CACHE_BY_UUID returned \(payload), not an existing cache")
            }
        case .getPrincipal:
            guard (try? KCMPrincipal.read(from: &reader)) != nil, reader.remaining == 0 else {
                fail("GET_PRINCIPAL returned \(payload.count) bytes that are not one principal")
            }
        case .retrieve, .getCredByUUID:
            guard let credential = try? KCMCredential(parsing: payload), credential.bytes.count == payload.count else {
                fail("\(opcode) returned \(payload.count) bytes that are not one credential")
            }
        case .getCredUUIDList:
            guard payload.count % 16 == 0 else { fail("GET_CRED_UUID_LIST returned \(payload.count) bytes") }
        case .getCacheUUIDList:
            guard payload.count == 16 * store.cacheCount else {
                fail("GET_CACHE_UUID_LIST returned \(payload.count) bytes for \(store.cacheCount) caches")
            }
        case .getKDCOffset:
            guard payload.count == 4 else { fail("GET_KDC_OFFSET returned \(payload.count) bytes") }
        case .getCredList:
            checkCredentialList(payload)
        case .daemonStatus:
            let counters = DaemonCounters(state)
            guard let status = try? KCMDaemonStatus.read(from: &reader), reader.remaining == 0,
                Int(status.caches) == store.cacheCount, Int(status.credentials) == store.credentialCount,
                status.credentialBytes == UInt64(store.credentialBytes), status.ownerUID == store.ownerUID,
                status.limits.maximumRequestBytes == state.configuration.maximumRequestLength,
                Int(status.limits.largestRequestBytes) == counters.largestRequest,
                Int(status.limits.oversizedRequests) == counters.oversizedRequests,
                Int(status.limits.maximumCaches) == store.limits.maximumCaches
            else { fail("CCACHED_STATUS returned \(payload) for \(store.cacheCount) caches, \(counters)") }
        case .stop:
            guard (try? reader.readUInt32()) == UInt32(getpid()), reader.remaining == 0 else {
                fail("CCACHED_STOP returned \(payload), not this process's pid")
            }
        case .attachSession, .detachSession:
            let attached = state.attachedSessions.load(ordering: .relaxed)
            guard let count = try? reader.readUInt32(), reader.remaining == 0, Int(count) == attached else {
                fail("\(opcode) returned \(payload) with \(attached) sessions attached")
            }
        case .watch:
            // Answered at once here (the fuzz session never waits): this daemon's epoch, never ahead.
            guard let reply = try? KCMWatch.Reply.read(from: &reader), reply.epoch == store.journal.epoch,
                reply.next <= store.journal.counter
            else { fail("CCACHED_WATCH returned \(payload.count) bytes that are not this journal's reply") }
        case .renew:
            guard (try? KCMRenew.Reply.read(from: &reader)) != nil else {
                fail("CCACHED_RENEW returned \(payload.count) bytes that are not a renew reply")
            }
        case .renewalState:
            guard let renewal = try? KCMRenewalState.read(from: &reader), renewal.caches.count <= store.cacheCount
            else {
                fail("CCACHED_RENEWAL_STATE returned \(payload.count) bytes for \(store.cacheCount) caches")
            }
        case .getName, .resolve, .chown, .chmod, .getInitialTicket, .getTicket, .addNTLMCred, .haveNTLMCred,
            .delNTLMCred, .doNTLMAuth, .getNTLMUserList:
            fail("\(opcode), which the daemon does not implement, succeeded")
        }
    }

    /// `name NUL` and nothing else.
    private static func singleName(_ payload: [UInt8]) -> KCMCacheName? {
        guard let end = payload.firstIndex(of: 0), end == payload.count - 1 else { return nil }
        return KCMCacheName(bytes: Array(payload[..<end]))
    }

    /// GET_CRED_LIST: `u32 count`, then count × `data` each holding exactly one credential, as MIT parses it.
    private static func checkCredentialList(_ payload: [UInt8]) {
        var reader = KCMReader(payload)
        guard let count = try? reader.readUInt32() else { fail("GET_CRED_LIST returned \(payload.count) bytes") }
        for item in 0..<count {
            guard let range = try? reader.readDataRange(),
                let credential = try? KCMCredential(parsing: payload, range: range),
                credential.bytes.count == range.count
            else { fail("GET_CRED_LIST item \(item) of \(count) is not one credential") }
        }
        guard reader.remaining == 0 else { fail("GET_CRED_LIST has \(reader.remaining) bytes after its items") }
    }

    // MARK: - The store

    /// Totals within the limits, and the totals the store reports agree with walking every cache.
    static func checkStore(_ store: CredentialStore, limits: CredentialStoreLimits) {
        let cacheUUIDs = store.cacheUUIDs
        guard cacheUUIDs.count == store.cacheCount else {
            fail("\(cacheUUIDs.count) cache UUIDs listed for \(store.cacheCount) caches")
        }
        guard store.cacheCount <= limits.maximumCaches else { fail("\(store.cacheCount) caches") }
        var seen = Set<KCMUUID>()
        var credentials = 0
        var bytes = 0
        var records = 0
        for uuid in cacheUUIDs {
            guard seen.insert(uuid).inserted else { fail("UUID \(uuid) issued twice") }
            guard let name = try? store.cacheName(uuid: uuid), let cache = try? store.cache(named: name),
                cache.uuid == uuid, cache.name == name
            else { fail("cache UUID \(uuid) does not lead back to its cache") }
            var count = 0
            var byteCount = 0
            cache.credentials.forEach { entry in
                count += 1
                byteCount += entry.credential.bytes.count
                guard seen.insert(entry.uuid).inserted else { fail("UUID \(entry.uuid) issued twice") }
                guard cache.credentials.entry(uuid: entry.uuid)?.uuid == entry.uuid else {
                    fail("credential UUID \(entry.uuid) not found by its UUID")
                }
            }
            guard count == cache.credentials.count, byteCount == cache.credentials.byteCount else {
                fail(
                    "cache '\(name)' counts \(cache.credentials.count) credentials and \(cache.credentials.byteCount) bytes, holds \(count) and \(byteCount)"
                )
            }
            guard count <= limits.maximumCredentialsPerCache else { fail("cache '\(name)' holds \(count) credentials") }
            credentials += count
            bytes += byteCount
            // Each cache's record (name, principal) counts too, at the cost the store charges.
            guard cache.recordBytes == CredentialCache.recordBytes(name: name, principal: cache.principal) else {
                fail("cache '\(name)' charges \(cache.recordBytes) bytes for a record that costs more or less")
            }
            records += cache.recordBytes
        }
        guard credentials == store.credentialCount, bytes == store.encodedCredentialBytes else {
            fail(
                "store reports \(store.credentialCount) credentials and \(store.encodedCredentialBytes) bytes, holds \(credentials) and \(bytes)"
            )
        }
        guard bytes + records == store.credentialBytes else {
            fail("store reports \(store.credentialBytes) stored bytes, holds \(bytes) + \(records) of records")
        }
        guard bytes + records <= limits.maximumCredentialBytes else { fail("\(bytes + records) bytes stored") }
    }
}
