import CStateFile
import CredentialStore
import Glibc
import KCM
import SecureMemory
import Synchronization

/// Keeps a daemon's store in its state file (``StateMemoryFile``, layout ``StateLayout``): the
/// outcome of every change is appended as a checksummed record right after the store applied it,
/// under the store's lock, so the file always holds the store as of the last completed change — or,
/// if the daemon dies while writing one, as of the one before.
///
/// The records of a generation grow until they are more than twice what a fresh snapshot would take
/// (plus 256 KiB); then a new generation is written elsewhere in the file, the header's other slot
/// is pointed at it, and the old area is zeroed and given back. Changes the records do not describe
/// (a renewal, a purge, an eviction) are saved the same way, as a new generation.
///
/// Not thread-safe: every call is made with the store's lock held. Once a write fails (the file
/// cannot grow), the journal stops and says why in ``failure``; the daemon keeps serving.
public final class StateJournal: @unchecked Sendable {
    public let file: StateMemoryFile
    public let ownerUID: UInt32
    /// The generation the header names, and its area: [areaStart, position).
    public private(set) var generation: UInt64 = 0
    private var slotIndex = 1
    public private(set) var areaStart = 0
    public private(set) var position = 0
    /// Area length at which to weigh a compaction again.
    private var compactionCheck = 0
    private var mirroredDefault = KCMCacheName(bytes: [])
    private var evictions = 0
    /// Where each cache's credentials have their fields (u32 length, u32 CRC32C, bytes) in the
    /// current area: when the store lets a credential go, its bytes in the file are zeroed too
    /// (their own checksum then fails, which the loader reads as released).
    private var fields: [KCMCacheName: [KCMUUID: Int]] = [:]
    /// The area a new generation is replacing, while it is written.
    private var previousArea: Range<Int>?
    /// The credentials' byte ranges in the record being written: its checksum leaves them out.
    private var pendingSkips: [Range<Int>] = []
    /// Why the journal stopped writing, once it has.
    public private(set) var failure: String?
    /// Generations written since the start (the first one included).
    public private(set) var generationsWritten = 0

    /// The address space a state file maps: room for two snapshots at the store's byte limit and
    /// the records between them (pages never written cost nothing), at least 64 MiB, at most 64 GiB.
    public static func reservation(for limits: CredentialStoreLimits) -> Int {
        min(64 << 30, max(64 << 20, 4 * limits.maximumCredentialBytes + (16 << 20)))
    }

    public init(file: StateMemoryFile, ownerUID: UInt32) {
        self.file = file
        self.ownerUID = ownerUID
    }

    /// Loads the file into `store` (empty), then writes the loaded state as a new generation, which
    /// drops a torn last record for good. A file that holds no state yields an empty store. On an
    /// error the store is as the error left it (the caller discards it) and the file is untouched.
    @discardableResult
    public func restore(into store: CredentialStore) throws(StateLoadError) -> StateLoadReport {
        let report = try StateLoader.load(file.bytes, into: store)
        if report.generation != 0 {
            generation = report.generation
            slotIndex = report.slot
            areaStart = report.areaOffset
            // Everything after the last whole record is the old area's too (a torn record).
            position = max(report.areaEnd, file.size)
        }
        evictions = store.evictions
        saveSnapshot(of: store)
        // A daemon that died between a new generation's slot and zeroing the old area left it, or
        // an area an even older generation used: nothing outside the new area is kept.
        if report.generation != 0, failure == nil {
            file.discard(StateLayout.headerSize..<areaStart)
            file.discard(position..<file.size)
        }
        return report
    }

    // MARK: - Recording changes

