import CSupport
import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a /proc file to its end (Foundation's `String(contentsOfFile:)` stops after one read).
func readProcFile(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw POSIXError(.ENOENT) }
    defer { try? handle.close() }
    return String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
}

/// Counts the occurrences of `marker` in every readable mapping of process `pid`, through
/// /proc/PID/mem (root: the daemon is non-dumpable). Also returns how many bytes were scanned.
func countInMemory(of pid: pid_t, _ marker: [UInt8]) throws -> (hits: Int, scanned: Int) {
    let maps = try readProcFile("/proc/\(pid)/maps")
    let mem = open("/proc/\(pid)/mem", O_RDONLY)
    guard mem >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(mem) }
    var hits = 0
    var scanned = 0
    let chunk = 1 << 20
    var buffer = [UInt8](repeating: 0, count: chunk + marker.count)
    for line in maps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, fields[1].hasPrefix("r"), !line.hasSuffix("[vvar]"), !line.hasSuffix("[vsyscall]")
        else { continue }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let low = UInt64(range[0], radix: 16), let high = UInt64(range[1], radix: 16) else {
            continue
        }
        var offset = low
        var carried = 0  // bytes kept from the previous chunk, so a marker across chunks is found
        while offset < high {
            let want = Int(min(UInt64(chunk), high - offset))
            let got = buffer.withUnsafeMutableBytes {
                pread(mem, $0.baseAddress! + carried, want, off_t(Int64(bitPattern: offset)))
            }
            guard got > 0 else { break }
            scanned += got
            let total = carried + got
            buffer.withUnsafeBytes { raw in
                marker.withUnsafeBytes { needle in
                    var index = 0
                    while index + needle.count <= total {
                        guard
                            let found = memchr(
                                raw.baseAddress! + index, Int32(needle[0]), total - needle.count + 1 - index)
                        else { break }
                        let position = raw.baseAddress!.distance(to: UnsafeRawPointer(found))
                        if memcmp(raw.baseAddress! + position, needle.baseAddress!, needle.count) == 0 { hits += 1 }
                        index = position + 1
                    }
                }
            }
            carried = min(marker.count - 1, total)
            buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress!.copyMemory(from: raw.baseAddress! + (total - carried), byteCount: carried)
            }
            offset += UInt64(got)
        }
    }
    return (hits, scanned)
}

/// 32 random bytes: nothing else in a process holds them by chance.
func randomMarker() -> [UInt8] {
    var random = SystemRandomNumberGenerator()
    return (0..<32).map { _ in random.next() }
}

/// A credential for `client` whose key and ticket carry `marker`.
func markedCredential(client: String, server: String, marker: [UInt8]) throws -> KCMCredential {
    let now = UInt32(time(nil))
    let fields = KCMCredentialFields(
        client: KCMPrincipal(client), server: KCMPrincipal(server), enctype: 18, key: marker,
        times: KCMTicketTimes(authtime: now, starttime: now, endtime: now + 3600, renewTill: 0),
        ticketFlags: 0x0040_0000,
        ticket: [0x61, 0x82, 0x01, 0x00] + marker + Array(repeating: 0x42, count: 200))
    return try KCMCredential(parsing: fields.encoded)
}

/// STOREs into `name` a credential of alice's for `server` (in the test realm) carrying `marker`.
func storeMarked(on connection: RawKCMConnection, in name: KCMCacheName, server: String, marker: [UInt8]) throws
    -> KCMStatus
{
    let credential = try markedCredential(
        client: "alice@CCACHED.TEST", server: server + "@CCACHED.TEST", marker: marker)
    return try connection.call(.store(name: name, credential: credential)).status
}

/// Secrets live in memory only and are wiped: a ticket's bytes are found in the daemon's memory while
/// it is stored and nowhere once `kdestroy` has run, and its memory is locked and kept out of dumps.
@Suite("secrets in memory")
final class SecretMemoryTests: TestbedSuite {
    override class var services: Int { 1 }

