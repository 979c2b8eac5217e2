import Glibc
import KCM

/// How much one daemon holds at most. The defaults are far above what a heavy real user stores
/// (hundreds of service tickets, AD tickets with large PACs) and bound what a runaway client can.
public struct CredentialStoreLimits: Sendable, Equatable {
    public var maximumCaches: Int
    public var maximumCredentialsPerCache: Int
    /// Total stored bytes over all caches, as ``CredentialStore/credentialBytes`` counts them:
    /// credentials (config entries too), cache names and principals, at their real cost.
    public var maximumCredentialBytes: Int

    public init(
        maximumCaches: Int = 1024, maximumCredentialsPerCache: Int = 65_536, maximumCredentialBytes: Int = 256 << 20
    ) {
        self.maximumCaches = maximumCaches
        self.maximumCredentialsPerCache = maximumCredentialsPerCache
        self.maximumCredentialBytes = maximumCredentialBytes
    }
}

/// How many requests each limit of ``CredentialStoreLimits`` refused (for `ccachectl status`).
public struct CredentialStoreRefusals: Sendable, Equatable {
    public var caches = 0
    public var credentialsPerCache = 0
    public var credentialBytes = 0
}

/// Every cache of one daemon, the default (primary) cache name and name generation: the semantics
/// of the KCM operations, with no I/O.
///
/// Not thread-safe: the daemon keeps it behind one mutex, so each request applies atomically.
public final class CredentialStore {
    /// The uid whose caches these are; names are `"<uid>"` and `"<uid>:<n>"`.
    public let ownerUID: UInt32
    public let limits: CredentialStoreLimits
    private var caches: [KCMCacheName: CredentialCache] = [:]
    private var namesByUUID: [KCMUUID: KCMCacheName] = [:]
    /// Cache UUIDs in creation order.
    private var creationOrder: [KCMUUID] = []
    private var uuids = UUIDGenerator()
    private var generatedNameCounter: UInt64 = 0
    /// Counts client uses of caches (``CredentialCache/lastUse``); only ever grows.
    private var useCounter: UInt64 = 0
    /// The primary cache name. It need not name an existing cache.
    public private(set) var defaultName: KCMCacheName
    /// Requests refused by each limit since the store was made; counted where they are refused.
    public private(set) var refusals = CredentialStoreRefusals()
    /// Every change to the collection, for watchers (see ``ChangeJournal``).
    public internal(set) var journal = ChangeJournal()
    /// The time in seconds since the epoch, for telling a fully expired cache at the cache limit.
    public var clock: () -> UInt32 = { UInt32(truncatingIfNeeded: time(nil)) }
    /// Told of each cache evicted at the cache limit (``CacheEviction``), under the store's lock:
    /// the daemon logs it.
    public var onEviction: (CacheEviction) -> Void = { _ in }
    /// Caches evicted at the cache limit since the store was made.
    public private(set) var evictions = 0
    /// The credentials the last STORE superseded or the last REMOVE_CRED removed, by UUID: the state
    /// journal zeroes their bytes in its file too.
    public private(set) var releasedUUIDs: [KCMUUID] = []

    public init(ownerUID: UInt32, limits: CredentialStoreLimits = CredentialStoreLimits()) {
        self.ownerUID = ownerUID
        self.limits = limits
        defaultName = KCMCacheName("\(ownerUID)")
    }

    // MARK: - Totals

    public var cacheCount: Int { caches.count }
    public var credentialCount: Int { caches.values.reduce(0) { $0 + $1.credentials.count } }
    /// Every byte the store holds, as counted against ``CredentialStoreLimits/maximumCredentialBytes``
    /// and shown by `ccachectl status`: the encoded credentials (config entries are credentials) plus
    /// each cache's record — name, principal with its per-component cost, fixed overhead. Before
    /// issue 12 only credentials counted, so 8 principals of 838,860 components took 363 MiB while
    /// status showed 0 B. (Kept under this name: the status payload carries it as credential bytes.)
    public var credentialBytes: Int {
        caches.values.reduce(0) { $0 + $1.credentials.byteCount + $1.recordBytes }
    }
    /// The encoded credentials alone, without the caches' records.
    public var encodedCredentialBytes: Int { caches.values.reduce(0) { $0 + $1.credentials.byteCount } }
    /// The credential count of the fullest cache: the usage against the per-cache limit.
    public var largestCacheCredentialCount: Int { caches.values.reduce(0) { max($0, $1.credentials.count) } }

