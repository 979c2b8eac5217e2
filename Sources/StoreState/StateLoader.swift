import CStateFile
import CredentialStore
import KCM
import SecureMemory

/// Why a state file was not loaded. The store is left empty.
public enum StateLoadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file does not begin with the magic: not a state file.
    case notAStateFile
    /// A newer daemon wrote it; this one does not know its layout and must not guess.
    case newerLayout(found: UInt32, supported: UInt32)
    /// Another user's daemon wrote it.
    case otherOwner(found: UInt32, expected: UInt32)
    /// The slot names an area outside the file, or the area does not begin with its snapshot.
    case corrupt(String)

    public var description: String {
        switch self {
        case .notAStateFile: "not a ccached state file (no magic)"
        case .newerLayout(let found, let supported):
            "the state file has layout version \(found), newer than this daemon's \(supported); not loading it"
        case .otherOwner(let found, let expected): "the state file is uid \(found)'s, not uid \(expected)'s"
        case .corrupt(let reason): "the state file is damaged: \(reason)"
        }
    }
}

/// What a load restored.
public struct StateLoadReport: Equatable, Sendable {
    /// The generation loaded (0: the file held no state, fresh or wiped).
    public var generation: UInt64 = 0
    /// Records applied, the snapshot's included.
    public var records = 0
    /// Where the loaded generation's area starts and its valid records end.
    public var areaOffset = 0
    public var areaEnd = 0
    /// Which slot named it.
    public var slot = 0
    /// Why loading stopped before the end of the file's bytes, when a record was torn (the
    /// request in flight when the daemon died) or failed to apply: the state before it is kept.
    public var stoppedAt: String?
}

/// Reads a state file's bytes into an empty ``CredentialStore``.
///
/// Hostile input never traps: every length is checked against the bytes, every record against its
/// checksum, and every decoded value is applied through the store's restore calls, which refuse an
/// inconsistent one. A file that is all zeros (fresh, or wiped at a normal end) is an empty state.
public enum StateLoader {
    public static func load(_ image: UnsafeRawBufferPointer, into store: CredentialStore) throws(StateLoadError)
        -> StateLoadReport
    {
        var report = StateLoadReport()
        guard image.count >= StateLayout.magic.count, !image.prefix(StateLayout.headerSize).allSatisfy({ $0 == 0 })
        else { return report }
        guard image.prefix(StateLayout.magic.count).elementsEqual(StateLayout.magic) else { throw .notAStateFile }
        var best: (index: Int, slot: StateLayout.Slot)?
        for (index, offset) in StateLayout.slotOffsets.enumerated() where offset + StateLayout.slotSize <= image.count {
            guard let slot = StateLayout.Slot(decoding: UnsafeRawBufferPointer(rebasing: image[offset...])) else {
                continue
            }
            if best == nil || slot.generation > best!.slot.generation { best = (index, slot) }
        }
        // The magic but no whole slot: the first generation was never completed; nothing was stored.
        guard let (slotIndex, slot) = best else { return report }
        guard slot.version <= StateLayout.version else {
            throw .newerLayout(found: slot.version, supported: StateLayout.version)
        }
        guard slot.ownerUID == store.ownerUID else { throw .otherOwner(found: slot.ownerUID, expected: store.ownerUID) }
        guard slot.areaOffset >= UInt64(StateLayout.headerSize), slot.areaOffset < UInt64(image.count) else {
            throw .corrupt("its area starts at \(slot.areaOffset), outside the \(image.count)-byte file")
        }
        report.generation = slot.generation
        report.slot = slotIndex
        report.areaOffset = Int(slot.areaOffset)
        var position = Int(slot.areaOffset)
        while true {
            guard let (operations, next) = record(in: image, at: position, generation: slot.generation) else {
                if position < image.count, image[position] != 0 || report.records == 0 {
                    report.stoppedAt = "a torn or stale record at byte \(position)"
                }
                break
            }
            if report.records == 0 {
                guard case .begin = operations.first else { throw .corrupt("its area does not begin with a snapshot") }
            }
            do {
                for operation in operations { try apply(operation, to: store, ownerUID: slot.ownerUID) }
            } catch {
                if report.records == 0 { throw .corrupt("its snapshot does not load: \(error)") }
                report.stoppedAt = "record \(report.records) at byte \(position) does not apply: \(error)"
                break
            }
            report.records += 1
            position = next
        }
        guard report.records > 0 else { throw .corrupt("its snapshot is torn") }
        report.areaEnd = position
        return report
    }