    @Test(
        "a stored ticket's marker is in the daemon's memory, and after kdestroy (or supersede, remove, replace) it is found zero times",
        .requiresRoot("needs root to read the non-dumpable daemon's /proc/PID/mem"))
    func markerGoneAfterKdestroy() throws {
        try bed.kinit("alice")
        let pid = try #require(bed.daemon?.processIdentifier)
        let marker = randomMarker()
        #expect(try countInMemory(of: pid, marker).hits == 0, "the marker is there before it was sent")

        let connection = try RawKCMConnection(path: bed.socketPath)
        let defaultName = try connection.call(.getDefaultCache)
        let name = KCMCacheName(bytes: Array(defaultName.payload.dropLast()))
        let credential = try markedCredential(
            client: "alice@CCACHED.TEST", server: "marker/localhost@CCACHED.TEST", marker: marker)
        #expect(try connection.call(.store(name: name, credential: credential)).status == .success)
        // Read it back three ways: the list (klist), by UUID, and by server name (RETRIEVE).
        let listing = try bed.expectSuccess("klist").stdout
        #expect(listing.contains("marker/localhost@CCACHED.TEST"), "\(listing)")
        let uuids = try connection.call(.getCredUUIDList(name: name)).payload
        for start in stride(from: 0, to: uuids.count, by: 16) {
            var reader = KCMReader(Array(uuids[start..<start + 16]))
            #expect(try connection.call(.getCredByUUID(name: name, uuid: try reader.readUUID())).status == .success)
        }
        var template = KCMMatchTemplate()
        template.server = KCMPrincipal("marker/localhost@CCACHED.TEST")
        let retrieved = try connection.call(.retrieve(name: name, flags: [], template: template))
        #expect(retrieved.status == .success)
        #expect(retrieved.payload.count == credential.bytes.count)

        let stored = try countInMemory(of: pid, marker)
        print(
            "memory scan of ccached pid \(pid) while stored: \(stored.hits) occurrence(s) of the marker in \(stored.scanned / 1024) KiB"
        )
        #expect(stored.hits >= 1, "the scan must see the stored ticket, or its zero after kdestroy proves nothing")

        // A credential superseded by a STORE, one removed by REMOVE_CRED, and a cache's contents
        // replaced by REPLACE: each one's marker is gone at once, while the first is still stored.
        let superseded = randomMarker()
        let removed = randomMarker()
        let replaced = randomMarker()
        #expect(
            try storeMarked(on: connection, in: name, server: "superseded/localhost", marker: superseded) == .success)
        #expect(
            try storeMarked(on: connection, in: name, server: "superseded/localhost", marker: randomMarker())
                == .success)
        #expect(try storeMarked(on: connection, in: name, server: "removed/localhost", marker: removed) == .success)
        var removal = KCMMatchTemplate()
        removal.server = KCMPrincipal("removed/localhost@CCACHED.TEST")
        #expect(try connection.call(.removeCred(name: name, flags: [], template: removal)).status == .success)
        let other = KCMCacheName("\(getuid()):replaced")
        let alice = KCMPrincipal("alice@CCACHED.TEST")
        let withMarker = try markedCredential(
            client: "alice@CCACHED.TEST", server: "krbtgt/CCACHED.TEST@CCACHED.TEST", marker: replaced)
        #expect(
            try connection.call(.replace(name: other, kdcOffset: 0, principal: alice, credentials: [withMarker])).status
                == .success)
        #expect(try countInMemory(of: pid, replaced).hits >= 1)
        #expect(
            try connection.call(.replace(name: other, kdcOffset: 0, principal: alice, credentials: [])).status
                == .success)
        for (what, marker) in [("superseded", superseded), ("removed", removed), ("replaced", replaced)] {
            #expect(try countInMemory(of: pid, marker).hits == 0, "a \(what) credential's bytes survived")
        }
        #expect(try countInMemory(of: pid, marker).hits >= 1, "the first ticket is still stored")
        #expect(try connection.call(.destroy(name: other)).status == .success)

        try bed.expectSuccess("kdestroy")
        #expect(try bed.run("klist", "-s").status != 0)
        let after = try countInMemory(of: pid, marker)
        print(
            "memory scan of ccached pid \(pid) after kdestroy: \(after.hits) occurrence(s) in \(after.scanned / 1024) KiB"
        )
        #expect(after.hits == 0, "credential bytes survived kdestroy somewhere in the daemon's memory")
        // The connection that read the ticket is still open: its buffers are clean too.
        #expect(try connection.call(.getDefaultCache).status == .success)
    }

    @Test(
        "renewed session keys are in the daemon's memory while stored and found zero times after kdestroy -A",
        .requiresRoot("needs root to read the non-dumpable daemon's /proc/PID/mem"))
    func renewedKeysGoneAfterKdestroy() throws {
        let pid = try #require(bed.daemon?.processIdentifier)
        let ctl = ["CCACHED_SOCKET": bed.socketPath, "CCACHED_DAEMON": ccachedBinary]
        try bed.kinit("alice", "-l", "1h", "-r", "1d")
        let connection = try RawKCMConnection(path: bed.socketPath)
        let name = KCMCacheName("\(getuid())")
        /// The session key of the cache's TGT, as the daemon stores it now.
        func tgtKey() throws -> [UInt8] {
            let list = try connection.call(.getCredList(name: name))
            let credentials = try KCMReply(payload: list.payload, for: .getCredList).asCredentialList()
            let krbtgt = KCMPrincipal("krbtgt/CCACHED.TEST@CCACHED.TEST").matchKey
            let tgt = try #require(credentials.first { !$0.isConfigEntry && Array($0.serverKey) == krbtgt })
            return try tgt.decodeFields().key
        }
        // Three renewals, each a new session key from the KDC, encoded by the daemon.
        var keys = [try tgtKey()]
        for _ in 0..<3 {
            let renew = try bed.run([ccachectlBinary, "renew"], extra: ctl)
            #expect(renew.stdout.contains("renewed 1 ticket"), "\(renew)\n\(bed.daemonLogText)")
            keys.append(try tgtKey())
        }
        #expect(Set(keys).count == keys.count, "every renewal brings a new session key")
        let stored = try countInMemory(of: pid, keys.last!)
        #expect(stored.hits >= 1, "the scan must see the stored renewed key, or its zero after kdestroy proves nothing")

        try bed.expectSuccess("kdestroy", "-A")
        for (index, key) in keys.enumerated() {
            let after = try countInMemory(of: pid, key)
            print(
                "key \(index) (\(index == 0 ? "kinit's" : "renewal \(index)")) after kdestroy -A: \(after.hits) occurrence(s) in \(after.scanned / 1024) KiB"
            )
            #expect(after.hits == 0, "session key \(index) survived kdestroy -A in the daemon's memory")
        }
    }

    @Test(
        "a credential list over 192 KiB, read and then destroyed, leaves no copy behind: neither while its connection stays open nor once it closes (no wait for the thread to exit)",
        .requiresRoot("needs root to read the non-dumpable daemon's /proc/PID/mem"))
    func largeReplyLeavesNoCopy() throws {
        let pid = try #require(bed.daemon?.processIdentifier)
        let marker = randomMarker()
        // 64 tickets of about 4 KiB, each carrying the marker: a list over the 192 KiB above which
        // the event loop hands the reply to a thread of its own, which sends it gathered from the store.
        let now = UInt32(time(nil))
        let credentials = try (0..<64).map { index in
            try KCMCredential(
                parsing: KCMCredentialFields(
                    client: KCMPrincipal("alice@CCACHED.TEST"),
                    server: KCMPrincipal("svc\(index)/localhost@CCACHED.TEST"), enctype: 18, key: marker,
                    times: KCMTicketTimes(authtime: now, starttime: now, endtime: now + 3600), ticketFlags: 0x0040_0000,
                    ticket: [0x61, 0x82, 0x10, 0x00] + marker + Array(repeating: 0x42, count: 4000)
                ).encoded)
        }
        let name = KCMCacheName("\(getuid()):large")
        let writer = try RawKCMConnection(path: bed.socketPath)
        #expect(
            try writer.call(
                .replace(
                    name: name, kdcOffset: 0, principal: KCMPrincipal("alice@CCACHED.TEST"), credentials: credentials)
            ).status == .success)
        var reader: RawKCMConnection? = try RawKCMConnection(path: bed.socketPath)
        let list = try #require(reader).call(.getCredList(name: name))
        #expect(list.status == .success)
        #expect(list.payload.count > 192 << 10, "the reply must be large enough to be gathered by a thread")
        #expect(try countInMemory(of: pid, marker).hits >= 64, "the scan must see the stored tickets")

        // Destroyed while the reader's connection, served by its thread, stays open.
        #expect(try writer.call(.destroy(name: name)).status == .success)
        let open = try countInMemory(of: pid, marker)
        print("after destroy, the reader still connected: \(open.hits) occurrence(s) in \(open.scanned / 1024) KiB")
        #expect(open.hits == 0, "the thread serving the reader keeps the destroyed credentials")
        #expect(try #require(reader).call(.noop).status == .success)
        // The reader leaves: its thread parks for a while (ConnectionThread.pool.parkSeconds) and keeps nothing.
        reader = nil
        // Left open: the writer's connection and the status request's own.
        #expect(eventually(5) { (try? bed.daemonStatus().connections) == 2 }, "the reader's connection ended")
        let parked = try countInMemory(of: pid, marker)
        #expect(parked.hits == 0, "a parked thread keeps the destroyed credentials")
    }

    @Test(
        "credential memory is locked in RAM and marked MADV_DONTDUMP in the running daemon",
        .requiresRoot("needs root to read the non-dumpable daemon's /proc/PID/smaps"))
    func credentialMappingsAreLockedAndUndumpable() throws {
        try bed.kinit("alice")
        let pid = try #require(bed.daemon?.processIdentifier)
        let smaps = try readProcFile("/proc/\(pid)/smaps")
        let flags = smaps.split(separator: "\n").filter { $0.hasPrefix("VmFlags:") }.map {
            Set($0.dropFirst("VmFlags:".count).split(separator: " "))
        }
        #expect(flags.contains { $0.contains("dd") && $0.contains("lo") }, "no locked, undumpable mapping: \(flags)")
    }

}