    /// Refuses a change that would take ``credentialBytes`` over the limit, counting the refusal.
    private func requireRoom(adding: Int, removing: Int = 0) throws(CredentialStoreError) {
        guard credentialBytes - removing + adding <= limits.maximumCredentialBytes else {
            refusals.credentialBytes += 1
            throw .limitReached(.credentialBytes, limit: limits.maximumCredentialBytes)
        }
    }

    // MARK: - Caches

    /// The cache of this name, or ``CredentialStoreError/noSuchCache(_:)``.
    public func cache(named name: KCMCacheName) throws(CredentialStoreError) -> CredentialCache {
        guard let cache = caches[name] else { throw .noSuchCache(name) }
        return cache
    }

    /// Names in creation order.
    public var cacheUUIDs: [KCMUUID] { creationOrder }

    /// The name of the cache with this UUID, or ``CredentialStoreError/unknownUUID(_:)``.
    public func cacheName(uuid: KCMUUID) throws(CredentialStoreError) -> KCMCacheName {
        guard let name = namesByUUID[uuid] else { throw .unknownUUID(uuid) }
        return name
    }

    /// A name no cache has and this store never returned before: `"<uid>:<n>"`. The cache is not created.
    public func generateName() -> KCMCacheName {
        while true {
            generatedNameCounter += 1
            let name = KCMCacheName("\(ownerUID):\(generatedNameCounter)")
            if caches[name] == nil { return name }
        }
    }

    /// Records `name` as the primary cache; it need not exist (`kswitch -c` does not check).
    public func setDefault(_ name: KCMCacheName) throws(CredentialStoreError) {
        guard name.isValidForCreation else { throw .invalidName(length: name.bytes.count) }
        if name != defaultName { journal.record(.defaultSwitched, name) }
        defaultName = name
        if let cache = caches[name] { markUsed(cache) }
    }

    /// A client used `cache` now (see ``CredentialCache/lastUse``).
    private func markUsed(_ cache: CredentialCache) {
        useCounter += 1
        cache.lastUse = useCounter
    }

    private func create(_ name: KCMCacheName, principal: KCMPrincipal, counted: Bool = true)
        throws(CredentialStoreError)
        -> CredentialCache
    {
        guard name.isValidForCreation else { throw .invalidName(length: name.bytes.count) }
        if counted { try requireRoomForCache() }
        let cache = CredentialCache(name: name, uuid: uuids.next(), principal: principal)
        markUsed(cache)
        caches[name] = cache
        namesByUUID[cache.uuid] = name
        creationOrder.append(cache.uuid)
        journal.record(.cacheCreated, name)
        return cache
    }

    /// Makes room for one more cache at ``CredentialStoreLimits/maximumCaches`` by evicting a fully
    /// expired cache (``evictableCache(now:)``), or refuses, counting the refusal.
    private func requireRoomForCache() throws(CredentialStoreError) {
        guard caches.count >= limits.maximumCaches else { return }
        let now = clock()
        guard let victim = evictableCache(now: now) else {
            refusals.caches += 1
            throw .limitReached(.caches, limit: limits.maximumCaches)
        }
        let eviction = CacheEviction(name: victim.name, expiredAt: victim.credentials.latestTicketEnd, now: now)
        try? destroy(victim.name)
        evictions += 1
        onEviction(eviction)
    }

    /// The cache to evict at the cache limit: of the caches whose every ticket has expired by `now`,
    /// the one a client used least recently. Never a cache holding a ticket still valid or still
    /// renewable (its renew-till ahead), nor one with no ticket at all — the fresh cache `kinit`
    /// made with INITIALIZE and is about to fill with STORE looks like that — nor one with an
    /// expiry-less ticket. The client's new cache then takes its place, as sssd-kcm does, instead of
    /// every `kinit` failing until the purge grace has passed.
    func evictableCache(now: UInt32) -> CredentialCache? {
        var victim: CredentialCache?
        for cache in caches.values where cache.credentials.isFullyExpired(at: now) {
            if let current = victim, current.lastUse <= cache.lastUse { continue }
            victim = cache
        }
        return victim
    }

    private func existingOrNew(_ name: KCMCacheName, principal: KCMPrincipal, counted: Bool = true)
        throws(CredentialStoreError) -> CredentialCache
    {
        if let cache = caches[name] {
            cache.principal = principal
            markUsed(cache)
            return cache
        }
        return try create(name, principal: principal, counted: counted)
    }

    /// What giving `name` the record for `principal` adds to ``credentialBytes`` (its current
    /// record, if it exists, is replaced), with `released` bytes of credentials let go at once.
    private func requireRoomForRecord(_ name: KCMCacheName, principal: KCMPrincipal, released: Int = 0)
        throws(CredentialStoreError)
    {
        try requireRoom(
            adding: CredentialCache.recordBytes(name: name, principal: principal),
            removing: (caches[name]?.recordBytes ?? 0) + released)
    }

