import CCacheDaemon
import CredentialStore
import Glibc
import KCM
import StoreState
import TestSupport
import Testing

/// The state file's layout and journal (Docs/state.md): what a daemon writes, a daemon after it
/// reads back; a file cut or damaged anywhere loads a prefix of the changes or is refused.
@Suite("state journal")
struct StateJournalTests {
    static let uid: UInt32 = 1000

    /// Everything of a store a restore must bring back, in creation order.
    struct Fingerprint: Equatable, CustomStringConvertible {
        struct Cache: Equatable {
            var name: KCMCacheName
            var uuid: KCMUUID
            var principal: KCMPrincipal
            var kdcOffset: Int32
            var credentials: [(KCMUUID, [UInt8])]

            static func == (a: Cache, b: Cache) -> Bool {
                a.name == b.name && a.uuid == b.uuid && a.principal == b.principal && a.kdcOffset == b.kdcOffset
                    && a.credentials.map(\.0) == b.credentials.map(\.0)
                    && a.credentials.map(\.1) == b.credentials.map(\.1)
            }
        }
        var defaultName: KCMCacheName
        var caches: [Cache]

        init(_ store: CredentialStore) {
            defaultName = store.defaultName
            caches = store.cachesInCreationOrder.map { cache in
                var credentials: [(KCMUUID, [UInt8])] = []
                // swift-format-ignore: ReplaceForEachWithForLoop
                cache.credentials.forEach { credentials.append(($0.uuid, Array($0.credential.bytes))) }
                return Cache(
                    name: cache.name, uuid: cache.uuid, principal: cache.principal, kdcOffset: cache.kdcOffset,
                    credentials: credentials)
            }
        }

        var description: String {
            "default \(defaultName); "
                + caches.map { "\($0.name) \($0.uuid) \($0.principal) off \($0.kdcOffset) × \($0.credentials.count)" }
                .joined(separator: "; ")
        }
    }

    /// A store with its journal in a new memory file.
    static func journaled() throws -> (CredentialStore, StateJournal) {
        let store = CredentialStore(ownerUID: uid)
        let journal = StateJournal(file: try StateMemoryFile.create(reservation: 64 << 20), ownerUID: uid)
        try journal.restore(into: store)
        return (store, journal)
    }

    /// Applies `request` as the daemon does, the journal told of it.
    static func perform(_ request: KCMRequest, _ store: CredentialStore, _ journal: StateJournal) {
        _ = try? RequestDispatcher.perform(request, store: store, applied: journal.record)
    }

    /// A store loaded from `bytes`, or the load's error.
    static func load(_ bytes: [UInt8]) -> Result<(CredentialStore, StateLoadReport), StateLoadError> {
        let store = CredentialStore(ownerUID: uid)
        return bytes.withUnsafeBytes { image in
            do throws(StateLoadError) {
                return .success((store, try StateLoader.load(image, into: store)))
            } catch {
                return .failure(error)
            }
        }
    }

    static func credential(
        _ server: String, ticket: Int = 200, seed: UInt8 = 1, client: KCMPrincipal = Fixture.alice,
        marker: [UInt8]? = nil
    ) -> KCMCredential {
        KCMCredentialFields(
            client: client, server: principal(server), enctype: 18, key: filler(32, seed: seed),
            times: KCMTicketTimes(authtime: 1, starttime: 1, endtime: 0x7000_0000, renewTill: 0x7100_0000),
            ticket: marker ?? filler(ticket, seed: seed)
        ).credential()
    }