    /// Records what `request` (its empty names already resolved to the default) did to `store`:
    /// called once the store applied it without an error.
    public func record(_ request: KCMRequest, in store: CredentialStore) {
        guard failure == nil else { return }
        if store.evictions != evictions {
            // A cache was evicted to make room: saved whole.
            evictions = store.evictions
            saveSnapshot(of: store)
            return
        }
        switch request {
        case .initialize, .destroy, .store, .removeCred, .setKDCOffset, .moveCache, .genNew, .replace,
            .setDefaultCache:
            break
        default:
            // Nothing else changes the store: RETRIEVE, the lists, GET_*, the daemon's own opcodes.
            return
        }
        // One record for the request, whatever it changed: a torn one loses the request whole. The
        // bytes of the credentials it let go are zeroed once it is whole.
        var released: [Int] = []
        beginBatch()
        defer {
            endBatch()
            zero(released)
            compactIfLarge(store)
        }
        switch request {
        case .initialize(let name, let principal):
            guard let cache = try? store.cache(named: name) else { return }
            released = Array((fields.updateValue([:], forKey: name) ?? [:]).values)
            let principalBytes = Self.encoded(principal)
            append(.initialized, size: Self.size(of: name) + 16 + principalBytes.count) { cursor in
                cursor.put(name)
                cursor.put(cache.uuid)
                cursor.put(principalBytes)
            }
        case .destroy(let name):
            released = Array((fields.removeValue(forKey: name) ?? [:]).values)
            append(.destroyed, size: Self.size(of: name)) { $0.put(name) }
        case .store(let name, let credential):
            guard let uuid = try? store.cache(named: name).credentials.lastUUID else { return }
            released = appendRemoved(store.releasedUUIDs, from: name)
            var field = 0
            append(.stored, size: Self.size(of: name) + 16 + Self.fieldSize(credential)) { cursor in
                cursor.put(name)
                cursor.put(uuid)
                field = cursor.put(credential)
            }
            if failure == nil { fields[name, default: [:]][uuid] = field }
        case .removeCred(let name, _, _):
            released = appendRemoved(store.releasedUUIDs, from: name)
        case .setKDCOffset(let name, let offset):
            append(.kdcOffset, size: Self.size(of: name) + 4) { cursor in
                cursor.put(name)
                cursor.put(UInt32(bitPattern: offset))
            }
        case .moveCache(let from, let to):
            guard from != to, let uuid = try? store.cache(named: to).uuid else { return }
            released = Array((fields.removeValue(forKey: to) ?? [:]).values)
            fields[to] = fields.removeValue(forKey: from) ?? [:]
            append(.moved, size: Self.size(of: from) + Self.size(of: to) + 16) { cursor in
                cursor.put(from)
                cursor.put(to)
                cursor.put(uuid)
            }
        case .genNew:
            append(.nameCount, size: 8) { $0.put(store.generatedNameCount) }
        case .replace(let name, _, _, _):
            guard let cache = try? store.cache(named: name) else { return }
            released = Array((fields.removeValue(forKey: name) ?? [:]).values)
            appendCache(cache)
        case .setDefaultCache:
            break
        default:
            return
        }
        if store.defaultName != mirroredDefault {
            let name = store.defaultName
            append(.defaultName, size: Self.size(of: name)) { $0.put(name) }
            mirroredDefault = name
        }
    }