    /// What one record (or one part of a batch) says, decoded. A credential is nil when its bytes
    /// no longer match their checksum: zeroed because the credential was released later.
    enum Operation {
        case begin(owner: UInt32, nameCount: UInt64, defaultName: KCMCacheName)
        case cache(
            KCMCacheName, uuid: KCMUUID, principal: KCMPrincipal, kdcOffset: Int32,
            credentials: [(uuid: KCMUUID, credential: KCMCredential?)])
        case initialized(KCMCacheName, uuid: KCMUUID, principal: KCMPrincipal)
        case destroyed(KCMCacheName)
        case stored(KCMCacheName, uuid: KCMUUID, credential: KCMCredential?)
        case removed(KCMCacheName, uuids: [KCMUUID])
        case defaultName(KCMCacheName)
        case kdcOffset(KCMCacheName, Int32)
        case moved(from: KCMCacheName, to: KCMCacheName, uuid: KCMUUID)
        case nameCount(UInt64)
    }

    /// The record at `position` if it is whole and of `generation`: what it says, where the next
    /// starts. Its checksum covers everything but the credentials' bytes (each has its own), so the
    /// payload is decoded first, to find them, and checked after.
    static func record(in image: UnsafeRawBufferPointer, at position: Int, generation: UInt64)
        -> (operations: [Operation], next: Int)?
    {
        guard position >= 0, image.count - position >= StateLayout.recordHeadSize else { return nil }
        let length = Int(StateLayout.readUInt32(image, at: position + 4))
        guard length <= image.count - position - StateLayout.recordHeadSize else { return nil }
        guard StateLayout.readUInt64(image, at: position + 8) == generation else { return nil }
        let start = position + StateLayout.recordHeadSize
        let end = start + length
        // A copy to read with KCMReader, zeroed once read: it holds the credentials' bytes.
        let bytes = Array(UnsafeRawBufferPointer(rebasing: image[start..<end]))
        defer { bytes.wipeStorage() }
        var skipped: [Range<Int>] = []
        let operations: [Operation]
        do {
            operations = try decode(image[position + 16], bytes, skipping: &skipped)
        } catch {
            return nil
        }
        var crc = ccached_state_crc32c(0, image.baseAddress! + position + 4, StateLayout.recordHeadSize - 4)
        var covered = 0
        for range in skipped.sorted(by: { $0.lowerBound < $1.lowerBound }) where range.lowerBound >= covered {
            crc = ccached_state_crc32c(crc, image.baseAddress! + start + covered, range.lowerBound - covered)
            covered = range.upperBound
        }
        crc = ccached_state_crc32c(crc, image.baseAddress! + start + covered, length - covered)
        guard crc == StateLayout.readUInt32(image, at: position) else { return nil }
        return (operations, end)
    }

    /// A record's payload could not be read or applied.
    enum ApplyError: Error, CustomStringConvertible {
        case decoding(KCMDecodingError)
        case store(CredentialStoreError)
        case unknownKind(UInt8)
        case trailingBytes(Int)
        case otherOwner(UInt32)

        var description: String {
            switch self {
            case .decoding(let error): "\(error)"
            case .store(let error): "\(error)"
            case .unknownKind(let kind): "unknown record kind \(kind)"
            case .trailingBytes(let count): "\(count) bytes after the record's fields"
            case .otherOwner(let uid): "snapshot of uid \(uid)"
            }
        }
    }