    /// INITIALIZE: creates the cache if absent (keeping the UUID if present), sets its principal,
    /// empties it and resets its KDC offset.
    public func initialize(_ name: KCMCacheName, principal: KCMPrincipal) throws(CredentialStoreError) {
        guard name.isValidForCreation else { throw .invalidName(length: name.bytes.count) }
        // INITIALIZE empties the cache, so its credentials are let go in the same step. Checked
        // before a cache is evicted for room: a refused request changes nothing.
        try requireRoomForRecord(name, principal: principal, released: caches[name]?.credentials.byteCount ?? 0)
        if caches[name] == nil { try requireRoomForCache() }
        let cache = try existingOrNew(name, principal: principal)
        if !cache.credentials.isEmpty { journal.record(.credentialsRemoved, name) }
        cache.credentials.removeAll()
        cache.kdcOffset = 0
    }

    /// REPLACE: all at once, creates the cache if absent and sets principal, offset and credentials.
    public func replace(
        _ name: KCMCacheName, principal: KCMPrincipal, kdcOffset: Int32, credentials: [KCMCredential]
    ) throws(CredentialStoreError) {
        guard credentials.count <= limits.maximumCredentialsPerCache else {
            refusals.credentialsPerCache += 1
            throw .limitReached(.credentialsPerCache, limit: limits.maximumCredentialsPerCache)
        }
        guard name.isValidForCreation else { throw .invalidName(length: name.bytes.count) }
        let incoming = credentials.reduce(0) { $0 + $1.bytes.count }
        let replaced = caches[name]?.credentials.byteCount ?? 0
        try requireRoom(
            adding: incoming + CredentialCache.recordBytes(name: name, principal: principal),
            removing: replaced + (caches[name]?.recordBytes ?? 0))
        var list = CredentialList()
        for credential in credentials { list.append(credential, uuid: uuids.next()) }
        let cache = try existingOrNew(name, principal: principal)
        cache.kdcOffset = kdcOffset
        cache.credentials = list
        journal.record(.credentialsStored, name)
    }

    /// DESTROY. When the cache was the primary and others remain, the primary becomes the one a
    /// client used most recently (``CredentialCache/lastUse``), as sssd-kcm and Heimdal's kcm fall
    /// back, rather than naming a cache that no longer exists (MIT's own collections do that, and
    /// `klist`, `kvno` and GSSAPI then fail with "not found" until `kswitch`). With no cache left
    /// the name stays as it is.
    public func destroy(_ name: KCMCacheName) throws(CredentialStoreError) {
        try remove(name)
        if name == defaultName, let next = caches.values.max(by: { $0.lastUse < $1.lastUse }) {
            defaultName = next.name
            journal.record(.defaultSwitched, next.name)
        }
    }

    /// Removes a cache and zeroes its credentials; the primary name is left alone.
    private func remove(_ name: KCMCacheName) throws(CredentialStoreError) {
        guard let cache = caches.removeValue(forKey: name) else { throw .noSuchCache(name) }
        namesByUUID[cache.uuid] = nil
        if let position = creationOrder.firstIndex(of: cache.uuid) { creationOrder.remove(at: position) }
        cache.credentials.removeAll()
        journal.record(.cacheDestroyed, name)
    }

    /// Destroys every cache; the primary name returns to `"<uid>"`.
    public func destroyAll() {
        for cache in caches.values { cache.credentials.removeAll() }
        for uuid in creationOrder { if let name = namesByUUID[uuid] { journal.record(.cacheDestroyed, name) } }
        let primary = KCMCacheName("\(ownerUID)")
        if defaultName != primary { journal.record(.defaultSwitched, primary) }
        caches.removeAll()
        namesByUUID.removeAll()
        creationOrder.removeAll()
        defaultName = KCMCacheName("\(ownerUID)")
    }

    /// MOVE_CACHE: the destination (created if absent, keeping its UUID if present) takes the
    /// source's principal, credentials and offset; the source is destroyed; a primary that named the
    /// source now names the destination.
    public func move(from source: KCMCacheName, to destination: KCMCacheName) throws(CredentialStoreError) {
        let from = try cache(named: source)
        if source == destination { return }
        // The source goes away, so the number of caches does not grow; the destination's record and
        // credentials are replaced by the source's, whose record goes.
        guard destination.isValidForCreation else { throw .invalidName(length: destination.bytes.count) }
        try requireRoom(
            adding: CredentialCache.recordBytes(name: destination, principal: from.principal),
            removing: from.recordBytes + (caches[destination].map { $0.recordBytes + $0.credentials.byteCount } ?? 0))
        let to = try existingOrNew(destination, principal: from.principal, counted: false)
        to.credentials = from.credentials
        to.kdcOffset = from.kdcOffset
        from.credentials = CredentialList()
        journal.record(.credentialsStored, destination)
        try remove(source)
        if defaultName == source {
            defaultName = destination
            journal.record(.defaultSwitched, destination)
        }
    }