    /// Every kind of change the journal records, in an order that exercises each.
    static let script: [KCMRequest] = [
        .initialize(name: "1000", principal: Fixture.alice),
        .store(name: "1000", credential: Fixture.tgt.credential()),
        .store(name: "", credential: Fixture.configEntry(key: "pa_type", value: "2").credential()),
        .store(name: "1000", credential: Fixture.everyField.credential()),
        .genNew,
        .initialize(name: "1000:1", principal: Fixture.bob),
        .store(name: "1000:1", credential: credential("krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL", client: Fixture.bob)),
        .setDefaultCache(name: "1000:1"),
        .setKDCOffset(name: "1000", offset: -42),
        .store(name: "1000", credential: Fixture.tgt.credential()),
        .removeCred(
            name: "1000", flags: [],
            template: KCMMatchTemplate(client: Fixture.alice, server: Fixture.configServer(key: "pa_type"))),
        .initialize(name: "1000:2", principal: Fixture.alice),
        .store(name: "1000:2", credential: credential("HTTP/www@KCMTEST.LOCAL", seed: 9)),
        .moveCache(from: "1000:2", to: "1000:moved"),
        .replace(
            name: "1000:r", kdcOffset: 7, principal: Fixture.alice,
            credentials: [credential("a/b@KCMTEST.LOCAL", seed: 3), credential("c/d@KCMTEST.LOCAL", seed: 4)]),
        .setDefaultCache(name: "1000:nowhere"),
        .setDefaultCache(name: "1000:1"),
        .destroy(name: "1000:1"),
        .initialize(name: "1000", principal: Fixture.alice),
        .store(name: "1000", credential: credential("ldap/x@KCMTEST.LOCAL", ticket: 3000, seed: 5)),
    ]

    /// Runs the script; returns the file's bytes and the store's fingerprint before and after each step.
    static func scripted() throws -> (bytes: [UInt8], states: [Fingerprint], journal: StateJournal) {
        let (store, journal) = try journaled()
        var states = [Fingerprint(store)]
        for request in script {
            perform(request, store, journal)
            states.append(Fingerprint(store))
        }
        return (Array(journal.file.bytes), states, journal)
    }

    @Test("every kind of change loads back: caches, principals, credentials with their UUIDs, offsets, the primary")
    func roundTrip() throws {
        let (bytes, states, journal) = try Self.scripted()
        #expect(states.last!.caches.count == 3, "\(states.last!)")
        let (loaded, report) = try Self.load(bytes).get()
        #expect(Fingerprint(loaded) == states.last!, "loaded \(Fingerprint(loaded))\nwanted \(states.last!)")
        #expect(report.records > Self.script.count)
        #expect(report.stoppedAt == nil)
        // The name counter came back too: GEN_NEW does not hand out 1000:1 again.
        #expect(loaded.generateName() == "1000:2")
        #expect(journal.failure == nil)
    }

    @Test("a snapshot (a new generation) loads back the same store, and the old area is zeroed")
    func snapshotRoundTrip() throws {
        let (store, journal) = try Self.journaled()
        for request in Self.script { Self.perform(request, store, journal) }
        let oldArea = journal.areaStart..<journal.position
        journal.saveSnapshot(of: store)
        #expect(journal.generation == 2)
        #expect(!oldArea.overlaps(journal.areaStart..<journal.position))
        let bytes = Array(journal.file.bytes)
        #expect(bytes[oldArea].allSatisfy { $0 == 0 })
        let (loaded, report) = try Self.load(bytes).get()
        #expect(report.generation == 2)
        #expect(Fingerprint(loaded) == Fingerprint(store))
    }

