import CCacheDaemon
import CredentialStore
import KCM
import StoreState
import Synchronization

/// The state file under fuzzing (issue 22): every input's requests are journaled as the daemon
/// journals them, and after the input
/// - the journal loads back into exactly the store the requests left (caches, UUIDs, principals,
///   offsets, credentials byte for byte, the primary);
/// - the file cut at a point the input chooses loads or is refused, without a crash;
/// - the input's own bytes load as a state file, raw and behind a valid header with every record's
///   checksum made valid, so that random payloads reach the record decoders.
enum StateFileFuzz {
    static func attach(to state: DaemonState) -> StateJournal {
        let file: StateMemoryFile
        do {
            file = try StateMemoryFile.create(reservation: 8 << 20)
        } catch {
            FuzzInvariants.fail("cannot make the state file: \(error)")
        }
        let journal = StateJournal(file: file, ownerUID: FuzzSession.ownerUID)
        state.store.withLock { store in
            do {
                try journal.restore(into: store)
            } catch {
                FuzzInvariants.fail("an empty state file does not load: \(error)")
            }
        }
        state.attachStateJournal(journal)
        return journal
    }

    static func check(_ journal: StateJournal, against state: DaemonState, input: [UInt8]) {
        let (bytes, wanted) = state.store.withLock { (Array(journal.file.bytes), Image($0)) }
        if let failure = journal.failure { FuzzInvariants.fail("the state journal stopped: \(failure)") }
        switch load(bytes) {
        case .success(let store):
            let loaded = Image(store)
            if loaded != wanted {
                FuzzInvariants.fail("the state file loads as\n\(loaded)\nbut the store is\n\(wanted)")
            }
        case .failure(let error):
            FuzzInvariants.fail("the state file does not load: \(error)")
        }
        var seed: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in input.prefix(64) { seed = (seed ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let end = max(journal.position, StateLayout.headerSize)
        _ = load(Array(bytes[0..<min(bytes.count, Int(seed % UInt64(end + 1)))]))
        _ = load(input)
        _ = load(sealed(input))
    }

    /// A store loaded from `bytes`, or the load's error.
    static func load(_ bytes: [UInt8]) -> Result<CredentialStore, StateLoadError> {
        let store = CredentialStore(ownerUID: FuzzSession.ownerUID, limits: FuzzSession.limits)
        return bytes.withUnsafeBytes { image in
            do throws(StateLoadError) {
                _ = try StateLoader.load(image, into: store)
                return .success(store)
            } catch {
                return .failure(error)
            }
        }
    }

    /// `input` as the area of generation 1 behind a valid header, each record's generation and
    /// checksum set (the lengths are the input's).
    static func sealed(_ input: [UInt8]) -> [UInt8] {
        var bytes = StateLayout.magic + [UInt8](repeating: 0, count: StateLayout.headerSize - StateLayout.magic.count)
        let slot = StateLayout.Slot(
            generation: 1, areaOffset: UInt64(StateLayout.headerSize), ownerUID: FuzzSession.ownerUID)
        bytes.replaceSubrange(
            StateLayout.slotOffsets[0]..<StateLayout.slotOffsets[0] + StateLayout.slotSize, with: slot.encoded)
        var area = input
        var position = 0
        while position + StateLayout.recordHeadSize <= area.count {
            let length = area[position + 4..<position + 8].reduce(0) { $0 << 8 | Int($1) }
            let end = position + StateLayout.recordHeadSize + length
            guard end <= area.count else { break }
            area.replaceSubrange(position + 8..<position + 16, with: [0, 0, 0, 0, 0, 0, 0, 1])
            let crc = area[position + 4..<end].withUnsafeBytes { StateLayout.checksum($0) }
            area.replaceSubrange(position..<position + 4, with: withUnsafeBytes(of: crc.bigEndian) { Array($0) })
            position = end
        }
        return bytes + area
    }

    /// What a client can see of a store, credentials byte for byte.
    struct Image: Equatable, CustomStringConvertible {
        var defaultName: KCMCacheName
        var caches: [String]

        init(_ store: CredentialStore) {
            defaultName = store.defaultName
            caches = store.cachesInCreationOrder.map { cache in
                var text = "\(cache.name) \(cache.uuid) \(cache.principal) offset \(cache.kdcOffset):"
                // swift-format-ignore: ReplaceForEachWithForLoop
                cache.credentials.forEach { text += " \($0.uuid)=\(Array($0.credential.bytes).hashValue)" }
                return text
            }
        }

        var description: String { "default \(defaultName)\n" + caches.joined(separator: "\n") }
    }
}