    // MARK: - Expiry

    /// What one purge removed.
    public struct PurgeResult: Equatable, Sendable {
        public var credentials: Int
        public var caches: Int

        public init(credentials: Int = 0, caches: Int = 0) {
            self.credentials = credentials
            self.caches = caches
        }
    }

    /// Removes tickets that expired more than `grace` seconds before `now`, and caches left without
    /// tickets for longer than `grace` (first seen ticketless by an earlier purge, so a cache just
    /// created is never removed). Valid tickets and config entries are never touched; a removed
    /// default falls back as after ``destroy(_:)``.
    public func purge(now: UInt32, grace: UInt32) -> PurgeResult {
        var result = PurgeResult()
        let cutoff = now > grace ? now - grace : 0
        for cache in Array(caches.values) {
            let expired = cache.credentials.removeExpired(before: cutoff)
            result.credentials += expired
            if expired > 0 { journal.record(.purged, cache.name) }
            if cache.credentials.holdsTickets {
                cache.ticketlessSince = nil
            } else if let since = cache.ticketlessSince {
                if now &- since >= grace, (try? destroy(cache.name)) != nil { result.caches += 1 }
            } else {
                cache.ticketlessSince = now
            }
        }
        return result
    }

    // MARK: - Credentials

    /// STORE: appends a credential after removing any it supersedes (same client, server, is_skey and
    /// second ticket), so config-entry updates read back the new value and caches hold no duplicates.
    public func store(_ credential: KCMCredential, in name: KCMCacheName) throws(CredentialStoreError) {
        let cache = try cache(named: name)
        markUsed(cache)
        // Checked before anything changes: a refused STORE loses nothing already stored.
        let superseded = cache.credentials.superseded(by: credential)
        guard cache.credentials.count - superseded.count < limits.maximumCredentialsPerCache else {
            refusals.credentialsPerCache += 1
            throw .limitReached(.credentialsPerCache, limit: limits.maximumCredentialsPerCache)
        }
        try requireRoom(adding: credential.bytes.count, removing: superseded.bytes)
        releasedUUIDs.removeAll(keepingCapacity: true)
        cache.credentials.removeSuperseded(by: credential, released: &releasedUUIDs)
        cache.credentials.append(credential, uuid: uuids.next())
        journal.record(.credentialsStored, name)
    }

    /// RETRIEVE: the first credential in storage order that matches.
    public func retrieve(from name: KCMCacheName, matching matcher: CredentialMatcher) throws(CredentialStoreError)
        -> KCMCredential
    {
        let cache = try cache(named: name)
        markUsed(cache)
        guard let entry = cache.credentials.first(matching: matcher) else { throw .noMatchingCredential }
        return entry.credential
    }

    /// REMOVE_CRED: removes every match; succeeds when nothing matched, as MIT's own cache types do.
    @discardableResult
    public func removeCredentials(from name: KCMCacheName, matching matcher: CredentialMatcher)
        throws(CredentialStoreError) -> Int
    {
        let cache = try cache(named: name)
        releasedUUIDs.removeAll(keepingCapacity: true)
        let removed = cache.credentials.removeAll(matching: matcher, released: &releasedUUIDs)
        if removed > 0 { journal.record(.credentialsRemoved, name) }
        return removed
    }

    /// GET_CRED_BY_UUID.
    public func credential(in name: KCMCacheName, uuid: KCMUUID) throws(CredentialStoreError) -> KCMCredential {
        guard let entry = try cache(named: name).credentials.entry(uuid: uuid) else { throw .unknownUUID(uuid) }
        return entry.credential
    }
}

// MARK: - Restoring a saved state

/// How a daemon restarted after a crash rebuilds its store from the state file (module StoreState):
/// the outcomes its predecessor recorded, applied with the UUIDs it gave, never through the KCM
/// operations (those would draw new UUIDs). Each either applies whole or throws and changes nothing;
/// none checks the limits (the records are the store's own past, within the limits of its day).
extension CredentialStore {
    /// The store's state for a snapshot: the name counter of ``generateName()``.
    public var generatedNameCount: UInt64 { generatedNameCounter }