    /// Saves `store` whole as a new generation: after a change no record describes (a renewal, a
    /// purge), and to compact.
    public func saveSnapshot(of store: CredentialStore) {
        guard failure == nil else { return }
        let caches = store.cachesInCreationOrder
        let principals = caches.map { Self.encoded($0.principal) }
        let beginSize = 4 + 8 + Self.size(of: store.defaultName)
        var total = StateLayout.recordHeadSize + beginSize
        for (cache, principal) in zip(caches, principals) {
            total += StateLayout.recordHeadSize + Self.cacheSize(cache, principalBytes: principal.count)
        }
        let oldStart = areaStart
        let oldEnd = position
        previousArea = generation == 0 ? nil : oldStart..<oldEnd
        let start: Int
        if generation == 0 || StateLayout.headerSize + total <= oldStart {
            start = StateLayout.headerSize
        } else {
            start = StateMemoryFile.roundUp(oldEnd)
        }
        guard file.ensure(max(start + total, StateLayout.headerSize)) else {
            fail("the state file cannot grow to \(start + total) bytes (reservation \(file.reservation))")
            return
        }
        if generation == 0 {
            // The magic first: a file with the magic and no whole slot loads as empty.
            StateLayout.magic.withUnsafeBytes { file.base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        let next = generation + 1
        let previousGeneration = generation
        generation = next
        areaStart = start
        position = start
        fields.removeAll(keepingCapacity: true)
        let name = store.defaultName
        append(.begin, size: beginSize) { cursor in
            cursor.put(ownerUID)
            cursor.put(store.generatedNameCount)
            cursor.put(name)
        }
        for (cache, principal) in zip(caches, principals) { appendCache(cache, principalBytes: principal) }
        guard failure == nil else { return }
        // The records are whole before the slot names them; the slot is whole before the old area goes.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let newSlot = 1 - slotIndex
        let slot = StateLayout.Slot(generation: next, areaOffset: UInt64(start), ownerUID: ownerUID).encoded
        slot.withUnsafeBytes {
            (file.base + StateLayout.slotOffsets[newSlot]).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        slotIndex = newSlot
        if previousGeneration != 0 {
            file.discard(start > oldStart ? oldStart..<start : oldStart..<max(oldEnd, file.size))
        }
        previousArea = nil
        mirroredDefault = name
        evictions = store.evictions
        generationsWritten += 1
        compactionCheck = 2 * (position - areaStart) + (256 << 10)
    }

    /// Zeroes the file and empties it: a normal end (logout, idle exit, stop, SIGTERM). Nothing is
    /// written after.
    public func wipe() {
        file.wipe(live: [0..<StateLayout.headerSize, areaStart..<max(position, areaStart)])
        failure = "wiped at a normal end"
    }

    // MARK: - Writing

    private func compactIfLarge(_ store: CredentialStore) {
        guard position - areaStart > compactionCheck else { return }
        saveSnapshot(of: store)
    }

    /// Stops the journal, emptying the file: a state that no longer follows the store must not be
    /// restored (it could bring back a ticket `kdestroy` removed since).
    private func fail(_ reason: String) {
        file.wipe(
            live: [0..<StateLayout.headerSize, areaStart..<max(position, areaStart)] + (previousArea.map { [$0] } ?? [])
        )
        failure = reason
        pendingSkips.removeAll()
    }

    private func appendCache(_ cache: CredentialCache, principalBytes: [UInt8]? = nil) {
        let principal = principalBytes ?? Self.encoded(cache.principal)
        var placed = [KCMUUID: Int](minimumCapacity: cache.credentials.count)
        append(.cache, size: Self.cacheSize(cache, principalBytes: principal.count)) { cursor in
            cursor.put(cache.name)
            cursor.put(cache.uuid)
            cursor.put(principal)
            cursor.put(UInt32(bitPattern: cache.kdcOffset))
            cursor.put(UInt32(truncatingIfNeeded: cache.credentials.count))
            cache.credentials.forEach { entry in
                cursor.put(entry.uuid)
                placed[entry.uuid] = cursor.put(entry.credential)
            }
        }
        if failure == nil { fields[cache.name] = placed }
    }

    /// The part saying which credentials of `name` a request let go, if any; returns where their
    /// fields are, to be zeroed.
    private func appendRemoved(_ uuids: [KCMUUID], from name: KCMCacheName) -> [Int] {
        guard !uuids.isEmpty else { return [] }
        append(.removed, size: Self.size(of: name) + 4 + 16 * uuids.count) { cursor in
            cursor.put(name)
            cursor.put(UInt32(truncatingIfNeeded: uuids.count))
            for uuid in uuids { cursor.put(uuid) }
        }
        var released: [Int] = []
        for uuid in uuids { if let field = fields[name]?.removeValue(forKey: uuid) { released.append(field) } }
        return released
    }

    /// Zeroes, in the file, the bytes of the credentials whose fields are at `released`: the store
    /// let them go. Their records stay whole (the checksum leaves the bytes out); the bytes' own
    /// checksum no longer matches.
    private func zero(_ released: [Int]) {
        guard failure == nil else { return }
        for field in released {
            let length = Int(UInt32(bigEndian: file.base.loadUnaligned(fromByteOffset: field, as: UInt32.self)))
            memset(file.base + field + 8, 0, length)
        }
    }

    /// Where the ``StateLayout/RecordKind/batch`` record being written starts, while one is.
    private var batchStart: Int?

    /// Starts the record of one request: what ``append(_:size:_:)`` writes until ``endBatch()``
    /// goes into it as a part (kind, length, payload), all under one checksum.
    private func beginBatch() {
        guard failure == nil, batchStart == nil else { return }
        guard file.ensure(position + StateLayout.recordHeadSize) else {
            fail("the state file cannot grow to \(position + StateLayout.recordHeadSize) bytes")
            return
        }
        batchStart = position
        position += StateLayout.recordHeadSize
    }

    /// Seals the request's record (or drops it, empty), which makes it part of the state.
    private func endBatch() {
        guard let start = batchStart else { return }
        batchStart = nil
        guard failure == nil else { return }
        let size = position - start - StateLayout.recordHeadSize
        guard size > 0 else {
            position = start
            return
        }
        seal(file.base + start, kind: .batch, size: size)
    }

    /// Appends one record of `size` payload bytes, written by `body`, at the end of the area (or a
    /// part of the batch under way).
    private func append(_ kind: StateLayout.RecordKind, size: Int, _ body: (inout Cursor) -> Void) {
        guard failure == nil else { return }
        let head = batchStart == nil ? StateLayout.recordHeadSize : StateLayout.partHeadSize
        let total = head + size
        guard size <= StateLayout.maximumPayload, file.ensure(position + total) else {
            fail("the state file cannot grow to \(position + total) bytes (reservation \(file.reservation))")
            return
        }
        let record = file.base + position
        // The skips go through the cursor and back, so no record allocates a list of its own.
        var cursor = Cursor(base: file.base, at: record + head, skips: pendingSkips)
        pendingSkips = []
        body(&cursor)
        precondition(cursor.pointer == record + total, "a state record's size was miscounted")
        pendingSkips = cursor.skips
        if batchStart == nil {
            seal(record, kind: kind, size: size)
        } else {
            record.storeBytes(of: kind.rawValue, as: UInt8.self)
            Cursor.store(UInt32(truncatingIfNeeded: size), at: record + 1)
        }
        position += total
    }

    /// Writes a record's head: length, generation, kind, and last the checksum over all of it but
    /// the credentials' bytes.
    private func seal(_ record: UnsafeMutableRawPointer, kind: StateLayout.RecordKind, size: Int) {
        Cursor.store(UInt32(truncatingIfNeeded: size), at: record + 4)
        Cursor.store(generation, at: record + 8)
        record.storeBytes(of: kind.rawValue, toByteOffset: 16, as: UInt8.self)
        var crc: UInt32 = 0
        var covered = record + 4
        for skip in pendingSkips {
            let from = file.base + skip.lowerBound
            crc = ccached_state_crc32c(crc, covered, from - covered)
            covered = file.base + skip.upperBound
        }
        crc = ccached_state_crc32c(crc, covered, record + StateLayout.recordHeadSize + size - covered)
        pendingSkips.removeAll(keepingCapacity: true)
        Cursor.store(crc, at: record)
    }

    static func size(of name: KCMCacheName) -> Int { 4 + name.bytes.count }

    static func cacheSize(_ cache: CredentialCache, principalBytes: Int) -> Int {
        size(of: cache.name) + 16 + principalBytes + 4 + 4 + 24 * cache.credentials.count
            + cache.credentials.byteCount
    }

    /// A credential field: u32 length, u32 CRC32C, the bytes.
    static func fieldSize(_ credential: KCMCredential) -> Int { 8 + credential.bytes.count }

    static func encoded(_ principal: KCMPrincipal) -> [UInt8] {
        var writer = KCMWriter(capacity: 64)
        principal.write(to: &writer)
        return writer.bytes
    }

    /// Writes big-endian fields into the mapped file.
    struct Cursor {
        let base: UnsafeMutableRawPointer
        var pointer: UnsafeMutableRawPointer
        /// The credentials' bytes written so far in the record, as file offsets.
        var skips: [Range<Int>]

        init(base: UnsafeMutableRawPointer, at pointer: UnsafeMutableRawPointer, skips: [Range<Int>]) {
            self.base = base
            self.pointer = pointer
            self.skips = skips
        }

        static func store<T: FixedWidthInteger>(_ value: T, at pointer: UnsafeMutableRawPointer) {
            pointer.storeBytes(of: value.bigEndian, as: T.self)
        }

        mutating func put<T: FixedWidthInteger>(_ value: T) {
            Self.store(value, at: pointer)
            pointer += MemoryLayout<T>.size
        }

        mutating func put(_ bytes: UnsafeRawBufferPointer) {
            if let base = bytes.baseAddress, bytes.count > 0 { pointer.copyMemory(from: base, byteCount: bytes.count) }
            pointer += bytes.count
        }

        mutating func put(_ bytes: [UInt8]) { bytes.withUnsafeBytes { put($0) } }

        /// A name as `data`.
        mutating func put(_ name: KCMCacheName) {
            put(UInt32(truncatingIfNeeded: name.bytes.count))
            put(name.bytes)
        }

        mutating func put(_ uuid: KCMUUID) {
            put(uuid.high)
            put(uuid.low)
        }

        /// A credential field (u32 length, u32 CRC32C of the bytes, the bytes), copied from its
        /// secure bytes straight into the file.
        @discardableResult
        mutating func put(_ credential: KCMCredential) -> Int {
            let field = pointer - base
            credential.bytes.withUnsafeBytes { bytes in
                put(UInt32(truncatingIfNeeded: bytes.count))
                put(ccached_state_crc32c(0, bytes.baseAddress, bytes.count))
                let start = pointer - base
                put(bytes)
                skips.append(start..<start + bytes.count)
            }
            return field
        }
    }
}