/// The memlock limit met by a daemon that is not root (so the limit applies): it needs no testbed.
@Suite("secrets in memory over the memlock limit")
struct MemlockFallbackTests {
    @Test(
        "over the memlock limit the daemon says so once and keeps storing, unlocked",
        .requiresRoot("needs root to run the daemon as nobody under a small memlock limit"))
    func memlockFallback() throws {
        // 128 KiB of lockable memory for a daemon that is not root (root ignores the limit).
        let nobody = try NobodyDaemon(prefix: ["prlimit", "--memlock=131072:131072"])
        let daemon = nobody.connection
        #expect(nobody.uid == 65534)

        // 300 tickets of ~2.3 KiB: 12 slabs of 64 KiB, far over 128 KiB.
        let count = 300
        #expect(
            try storeMarkedCredentials(into: daemon, count: count) == count,
            "every credential is kept when locking falls back")
        let text = nobody.logText
        let warnings = text.components(separatedBy: "cannot lock more credential memory in RAM").count - 1
        #expect(warnings == 1, "\(text)")
        #expect(text.contains("RLIMIT_MEMLOCK is 128 KiB"), "\(text)")
        // CCACHED_STATUS tells the same: locked memory within the limit, the rest counted as unlocked.
        let reply = try daemon.call(.daemonStatus)
        var reader = KCMReader(reply.payload)
        let limits = try #require(try KCMDaemonStatus.read(from: &reader).limits)
        #expect(limits.memlockLimit == 131072)
        #expect(limits.lockedMemoryBytes <= 131072)
        #expect(limits.unlockedMappings > 0)
        #expect(limits.credentialMemoryBytes >= UInt64(count) * 2048)
    }
}