    /// Caches in creation order.
    public var cachesInCreationOrder: [CredentialCache] {
        creationOrder.compactMap { namesByUUID[$0].flatMap { caches[$0] } }
    }

    /// Restores ``generateName()``'s counter (it never goes back).
    public func restoreNameCount(_ count: UInt64) {
        generatedNameCounter = max(generatedNameCounter, count)
    }

    /// Restores the primary name as recorded (it need not name a cache).
    public func restoreDefault(_ name: KCMCacheName) throws(CredentialStoreError) {
        guard name.isValidForCreation else { throw .invalidName(length: name.bytes.count) }
        defaultName = name
    }

    /// The cache `name` exists with `uuid` (created at the end of the creation order if absent, in
    /// place if present with that UUID, replacing a cache of that name and another UUID).
    private func restoredCache(_ name: KCMCacheName, uuid: KCMUUID, principal: KCMPrincipal)
        throws(CredentialStoreError) -> CredentialCache
    {
        guard name.isValidForCreation else { throw .invalidName(length: name.bytes.count) }
        if let cache = caches[name], cache.uuid == uuid {
            cache.principal = principal
            markUsed(cache)
            return cache
        }
        if let owner = namesByUUID[uuid], owner != name { throw .unknownUUID(uuid) }
        if caches[name] != nil { try remove(name) }
        let cache = CredentialCache(name: name, uuid: uuid, principal: principal)
        markUsed(cache)
        caches[name] = cache
        namesByUUID[uuid] = name
        creationOrder.append(uuid)
        return cache
    }

    /// A whole cache as recorded: principal, KDC offset and credentials with their UUIDs.
    public func restoreCache(
        _ name: KCMCacheName, uuid: KCMUUID, principal: KCMPrincipal, kdcOffset: Int32,
        credentials: [(uuid: KCMUUID, credential: KCMCredential?)]
    ) throws(CredentialStoreError) {
        var list = CredentialList()
        for entry in credentials {
            guard list.entry(uuid: entry.uuid) == nil else { throw .unknownUUID(entry.uuid) }
            // A credential zeroed in the file was released after this record: it is not restored.
            guard let credential = entry.credential else { continue }
            list.append(credential, uuid: entry.uuid)
        }
        let cache = try restoredCache(name, uuid: uuid, principal: principal)
        cache.kdcOffset = kdcOffset
        cache.credentials = list
    }

    /// INITIALIZE's outcome: the cache exists with `uuid` and `principal`, empty, offset 0.
    public func restoreInitialized(_ name: KCMCacheName, uuid: KCMUUID, principal: KCMPrincipal)
        throws(CredentialStoreError)
    {
        let cache = try restoredCache(name, uuid: uuid, principal: principal)
        cache.credentials.removeAll()
        cache.kdcOffset = 0
    }

    /// DESTROY's outcome (the primary name is restored by its own record).
    public func restoreDestroyed(_ name: KCMCacheName) throws(CredentialStoreError) {
        try remove(name)
    }

    /// STORE's outcome: `credential` is last, with `uuid` (what it superseded is restored as removed
    /// by its own record).
    public func restoreStored(_ credential: KCMCredential, uuid: KCMUUID, in name: KCMCacheName)
        throws(CredentialStoreError)
    {
        let cache = try cache(named: name)
        guard cache.credentials.entry(uuid: uuid) == nil else { throw .unknownUUID(uuid) }
        cache.credentials.append(credential, uuid: uuid)
        markUsed(cache)
    }

    /// REMOVE_CRED's outcome (or a superseded credential's): the credentials with these UUIDs are
    /// gone from `name`. A UUID not there (its STORE was zeroed in the file) is no error.
    public func restoreRemoved(_ uuids: [KCMUUID], from name: KCMCacheName) throws(CredentialStoreError) {
        let cache = try cache(named: name)
        for uuid in uuids { cache.credentials.remove(uuid: uuid) }
    }

    /// MOVE_CACHE's outcome: `destination` (with `uuid`) holds the source's principal, offset and
    /// credentials; the source is gone (the primary name is restored by its own record).
    public func restoreMoved(from source: KCMCacheName, to destination: KCMCacheName, uuid: KCMUUID)
        throws(CredentialStoreError)
    {
        let from = try cache(named: source)
        guard source != destination else { return }
        let to = try restoredCache(destination, uuid: uuid, principal: from.principal)
        to.credentials = from.credentials
        to.kdcOffset = from.kdcOffset
        from.credentials = CredentialList()
        try remove(source)
    }
}
