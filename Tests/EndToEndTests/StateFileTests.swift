import CSupport
import CStateFile
import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 22, item 1: the store survives its daemon in a memory file. A test holds the memfd, as
/// ccached-door will, and starts one daemon after another with it.
@Suite("state file")
struct StateFileTests {
    /// What a client sees of the whole collection: every cache, principal, credential (config
    /// entries included), the primary, and the UUIDs of caches and credentials.
    struct Collection: Equatable, CustomStringConvertible {
        var klist: String
        var listing: String
        var cacheUUIDs: [KCMUUID]
        var credentialUUIDs: [String: [KCMUUID]]

        var description: String {
            "\(listing)\n\(klist)\ncaches \(cacheUUIDs)\ncredentials \(credentialUUIDs)"
        }
    }

    func collection(_ bed: KerberosTestbed) throws -> Collection {
        let klist = try bed.run("klist", "-A", "-C")
        let listing = try bed.run("klist", "-l")
        let connection = try RawKCMConnection(path: bed.socketPath)
        let cacheReply = try connection.call(.getCacheUUIDList)
        guard case .uuids(let caches) = try KCMReply(payload: cacheReply.payload, for: .getCacheUUIDList) else {
            throw TestbedError.setup("GET_CACHE_UUID_LIST: \(cacheReply.status)")
        }
        var credentials: [String: [KCMUUID]] = [:]
        for uuid in caches {
            let nameReply = try connection.call(.getCacheByUUID(uuid: uuid))
            guard case .name(let name) = try KCMReply(payload: nameReply.payload, for: .getCacheByUUID) else {
                throw TestbedError.setup("GET_CACHE_BY_UUID: \(nameReply.status)")
            }
            let listReply = try connection.call(.getCredUUIDList(name: name))
            guard case .uuids(let list) = try KCMReply(payload: listReply.payload, for: .getCredUUIDList) else {
                throw TestbedError.setup("GET_CRED_UUID_LIST: \(listReply.status)")
            }
            credentials[name.description] = list
        }
        return Collection(
            klist: klist.stdout, listing: listing.stdout, cacheUUIDs: caches, credentialUUIDs: credentials)
    }

    @Test(
        "a daemon killed with SIGKILL is followed by one that restores its state file: the same caches, principals, credentials, config entries, UUIDs and primary; the tickets still work and renew"
    )
    func restoredAfterKill() throws {
        let bed = try KerberosTestbed()
        defer { bed.stop() }
        let state = try bed.restartWithStateFile()
        defer { close(state) }
        let uid = getuid()

        try bed.kinit("alice", "-r", "5m")
        try bed.expectSuccess("kvno", "host/localhost")
        #expect(try bed.run(["kinit", "bob"], input: "pw-bob\n", extra: ["KRB5CCNAME": "KCM:\(uid):bob"]).succeeded)
        #expect(
            try bed.run(["kinit", "-r", "5m", "alice"], input: "pw-alice\n", extra: ["KRB5CCNAME": "KCM:\(uid):third"])
                .succeeded)
        try bed.expectSuccess("kswitch", "-c", "KCM:\(uid):third")
        let before = try collection(bed)
        #expect(before.cacheUUIDs.count == 3, "\(before)")
        #expect(before.klist.contains("config: "), "config entries are listed: \(before)")
        #expect(before.listing.contains("KCM:\(uid):third"), "\(before)")

        bed.killDaemon()
        try bed.startDaemon(stateDescriptor: state)
        let after = try collection(bed)
        #expect(after == before, "before the kill:\n\(before)\nafter:\n\(after)\n--- log\n\(bed.daemonLogText)")
        #expect(bed.daemonLogText.contains("restored 3 cache(s)"), "\(bed.daemonLogText)")
        // The restored TGTs are usable and renewable against the KDC.
        try bed.expectSuccess("kvno", "host/localhost")
        try bed.expectSuccess("kinit", "-R")