    /// Decodes the payload of a record of `kind` (a batch into its parts), adding where each
    /// credential's bytes are to `skipped`.
    static func decode(_ kind: UInt8, _ bytes: [UInt8], skipping skipped: inout [Range<Int>]) throws(ApplyError)
        -> [Operation]
    {
        guard let kind = StateLayout.RecordKind(rawValue: kind) else { throw .unknownKind(kind) }
        guard kind == .batch else {
            var reader = KCMReader(bytes)
            return [try decode(kind, &reader, skipping: &skipped)]
        }
        var operations: [Operation] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= StateLayout.partHeadSize else { throw .trailingBytes(bytes.count - offset) }
            let part = bytes[offset]
            let length = bytes[offset + 1..<offset + 5].reduce(0) { $0 << 8 | Int($1) }
            let start = offset + StateLayout.partHeadSize
            guard length <= bytes.count - start else { throw .trailingBytes(bytes.count - start) }
            guard let partKind = StateLayout.RecordKind(rawValue: part), partKind != .begin, partKind != .batch else {
                throw .unknownKind(part)
            }
            var reader = KCMReader(bytes, offset: start, end: start + length)
            operations.append(try decode(partKind, &reader, skipping: &skipped))
            offset = start + length
        }
        return operations
    }

    static func decode(_ kind: StateLayout.RecordKind, _ reader: inout KCMReader, skipping skipped: inout [Range<Int>])
        throws(ApplyError) -> Operation
    {
        do throws(KCMDecodingError) {
            let operation: Operation
            switch kind {
            case .begin:
                let owner = try reader.readUInt32()
                let count = try readUInt64(&reader)
                operation = .begin(owner: owner, nameCount: count, defaultName: try name(&reader))
            case .cache:
                let cacheName = try name(&reader)
                let uuid = try reader.readUUID()
                let principal = try KCMPrincipal.read(from: &reader)
                let offset = try reader.readInt32()
                let count = try reader.readCount(field: "credential", minimumItemSize: 24)
                var credentials: [(uuid: KCMUUID, credential: KCMCredential?)] = []
                credentials.reserveCapacity(count)
                for _ in 0..<count {
                    let uuid = try reader.readUUID()
                    credentials.append((uuid, try credential(&reader, skipping: &skipped)))
                }
                operation = .cache(
                    cacheName, uuid: uuid, principal: principal, kdcOffset: offset, credentials: credentials)
            case .initialized:
                let cacheName = try name(&reader)
                let uuid = try reader.readUUID()
                operation = .initialized(cacheName, uuid: uuid, principal: try KCMPrincipal.read(from: &reader))
            case .destroyed:
                operation = .destroyed(try name(&reader))
            case .stored:
                let cacheName = try name(&reader)
                let uuid = try reader.readUUID()
                operation = .stored(cacheName, uuid: uuid, credential: try credential(&reader, skipping: &skipped))
            case .removed:
                let cacheName = try name(&reader)
                let count = try reader.readCount(field: "removed UUID", minimumItemSize: 16)
                var uuids: [KCMUUID] = []
                for _ in 0..<count { uuids.append(try reader.readUUID()) }
                operation = .removed(cacheName, uuids: uuids)
            case .defaultName:
                operation = .defaultName(try name(&reader))
            case .kdcOffset:
                let cacheName = try name(&reader)
                operation = .kdcOffset(cacheName, try reader.readInt32())
            case .moved:
                let from = try name(&reader)
                let to = try name(&reader)
                operation = .moved(from: from, to: to, uuid: try reader.readUUID())
            case .nameCount:
                operation = .nameCount(try readUInt64(&reader))
            case .batch:
                throw KCMDecodingError.invalidValue(field: "nested batch", value: UInt32(kind.rawValue))
            }
            guard reader.remaining == 0 else { throw KCMDecodingError.invalidValue(field: "record length", value: 0) }
            return operation
        } catch {
            throw .decoding(error)
        }
    }

    static func apply(_ operation: Operation, to store: CredentialStore, ownerUID: UInt32) throws(ApplyError) {
        if case .begin(let owner, _, _) = operation, owner != ownerUID { throw .otherOwner(owner) }
        do throws(CredentialStoreError) {
            switch operation {
            case .begin(_, let count, let defaultName):
                try store.restoreDefault(defaultName)
                store.restoreNameCount(count)
            case .cache(let name, let uuid, let principal, let offset, let credentials):
                try store.restoreCache(
                    name, uuid: uuid, principal: principal, kdcOffset: offset, credentials: credentials)
            case .initialized(let name, let uuid, let principal):
                try store.restoreInitialized(name, uuid: uuid, principal: principal)
            case .destroyed(let name):
                try store.restoreDestroyed(name)
            case .stored(let name, let uuid, let credential):
                // Zeroed: released by a later record; nothing to restore.
                guard let credential else { return }
                try store.restoreStored(credential, uuid: uuid, in: name)
            case .removed(let name, let uuids):
                try store.restoreRemoved(uuids, from: name)
            case .defaultName(let name):
                try store.restoreDefault(name)
            case .kdcOffset(let name, let offset):
                try store.cache(named: name).kdcOffset = offset
            case .moved(let from, let to, let uuid):
                try store.restoreMoved(from: from, to: to, uuid: uuid)
            case .nameCount(let count):
                store.restoreNameCount(count)
            }
        } catch {
            throw .store(error)
        }
    }

    private static func name(_ reader: inout KCMReader) throws(KCMDecodingError) -> KCMCacheName {
        KCMCacheName(bytes: try reader.readData())
    }

    private static func readUInt64(_ reader: inout KCMReader) throws(KCMDecodingError) -> UInt64 {
        UInt64(try reader.readUInt32()) << 32 | UInt64(try reader.readUInt32())
    }

    /// A credential field: u32 length, u32 CRC32C of the bytes, the bytes. Nil when the bytes do not
    /// match (zeroed: released later) or do not parse.
    private static func credential(_ reader: inout KCMReader, skipping skipped: inout [Range<Int>])
        throws(KCMDecodingError) -> KCMCredential?
    {
        let length = Int(try reader.readUInt32())
        let crc = try reader.readUInt32()
        let start = reader.offset
        try reader.skip(length)
        skipped.append(start..<start + length)
        let matches = reader.bytes.withUnsafeBytes { ccached_state_crc32c(0, $0.baseAddress! + start, length) } == crc
        guard matches, let credential = try? KCMCredential(parsing: reader.bytes, range: start..<start + length),
            credential.bytes.count == length
        else { return nil }
        return credential
    }
}
