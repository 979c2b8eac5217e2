import CCacheDaemon
import CredentialStore
import KCM

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

    // MARK: - Framing

    /// After the decoder returned nil: every byte fed is in a frame returned, still buffered (an
    /// incomplete frame), or being discarded (an oversized frame, never buffered).
    static func checkDrainedDecoder(_ decoder: KCMFrameDecoder, fed: Int, framed: Int) {
        let buffered = decoder.bufferedCount
        if buffered > 0 {
            guard framed + buffered == fed else {
                fail("\(fed) bytes fed, \(framed) returned in frames and \(buffered) buffered")
            }
        } else if decoder.isMidFrame {
            guard framed < fed else { fail("discarding a frame but every byte fed (\(fed)) was returned") }
        } else {
            guard framed == fed else { fail("\(fed) bytes fed but only \(framed) returned in frames, none buffered") }
        }
    }

    /// The reply's words: `L`, transport 0, status; returns the status and the payload.
    private static func checkFraming(_ frame: [UInt8], outcome: RequestOutcome) -> (KCMStatus, ArraySlice<UInt8>) {
        guard frame.count >= KCMReplyWriter.headerLength else { fail("a reply of \(frame.count) bytes") }
        var reader = KCMReader(frame)
        let length = try! reader.readUInt32()
        let transport = try! reader.readUInt32()
        let status = KCMStatus(rawValue: try! reader.readInt32())
        // L counts the status word and the payload, not the transport word (kcm-protocol.md §1.4).
        guard Int(length) == frame.count - 8 else {
            fail("reply length word \(length) for a \(frame.count)-byte frame")
        }
        guard transport == 0 else { fail("reply transport word \(transport)") }
        guard status == outcome.status else { fail("reply status \(status) but outcome \(outcome)") }
        guard statusesSent.contains(status) else { fail("reply status \(status) is not one the daemon sends") }
        let payload = frame[KCMReplyWriter.headerLength...]
        guard status == .success || payload.isEmpty else {
            fail("error \(status) sent with a \(payload.count)-byte payload")
        }
        return (status, payload)
    }

    // MARK: - Replies

    static func checkOversizedReply(
        _ frame: [UInt8], outcome: RequestOutcome, before: StoreSnapshot, store: CredentialStore
    ) {
        let (status, _) = checkFraming(frame, outcome: outcome)
        guard status == .ccNoMem else { fail("an oversized request answered \(status)") }
        guard StoreSnapshot(store) == before else { fail("an oversized request changed the store") }
    }

    static func checkReply(
        _ frame: [UInt8], outcome: RequestOutcome, authorized: Bool, before: StoreSnapshot, store: CredentialStore
    ) {
        let (status, payload) = checkFraming(frame, outcome: outcome)
        if !authorized {
            guard status == .fccPerm else { fail("an unauthorised request answered \(status)") }
        }
        guard status == .success else {
            // A refusal of any kind leaves the store as it was (Docs/security.md: "refusal changes
            // nothing stored").
            guard StoreSnapshot(store) == before else { fail("\(outcome) changed the store") }
            return
        }
        guard let raw = outcome.opcode, let opcode = KCMOpcode(rawValue: raw) else {
            fail("success for an unreadable or unknown opcode: \(outcome)")
        }
        checkPayload(Array(payload), of: opcode, store: store)
    }

    /// A successful reply's payload is what its opcode promises (kcm-protocol.md §5) and agrees with
    /// the store.
    private static func checkPayload(_ payload: [UInt8], of opcode: KCMOpcode, store: CredentialStore) {
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
            guard let status = try? KCMDaemonStatus.read(from: &reader), reader.remaining == 0,
                Int(status.caches) == store.cacheCount, Int(status.credentials) == store.credentialCount,
                status.credentialBytes == UInt64(store.credentialBytes)
            else { fail("CCACHED_STATUS returned \(payload) for \(store.cacheCount) caches") }
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