        // A second crash after more changes, then a normal stop: the file is emptied, and the next
        // daemon starts with nothing.
        bed.killDaemon()
        try bed.startDaemon(stateDescriptor: state)
        let again = try bed.run("klist", "-l")
        #expect(again.stdout.contains("KCM:\(uid):bob"), "\(again)")
        #expect(bed.stopDaemon() == 0)
        var status = stat()
        #expect(fstat(state, &status) == 0 && status.st_size == 0, "a normal stop leaves an empty state file")
        try bed.startDaemon(stateDescriptor: state)
        #expect(try bed.daemonStatus().caches == 0)
    }

    /// A connection to the hand-off socket beside `socket`, as ccached-door makes it (root).
    func handoffConnection(besides socket: String) throws -> Int32 {
        let fd = ccached_unix_stream_socket()
        try #require(fd >= 0)
        _ = ccached_socket_timeouts(fd, 5000)
        try #require(ccached_connect_unix(fd, socket + ".handoff") == 0, "connect to the hand-off socket: \(errno)")
        return fd
    }

    @Test(
        "a daemon started with --state-from-door serves nothing, its own socket included, until the door's state file came over the hand-off socket; then it serves it restored and gives the door a descriptor of it",
        .requiresRoot("needs root: the hand-off socket answers only root"))
    func stateFromTheDoor() throws {
        let bed = try KerberosTestbed()
        defer { bed.stop() }
        let state = try bed.restartWithStateFile()
        defer { close(state) }
        try bed.kinit("alice")
        try bed.expectSuccess("kvno", "host/localhost")
        let before = try collection(bed)
        #expect(before.cacheUUIDs.count == 1, "\(before)")
        bed.killDaemon()

        try bed.startDaemon(extraArguments: ["--state-from-door"])
        // A client of the daemon's own socket: connected (the backlog), but not served yet.
        let early = try RawKCMConnection(path: bed.socketPath)
        let noop: [UInt8] = [0, 0, 0, 4, 2, 0, 0, 0]
        try early.send(noop)
        var waiting = pollfd(fd: early.fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&waiting, 1, 700) == 0, "the daemon answered before it had its state")

        // The door's first message: the state file ('S' with the memfd), answered 'A'.
        let handoff = try handoffConnection(besides: bed.socketPath)
        defer { close(handoff) }
        #expect(ccached_send_descriptor(handoff, 0x53, state) == 0)
        var answer: UInt8 = 0
        #expect(read(handoff, &answer, 1) == 1 && answer == 0x41, "answer \(answer)")
        // Now the early client is served, from the restored store.
        #expect(poll(&waiting, 1, 5000) == 1, "the waiting client was never served")
        let after = try collection(bed)
        #expect(after == before, "before the kill:\n\(before)\nafter:\n\(after)\n--- log\n\(bed.daemonLogText)")
        #expect(bed.daemonLogText.contains("restored 1 cache(s)"), "\(bed.daemonLogText)")

        // A second 'S' is refused; 'D' gets a descriptor of the very same file back ('F').
        #expect(ccached_send_descriptor(handoff, 0x53, state) == 0)
        #expect(read(handoff, &answer, 1) == 1 && answer == 0x52, "answer \(answer)")
        var request: UInt8 = 0x44
        #expect(send(handoff, &request, 1, Int32(MSG_NOSIGNAL)) == 1)
        var copy: Int32 = -1
        #expect(ccached_receive_descriptor(handoff, &answer, &copy) == 1 && answer == 0x46, "answer \(answer)")
        var mine = stat()
        var theirs = stat()
        #expect(copy >= 0 && fstat(copy, &theirs) == 0 && fstat(state, &mine) == 0 && mine.st_ino == theirs.st_ino)
        if copy >= 0 { close(copy) }
    }

    /// The servers of the credentials in `cache`, in storage order (nil: no such cache).
    func servers(in cache: KCMCacheName, over connection: RawKCMConnection) throws -> [String]? {
        let reply = try connection.call(.getCredList(name: cache))
        guard reply.status == .success else { return nil }
        guard case .credentialList(let credentials) = try KCMReply(payload: reply.payload, for: .getCredList) else {
            return nil
        }
        return try credentials.map { try $0.decodeFields().server.description }
    }

    @Test(
        "killed at random moments in a stream of STOREs into three caches, the daemon restores every acknowledged STORE in its own cache, at most one more, and never a state that does not load"
    )
    func killedDuringStores() throws {
        let bed = try KerberosTestbed(services: 1)
        defer { bed.stop() }
        let state = try bed.restartWithStateFile()
        defer { close(state) }
        let uid = getuid()
        let client = KCMPrincipal(nameType: 1, realm: Array("CCACHED.TEST".utf8), components: [Array("alice".utf8)])
        let caches = (0..<3).map { KCMCacheName("\(uid):stream\($0)") }
        let setup = try RawKCMConnection(path: bed.socketPath)
        for cache in caches { #expect(try setup.call(.initialize(name: cache, principal: client)).status == .success) }
        var acknowledged: [[String]] = [[], [], []]
        var generator = SplitMix64(seed: 0x5EED)
        var round = 0
        for kill in 0..<6 {
            // The killer waits a random 20–300 ms while this thread stores as fast as it can.
            let delay = useconds_t(20_000 + generator.next() % 280_000)
            let pid = try #require(bed.daemon?.processIdentifier)
            let killer = Thread {
                usleep(delay)
                Glibc.kill(pid, SIGKILL)
            }
            killer.start()
            let connection = try RawKCMConnection(path: bed.socketPath)
            var inFlight: (cache: Int, server: String)?
            while true {
                let index = round % 3
                let server = "svc/n\(round)@CCACHED.TEST"
                let credential = KCMCredentialFields(
                    client: client, server: KCMPrincipal(server), enctype: 18,
                    key: (0..<32).map { UInt8(truncatingIfNeeded: round &+ $0) },
                    times: KCMTicketTimes(authtime: 1, starttime: 1, endtime: 0x7000_0000),
                    ticket: [UInt8](repeating: UInt8(truncatingIfNeeded: round), count: 700)
                ).credential()
                inFlight = (index, server)
                guard let reply = try? connection.call(.store(name: caches[index], credential: credential)) else {
                    break
                }
                #expect(reply.status == .success)
                acknowledged[index].append(server)
                inFlight = nil
                round += 1
            }
            bed.killDaemon()
            try bed.startDaemon(stateDescriptor: state)
            let check = try RawKCMConnection(path: bed.socketPath)
            for (index, cache) in caches.enumerated() {
                let stored = try #require(try servers(in: cache, over: check), "kill \(kill): \(cache) is gone")
                var wanted = acknowledged[index]
                if stored.count == wanted.count + 1, let inFlight, inFlight.cache == index {
                    // The request in flight was applied and journaled before the kill: it counts.
                    wanted.append(inFlight.server)
                    acknowledged[index] = wanted
                    round += 1
                }
                #expect(stored == wanted, "kill \(kill), \(cache): \(stored.count) stored, \(wanted.count) wanted")
            }
            #expect(
                bed.daemonLogText.components(separatedBy: "restored 3 cache(s)").count == kill + 2,
                "\(bed.daemonLogText.suffix(2000))")
        }
        #expect(round > 100, "only \(round) STOREs before the kills")
    }
}
