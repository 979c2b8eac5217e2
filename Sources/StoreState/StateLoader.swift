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
            guard let (kind, payload, next) = record(in: image, at: position, generation: slot.generation) else {
                if position < image.count, image[position] != 0 || report.records == 0 {
                    report.stoppedAt = "a torn or stale record at byte \(position)"
                }
                break
            }
            if report.records == 0, kind != StateLayout.RecordKind.begin.rawValue {
                throw .corrupt("its area does not begin with a snapshot")
            }
            do {
                try apply(kind, payload, to: store, ownerUID: slot.ownerUID)
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

    /// The record at `position` if it is whole and of `generation`: kind, payload, where the next starts.
    static func record(in image: UnsafeRawBufferPointer, at position: Int, generation: UInt64)
        -> (kind: UInt8, payload: UnsafeRawBufferPointer, next: Int)?
    {
        guard position >= 0, image.count - position >= StateLayout.recordHeadSize else { return nil }
        let length = Int(StateLayout.readUInt32(image, at: position + 4))
        guard length <= image.count - position - StateLayout.recordHeadSize else { return nil }
        guard StateLayout.readUInt64(image, at: position + 8) == generation else { return nil }
        let end = position + StateLayout.recordHeadSize + length
        let covered = UnsafeRawBufferPointer(rebasing: image[position + 4..<end])
        guard StateLayout.crc(covered) == StateLayout.readUInt32(image, at: position) else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: image[position + StateLayout.recordHeadSize..<end])
        return (image[position + 16], payload, end)
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

    static func apply(_ kind: UInt8, _ payload: UnsafeRawBufferPointer, to store: CredentialStore, ownerUID: UInt32)
        throws(ApplyError)
    {
        // A copy to read with KCMReader, zeroed once read: it holds the credentials' bytes.
        let bytes = Array(payload)
        defer { bytes.wipeStorage() }
        var reader = KCMReader(bytes)
        do {
            guard let kind = StateLayout.RecordKind(rawValue: kind) else { throw ApplyError.unknownKind(kind) }
            switch kind {
            case .begin:
                let owner = try reader.readUInt32()
                guard owner == ownerUID else { throw ApplyError.otherOwner(owner) }
                let count = try readUInt64(&reader)
                let name = KCMCacheName(bytes: try reader.readData())
                try store.restoreDefault(name)
                store.restoreNameCount(count)
            case .cache:
                let name = KCMCacheName(bytes: try reader.readData())
                let uuid = try reader.readUUID()
                let principal = try KCMPrincipal.read(from: &reader)
                let offset = try reader.readInt32()
                let count = try reader.readCount(field: "credential", minimumItemSize: 20)
                var credentials: [(uuid: KCMUUID, credential: KCMCredential)] = []
                credentials.reserveCapacity(count)
                for _ in 0..<count {
                    let uuid = try reader.readUUID()
                    credentials.append((uuid, try credential(&reader)))
                }
                try end(reader)
                try store.restoreCache(
                    name, uuid: uuid, principal: principal, kdcOffset: offset, credentials: credentials)
            case .initialized:
                let name = KCMCacheName(bytes: try reader.readData())
                let uuid = try reader.readUUID()
                let principal = try KCMPrincipal.read(from: &reader)
                try end(reader)
                try store.restoreInitialized(name, uuid: uuid, principal: principal)
            case .destroyed:
                let name = KCMCacheName(bytes: try reader.readData())
                try end(reader)
                try store.restoreDestroyed(name)
            case .stored:
                let name = KCMCacheName(bytes: try reader.readData())
                let uuid = try reader.readUUID()
                let stored = try credential(&reader)
                try end(reader)
                try store.restoreStored(stored, uuid: uuid, in: name)
            case .removed:
                let name = KCMCacheName(bytes: try reader.readData())
                let flags = KCMMatchFlags(rawValue: try reader.readUInt32())
                let template = try KCMMatchTemplate.read(from: &reader)
                try end(reader)
                try store.removeCredentials(from: name, matching: CredentialMatcher(flags: flags, template: template))
            case .defaultName:
                let name = KCMCacheName(bytes: try reader.readData())
                try end(reader)
                try store.restoreDefault(name)
            case .kdcOffset:
                let name = KCMCacheName(bytes: try reader.readData())
                let offset = try reader.readInt32()
                try end(reader)
                try store.cache(named: name).kdcOffset = offset
            case .moved:
                let from = KCMCacheName(bytes: try reader.readData())
                let to = KCMCacheName(bytes: try reader.readData())
                let uuid = try reader.readUUID()
                try end(reader)
                try store.restoreMoved(from: from, to: to, uuid: uuid)
            case .nameCount:
                let count = try readUInt64(&reader)
                try end(reader)
                store.restoreNameCount(count)
            case .batch:
                var offset = 0
                while offset < payload.count {
                    guard payload.count - offset >= StateLayout.partHeadSize else { throw ApplyError.trailingBytes(0) }
                    let part = payload[offset]
                    let length = Int(StateLayout.readUInt32(payload, at: offset + 1))
                    let start = offset + StateLayout.partHeadSize
                    guard length <= payload.count - start else { throw ApplyError.trailingBytes(payload.count - start) }
                    guard part != StateLayout.RecordKind.begin.rawValue, part != StateLayout.RecordKind.batch.rawValue
                    else { throw ApplyError.unknownKind(part) }
                    try apply(
                        part, UnsafeRawBufferPointer(rebasing: payload[start..<start + length]), to: store,
                        ownerUID: ownerUID)
                    offset = start + length
                }
            }
        } catch let error as ApplyError {
            throw error
        } catch let error as KCMDecodingError {
            throw .decoding(error)
        } catch let error as CredentialStoreError {
            throw .store(error)
        } catch {
            throw .trailingBytes(-1)
        }
    }

    private static func readUInt64(_ reader: inout KCMReader) throws(KCMDecodingError) -> UInt64 {
        UInt64(try reader.readUInt32()) << 32 | UInt64(try reader.readUInt32())
    }

    private static func credential(_ reader: inout KCMReader) throws(KCMDecodingError) -> KCMCredential {
        let range = try reader.readDataRange()
        let credential = try KCMCredential(parsing: reader.bytes, range: range)
        guard credential.bytes.count == range.count else {
            throw .invalidValue(field: "credential length", value: UInt32(truncatingIfNeeded: range.count))
        }
        return credential
    }

    private static func end(_ reader: KCMReader) throws(ApplyError) {
        guard reader.remaining == 0 else { throw .trailingBytes(reader.remaining) }
    }
}