    @Test(
        "a daemon dying at any byte of any request's record leaves the state before that request or after it"
    )
    func everyTruncation() throws {
        let (store, journal) = try Self.journaled()
        var before = Fingerprint(store)
        var cuts = 0
        for request in Self.script {
            let start = journal.position
            let area = journal.areaStart
            let previous = Array(journal.file.bytes)
            Self.perform(request, store, journal)
            let after = Fingerprint(store)
            try #require(journal.areaStart == area, "the script is too small to compact")
            // The file before the request with its record's payload written up to each byte: a
            // daemon that died there. The record's head, with its checksum, is written last; what
            // the request released is zeroed only after that.
            let image = Array(journal.file.bytes)
            let payload = start + StateLayout.recordHeadSize
            for cut in payload...journal.position {
                var torn = previous + [UInt8](repeating: 0, count: max(0, image.count - previous.count))
                torn.replaceSubrange(payload..<cut, with: image[payload..<cut])
                if cut == journal.position { torn = image }
                let (loaded, _) = try Self.load(torn).get()
                let state = Fingerprint(loaded)
                #expect(state == before || state == after && cut == journal.position, "\(request) cut at \(cut)")
                cuts += 1
            }
            before = after
        }
        #expect(cuts > 1000)
        // And the slots: a header cut anywhere loads as no state or refuses, never traps.
        let image = Array(journal.file.bytes)
        for cut in 0...StateLayout.slotOffsets.last! + StateLayout.slotSize {
            if case .success(let (loaded, _)) = Self.load(Array(image[0..<cut])) { #expect(loaded.cacheCount == 0) }
        }
    }

    @Test("a released credential's bytes are zeroed in the file at once, and the file still loads")
    func releasedBytesZeroed() throws {
        let (store, journal) = try Self.journaled()
        let marker = Array("STATE-MARKER-0123456789".utf8)
        let secret = Self.credential("svc/secret@KCMTEST.LOCAL", marker: marker)
        func hits() -> Int {
            let bytes = Array(journal.file.bytes)
            guard bytes.count >= marker.count else { return 0 }
            return (0...bytes.count - marker.count).filter { bytes[$0..<$0 + marker.count].elementsEqual(marker) }.count
        }
        let releases: [(String, KCMRequest)] = [
            (
                "REMOVE_CRED",
                .removeCred(
                    name: "1000", flags: [], template: KCMMatchTemplate(server: principal("svc/secret@KCMTEST.LOCAL")))
            ),
            ("STORE superseding", .store(name: "1000", credential: Self.credential("svc/secret@KCMTEST.LOCAL"))),
            ("DESTROY", .destroy(name: "1000")),
            ("INITIALIZE", .initialize(name: "1000", principal: Fixture.alice)),
            ("REPLACE", .replace(name: "1000", kdcOffset: 0, principal: Fixture.alice, credentials: [])),
        ]
        for (what, release) in releases {
            Self.perform(.initialize(name: "1000", principal: Fixture.alice), store, journal)
            Self.perform(.store(name: "1000", credential: Self.credential("other/x@KCMTEST.LOCAL")), store, journal)
            Self.perform(.store(name: "1000", credential: secret), store, journal)
            #expect(hits() == 1, "\(what): stored")
            Self.perform(release, store, journal)
            #expect(hits() == 0, "\(what): released")
            let (loaded, report) = try Self.load(Array(journal.file.bytes)).get()
            #expect(Fingerprint(loaded) == Fingerprint(store), "\(what)")
            #expect(report.stoppedAt == nil, "\(what)")
        }
    }

    @Test("a torn last record loses that change alone, and the journal goes on from the state before it")
    func tornLastRecord() throws {
        let (store, journal) = try Self.journaled()
        for request in Self.script { Self.perform(request, store, journal) }
        let before = Fingerprint(store)
        let start = journal.position
        Self.perform(
            .store(name: "1000", credential: Self.credential("late/x@KCMTEST.LOCAL", seed: 77)), store, journal)
        // The daemon died halfway through writing the record: its head (written last) is not there.
        var bytes = Array(journal.file.bytes)
        for index in start..<start + StateLayout.recordHeadSize { bytes[index] = 0 }
        for index in (start + (journal.position - start) / 2)..<journal.position { bytes[index] = 0 }
        let (loaded, report) = try Self.load(bytes).get()
        #expect(Fingerprint(loaded) == before)
        #expect(report.records > Self.script.count / 2)

        // The next daemon restores that file and keeps journaling into it.
        let file = try StateMemoryFile.create(reservation: 64 << 20)
        #expect(file.ensure(bytes.count))
        bytes.withUnsafeBytes { file.base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let next = CredentialStore(ownerUID: Self.uid)
        let nextJournal = StateJournal(file: file, ownerUID: Self.uid)
        try nextJournal.restore(into: next)
        #expect(Fingerprint(next) == before)
        Self.perform(
            .store(name: "1000", credential: Self.credential("later/x@KCMTEST.LOCAL", seed: 78)), next, nextJournal)
        let (third, thirdReport) = try Self.load(Array(file.bytes)).get()
        #expect(Fingerprint(third) == Fingerprint(next))
        #expect(thirdReport.stoppedAt == nil)
    }

    @Test("a daemon that died between a new generation's slot and zeroing the old area: the next one zeroes it")
    func staleAreaZeroedOnRestore() throws {
        let (store, journal) = try Self.journaled()
        let marker = Array("STALE-AREA-MARKER-42".utf8)
        let secret = Self.credential("svc/stale@KCMTEST.LOCAL", marker: marker)
        Self.perform(.initialize(name: "1000", principal: Fixture.alice), store, journal)
        // A large credential first, gone by the time of the snapshot: the marker then sits past
        // where the next snapshot ends, should it be written over the old area.
        Self.perform(
            .store(name: "1000", credential: Self.credential("svc/filler@KCMTEST.LOCAL", ticket: 6000)), store,
            journal)
        Self.perform(.store(name: "1000", credential: secret), store, journal)
        Self.perform(
            .removeCred(
                name: "1000", flags: [], template: KCMMatchTemplate(server: principal("svc/filler@KCMTEST.LOCAL"))),
            store, journal)
        let oldArea = journal.areaStart..<journal.position
        let oldBytes = Array(journal.file.bytes[oldArea])
        journal.saveSnapshot(of: store)
        try #require(journal.areaStart >= oldArea.upperBound)
        // As if the daemon died right after the slot: the old area was never zeroed.
        var image = Array(journal.file.bytes)
        image.replaceSubrange(oldArea, with: oldBytes)
        func hits(_ bytes: [UInt8]) -> Int {
            (0...bytes.count - marker.count).filter { bytes[$0..<$0 + marker.count].elementsEqual(marker) }.count
        }
        #expect(hits(image) == 2)
        let file = try StateMemoryFile.create(reservation: 64 << 20)
        #expect(file.ensure(image.count))
        image.withUnsafeBytes { file.base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let next = CredentialStore(ownerUID: Self.uid)
        try StateJournal(file: file, ownerUID: Self.uid).restore(into: next)
        #expect(Fingerprint(next) == Fingerprint(store))
        #expect(hits(Array(file.bytes)) == 1, "the restored store's own copy, and no other")
    }

    @Test("many superseding STOREs compact into new generations; the file's pages stay few and the store loads back")
    func compaction() throws {
        let (store, journal) = try Self.journaled()
        Self.perform(.initialize(name: "1000", principal: Fixture.alice), store, journal)
        for round in 0..<3000 {
            let server = "svc\(round % 20)/host@KCMTEST.LOCAL"
            Self.perform(
                .store(name: "1000", credential: Self.credential(server, ticket: 900, seed: UInt8(round % 251))), store,
                journal)
        }
        #expect(journal.generationsWritten > 3)
        #expect(journal.failure == nil)
        var status = stat()
        #expect(fstat(journal.file.fileDescriptor, &status) == 0)
        // 20 credentials of ~1 KiB: two areas of at most ~300 KiB each are backed, not 3,000 records.
        #expect(Int(status.st_blocks) * 512 < 1 << 20, "\(status.st_blocks) blocks")
        let (loaded, _) = try Self.load(Array(journal.file.bytes)).get()
        #expect(Fingerprint(loaded) == Fingerprint(store))
        #expect(loaded.credentialCount == 20)
    }

    @Test("a newer layout, another user's file and a file without the magic are refused with a clear error")
    func refusals() throws {
        let (bytes, _, _) = try Self.scripted()
        var newer = bytes
        // Both slots rewritten with layout version 2, checksums valid.
        for offset in StateLayout.slotOffsets {
            let raw = Array(bytes[offset..<offset + StateLayout.slotSize])
            guard let slot = raw.withUnsafeBytes({ StateLayout.Slot(decoding: $0) }) else { continue }
            let bumped = StateLayout.Slot(
                generation: slot.generation, areaOffset: slot.areaOffset, version: 2, ownerUID: slot.ownerUID)
            newer.replaceSubrange(offset..<offset + StateLayout.slotSize, with: bumped.encoded)
        }
        guard case .failure(let error) = Self.load(newer) else {
            Issue.record("a newer layout loaded")
            return
        }
        #expect(error == .newerLayout(found: 2, supported: StateLayout.version))
        #expect(error.description.contains("newer than this daemon's"))

        let other = CredentialStore(ownerUID: 1001)
        let otherResult = bytes.withUnsafeBytes { image -> StateLoadError? in
            do throws(StateLoadError) {
                _ = try StateLoader.load(image, into: other)
                return nil
            } catch {
                return error
            }
        }
        #expect(otherResult == .otherOwner(found: Self.uid, expected: 1001))
        var foreign = bytes
        foreign[0] = UInt8(ascii: "X")
        guard case .failure(.notAStateFile) = Self.load(foreign) else {
            Issue.record("a file without the magic loaded")
            return
        }
    }

    @Test("a wiped file is empty and loads as no state")
    func wipe() throws {
        let (store, journal) = try Self.journaled()
        for request in Self.script { Self.perform(request, store, journal) }
        journal.wipe()
        var status = stat()
        #expect(fstat(journal.file.fileDescriptor, &status) == 0 && status.st_size == 0)
        Self.perform(.initialize(name: "1000", principal: Fixture.alice), store, journal)
        #expect(journal.file.size == 0, "nothing is written after a wipe")
        let (loaded, report) = try Self.load([]).get()
        #expect(report.generation == 0 && loaded.cacheCount == 0)
    }

    /// Recomputes every record's checksum along the chain its lengths make, so damage inside a
    /// payload reaches the decoders instead of stopping at the checksum.
    static func resealed(_ bytes: [UInt8], areaOffset: Int) -> [UInt8] {
        var bytes = bytes
        var position = areaOffset
        while position + StateLayout.recordHeadSize <= bytes.count {
            let length = bytes[position + 4..<position + 8].reduce(0) { $0 << 8 | Int($1) }
            let end = position + StateLayout.recordHeadSize + length
            guard length > 0, end <= bytes.count else { break }
            let crc = bytes[position + 4..<end].withUnsafeBytes { StateLayout.checksum($0) }
            bytes.replaceSubrange(position..<position + 4, with: withUnsafeBytes(of: crc.bigEndian) { Array($0) })
            position = end
        }
        return bytes
    }

    @Test("random bytes, damaged files and damaged records with valid checksums never crash the loader")
    func hostileFiles() throws {
        let (bytes, _, journal) = try Self.scripted()
        var random = SplitMix64(seed: 0x22)
        for _ in 0..<500 {
            let count = Int(random.next() % 6000)
            var junk = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if junk.count > 100, random.next() % 2 == 0 {
                junk.replaceSubrange(0..<80, with: bytes[0..<80])
            }
            _ = Self.load(junk)
        }
        for round in 0..<1500 {
            var damaged = bytes
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let index = journal.areaStart + Int(random.next() % UInt64(journal.position - journal.areaStart))
                damaged[index] = UInt8(truncatingIfNeeded: random.next())
            }
            if round % 2 == 0 { damaged = Self.resealed(damaged, areaOffset: journal.areaStart) }
            _ = Self.load(damaged)
        }
    }
}
