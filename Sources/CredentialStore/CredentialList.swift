import KCM
import SecureMemory

/// The credentials of one cache in storage order, with two indexes: by UUID and by server name.
///
/// Removal leaves a hole that a later compaction closes, so append, remove and both lookups are
/// O(1) amortised and iteration stays in storage order.
public struct CredentialList {
    /// A stored credential and the UUID it was given.
    public struct Entry {
        public let uuid: KCMUUID
        public let credential: KCMCredential
    }

    private var slots: [Entry?] = []
    private var slotByUUID: [KCMUUID: Int] = [:]
    /// Server index key → slots in ascending order.
    private var slotsByServer: [Int: ServerSlotBucket] = [:]
    public private(set) var count = 0
    /// Total encoded bytes of the live credentials.
    public private(set) var byteCount = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    /// Appends a credential at the end.
    public mutating func append(_ credential: KCMCredential, uuid: KCMUUID) {
        let slot = slots.count
        slots.append(Entry(uuid: uuid, credential: credential))
        slotByUUID[uuid] = slot
        let key = ServerIndexKey.make(for: credential)
        if let bucket = slotsByServer.removeValue(forKey: key) {
            slotsByServer[key] = bucket.appending(slot)
        } else {
            slotsByServer[key] = .one(slot)
        }
        count += 1
        byteCount += credential.bytes.count
    }

    /// The credential with this UUID.
    public func entry(uuid: KCMUUID) -> Entry? {
        slotByUUID[uuid].flatMap { slots[$0] }
    }

    /// Calls `body` for each live entry in storage order.
    public func forEach(_ body: (Entry) throws -> Void) rethrows {
        for case let entry? in slots { try body(entry) }
    }

    /// The UUID of the last credential appended (while it is still stored last), for the state
    /// journal's record of a STORE.
    public var lastUUID: KCMUUID? { slots.last??.uuid }

    /// Removes the credential with this UUID; false when there is none.
    @discardableResult
    public mutating func remove(uuid: KCMUUID) -> Bool {
        guard let slot = slotByUUID[uuid] else { return false }
        remove(slot: slot)
        compactIfSparse()
        return true
    }

    /// The UUIDs in storage order.
    public var uuids: [KCMUUID] {
        var result: [KCMUUID] = []
        result.reserveCapacity(count)
        forEach { result.append($0.uuid) }
        return result
    }

    /// The first credential in storage order that the matcher accepts.
    public func first(matching matcher: CredentialMatcher) -> Entry? {
        if let key = matcher.serverIndexKey {
            guard let bucket = slotsByServer[key] else { return nil }
            for slot in bucket {
                if let entry = slots[slot], matcher.matches(entry.credential) { return entry }
            }
            return nil
        }
        for case let entry? in slots where matcher.matches(entry.credential) { return entry }
        return nil
    }

    /// Removes every credential the matcher accepts, adding their UUIDs to `released` (the store
    /// reuses one array, so a removal allocates nothing); returns how many.
    @discardableResult
    public mutating func removeAll(matching matcher: CredentialMatcher, released: inout [KCMUUID]) -> Int {
        let candidates: [Int]
        if let key = matcher.serverIndexKey {
            candidates = slotsByServer[key].map { Array($0) } ?? []
        } else {
            candidates = Array(slots.indices)
        }
        var removed = 0
        for slot in candidates {
            if let entry = slots[slot], matcher.matches(entry.credential) {
                released.append(entry.uuid)
                remove(slot: slot)
                removed += 1
            }
        }
        compactIfSparse()
        return removed
    }

    /// The slots of credentials with the same client, server (realm included, name type ignored),
    /// is_skey and second ticket as `credential`: what a STORE of `credential` supersedes.
    private func supersededSlots(by credential: KCMCredential) -> [Int] {
        guard let bucket = slotsByServer[ServerIndexKey.make(for: credential)] else { return [] }
        return bucket.filter { slot in
            guard let old = slots[slot]?.credential else { return false }
            return old.serverKey.bytesEqual(credential.serverKey) && old.clientKey.bytesEqual(credential.clientKey)
                && old.isSKey == credential.isSKey && old.secondTicket.bytesEqual(credential.secondTicket)
        }
    }

    /// Removes what a STORE of `credential` supersedes (see ``superseded(by:)``), adding their UUIDs
    /// to `released`; returns how many.
    @discardableResult
    public mutating func removeSuperseded(by credential: KCMCredential, released: inout [KCMUUID]) -> Int {
        let doomed = supersededSlots(by: credential)
        for slot in doomed {
            if let uuid = slots[slot]?.uuid { released.append(uuid) }
            remove(slot: slot)
        }
        compactIfSparse()
        return doomed.count
    }

    /// How many credentials, and how many bytes, a STORE of `credential` would supersede — same
    /// client, server, is_skey and second ticket — without removing them.
    public func superseded(by credential: KCMCredential) -> (count: Int, bytes: Int) {
        let doomed = supersededSlots(by: credential)
        return (doomed.count, doomed.reduce(0) { $0 + (slots[$1]?.credential.bytes.count ?? 0) })
    }

    /// Removes the tickets (never config entries, never a ticket without an end time) that expired
    /// before `cutoff`; returns how many.
    @discardableResult
    public mutating func removeExpired(before cutoff: UInt32) -> Int {
        var removed = 0
        for slot in slots.indices {
            guard let credential = slots[slot]?.credential, !credential.isConfigEntry,
                credential.times.endtime != 0, credential.times.endtime < cutoff
            else { continue }
            remove(slot: slot)
            removed += 1
        }
        compactIfSparse()
        return removed
    }

    /// Whether the list holds a ticket and every ticket has expired by `now`: none valid, none
    /// without an end time, none renewable past `now`. Config entries do not count.
    public func isFullyExpired(at now: UInt32) -> Bool {
        var tickets = 0
        for case let entry? in slots where !entry.credential.isConfigEntry {
            let times = entry.credential.times
            guard times.endtime != 0, times.endtime <= now, times.renewTill <= now else { return false }
            tickets += 1
        }
        return tickets > 0
    }

    /// The latest end time of the tickets (config entries do not count), 0 with none.
    public var latestTicketEnd: UInt32 {
        var latest: UInt32 = 0
        for case let entry? in slots where !entry.credential.isConfigEntry {
            latest = max(latest, entry.credential.times.endtime)
        }
        return latest
    }

    /// Whether any credential is a ticket rather than a config entry.
    public var holdsTickets: Bool {
        for case let entry? in slots where !entry.credential.isConfigEntry { return true }
        return false
    }

    /// Empties the list.
    public mutating func removeAll() {
        self = CredentialList()
    }

    private mutating func remove(slot: Int) {
        guard let entry = slots[slot] else { return }
        slots[slot] = nil
        slotByUUID[entry.uuid] = nil
        let key = ServerIndexKey.make(for: entry.credential)
        if let bucket = slotsByServer.removeValue(forKey: key) {
            slotsByServer[key] = bucket.removing(slot)
        }
        count -= 1
        byteCount -= entry.credential.bytes.count
    }

    /// Closes the holes once they outnumber the live entries, keeping the indexes exact.
    private mutating func compactIfSparse() {
        let holes = slots.count - count
        guard holes > 16, holes > count else { return }
        let live = slots.compactMap { $0 }
        self = CredentialList()
        for entry in live { append(entry.credential, uuid: entry.uuid) }
    }
}
