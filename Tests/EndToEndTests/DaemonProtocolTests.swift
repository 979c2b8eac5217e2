import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The real ccached binary spoken to byte by byte: framing, error codes, limits and lifecycle.
@Suite("ccached over its socket")
final class DaemonProtocolTests: TestbedSuite {
    @Test("unknown opcodes, bad versions and truncated arguments get their codes and the connection lives on")
    func badRequestsKeepConnection() throws {
        let connection = try RawKCMConnection(path: bed.socketPath)
        for opcode: UInt16 in [13, 14, 15, 16, 24, 28, 1000, 13000, 13003, 0xFFFF] {
            let reply = try connection.call(.unsupported(opcode: opcode))
            #expect(reply.status == .fccInternal, "opcode \(opcode)")
            #expect(reply.payload.isEmpty)
        }
        try connection.send([0, 0, 0, 4, 1, 0, 0, 20])  // version 1.0
        var reply = try connection.receiveReply()
        #expect(reply.transport == 0)
        #expect(reply.status == .ccIO)
        try connection.send([0, 0, 0, 6, 2, 0, 0, 4, 0x61, 0x62])  // INITIALIZE "ab" without NUL
        reply = try connection.receiveReply()
        #expect(reply.status == .ccIO)
        try connection.send([0, 0, 0, 2, 2, 0])  // shorter than a header
        reply = try connection.receiveReply()
        #expect(reply.status == .ccIO)
        let fine = try connection.call(.getDefaultCache)
        #expect(fine.status == .success)
        #expect(fine.payload == Array("\(getuid())".utf8) + [0])
    }

    @Test("a cache name with a newline and an escape sequence cannot forge or colour a daemon log line")
    func cacheNamesEscapedInLogs() throws {
        let connection = try RawKCMConnection(path: bed.socketPath)
        let hostile = KCMCacheName("\(getuid()):x\nFORGED ccached: notice all tickets stolen\u{1B}[31m")
        #expect(try connection.call(.setDefaultCache(name: hostile)).status == .success)
        // A refusal that is logged at notice with the name in it: an invalid (over-long) move target.
        let long = KCMCacheName(bytes: Array(repeating: 0x0A, count: 5000))
        #expect(try connection.call(.moveCache(from: hostile, to: long)).status != .success)
        #expect(try connection.call(.destroy(name: hostile)).status == .fccNoFile)
        let log = bed.daemonLogText
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix("FORGED") }, "\(log)")
        #expect(!log.contains("\u{1B}["), "an escape byte reached the log")
        #expect(log.contains("x\\nFORGED"), "the escaped name is in the log: \(log)")
    }

    @Test("a request over the size limit is drained, refused with KRB5_CC_NOMEM, and the stream stays in step")
    func oversizedRequest() throws {
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--max-request-bytes", "4096"])
        let connection = try RawKCMConnection(path: bed.socketPath)
        var frame: [UInt8] = [0x00, 0x01, 0x86, 0xA0]  // 100,000 bytes follow
        frame += [2, 0, 0x32, 0xCA] + [UInt8](repeating: 0x41, count: 100_000 - 4)
        try connection.send(frame)
        let reply = try connection.receiveReply()
        #expect(reply.transport == 0)
        #expect(reply.status == .ccNoMem)
        #expect(try connection.call(.getDefaultCache).status == .success)
        #expect(try connection.daemonStatus().limits.oversizedRequests == 1)
    }

    @Test("GEN_NEW names are <uid>:<n>, unique, and create nothing")
    func genNew() throws {
        let connection = try RawKCMConnection(path: bed.socketPath)
        let first = try connection.call(.genNew)
        let second = try connection.call(.genNew)
        #expect(first.payload == Array("\(getuid()):1".utf8) + [0])
        #expect(second.payload == Array("\(getuid()):2".utf8) + [0])
        let list = try connection.call(.getCacheUUIDList)
        #expect(list.status == .success)
        #expect(list.payload.isEmpty)
        #expect(try connection.call(.getPrincipal(name: KCMCacheName("\(getuid()):1"))).status == .fccNoFile)
    }

    @Test("many connections open at once are served interleaved")
    func interleavedConnections() throws {
        let connections = try (0..<64).map { _ in try RawKCMConnection(path: bed.socketPath) }
        // Every connection sends before any reads: a server serving one connection to EOF would hang here.
        for connection in connections { try connection.send(KCMRequest.getDefaultCache.encodedFrame()) }
        for connection in connections.reversed() { #expect(try connection.receiveReply().status == .success) }
        let principal = KCMPrincipal("alice@CCACHED.TEST")
        for (index, connection) in connections.enumerated() {
            let reply = try connection.call(
                .initialize(name: KCMCacheName("\(getuid()):c\(index)"), principal: principal))
            #expect(reply.status == .success)
        }
        let list = try connections[0].call(.getCacheUUIDList)
        #expect(list.payload.count == 64 * 16)
    }

    @Test("a cache too large for one GET_CRED_LIST reply is still listed by MIT's klist (UUID fallback)")
    func credentialListOverMITLimit() throws {
        let connection = try RawKCMConnection(path: bed.socketPath)
        let client = KCMPrincipal("alice@CCACHED.TEST")
        let now = UInt32(time(nil))
        let credentials = (0..<9).map { index in
            KCMCredentialFields(
                client: client, server: KCMPrincipal("big\(index)/localhost@CCACHED.TEST"), enctype: 18,
                key: [UInt8](repeating: 7, count: 32),
                times: KCMTicketTimes(authtime: now, starttime: now, endtime: now + 3600),
                ticket: [UInt8](repeating: 0x61, count: 1_200_000)
            ).credential()
        }
        let name = KCMCacheName("\(getuid())")
        let replace = try connection.call(
            .replace(name: name, kdcOffset: 0, principal: client, credentials: credentials))
        #expect(replace.status == .success)
        #expect(try connection.call(.getCredList(name: name)).status == .ccNoSupp)
        let klist = try bed.expectSuccess("klist")
        #expect(klist.stdout.components(separatedBy: "/localhost@CCACHED.TEST").count - 1 == 9, "\(klist)")
    }

    @Test("SIGTERM stops the daemon cleanly and removes its socket")
    func sigtermRemovesSocket() throws {
        #expect(FileManager.default.fileExists(atPath: bed.socketPath))
        let status = bed.stopDaemon()
        #expect(status == 0)
        #expect(!FileManager.default.fileExists(atPath: bed.socketPath))
        #expect(bed.daemonLogText.contains("stopping"))
    }

    @Test("a second daemon on a live socket exits quietly without touching it; the first keeps serving")
    func secondDaemonRefuses() throws {
        try bed.kinit("alice")
        let second = try runCommand(
            [ccachedBinary, "--socket", bed.socketPath], environment: bed.environment, scratch: bed.directory)
        #expect(second.status == 0, "\(second)")
        #expect(second.stderr.contains("already answers at \(bed.socketPath); leaving it be"), "\(second)")
        #expect(FileManager.default.fileExists(atPath: bed.socketPath))
        #expect(try bed.run("klist", "-s").status == 0)
    }

    @Test("a stale socket file is replaced; a non-socket file at the path is refused")
    func staleSocketAndOccupiedPath() throws {
        bed.stopDaemon()
        // Leave a socket file nobody listens on, as a crashed daemon would.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bed.socketPath.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        close(stale)
        try bed.startDaemon()
        try bed.kinit("alice")
        bed.stopDaemon()

        _ = FileManager.default.createFile(atPath: bed.socketPath, contents: Data("not a socket".utf8))
        let refused = try runCommand(
            [ccachedBinary, "--socket", bed.socketPath], environment: bed.environment, scratch: bed.directory)
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("is not a socket"), "\(refused)")
        #expect(FileManager.default.fileExists(atPath: bed.socketPath))
    }

    @Test("an unsafe socket directory is refused with a message naming it")
    func unsafeDirectory() throws {
        let open = bed.directory.appendingPathComponent("open")
        try FileManager.default.createDirectory(at: open, withIntermediateDirectories: false)
        chmod(open.path, 0o777)
        let refused = try runCommand(
            [ccachedBinary, "--socket", open.appendingPathComponent("kcm.sock").path],
            environment: bed.environment, scratch: bed.directory)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("writable by group or others (mode 777)"), "\(refused)")
        let fresh = bed.directory.appendingPathComponent("fresh")
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: ccachedBinary)
        daemon.arguments = ["--socket", fresh.appendingPathComponent("kcm.sock").path]
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer {
            daemon.terminate()
            daemon.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: fresh.appendingPathComponent("kcm.sock").path), Date() < deadline
        {
            usleep(5_000)
        }
        let directoryMode = try FileManager.default.attributesOfItem(atPath: fresh.path)[.posixPermissions] as? Int
        let socketMode =
            try FileManager.default.attributesOfItem(
                atPath: fresh.appendingPathComponent("kcm.sock").path)[.posixPermissions] as? Int
        #expect(directoryMode == 0o700)
        #expect(socketMode == 0o600)
    }
}
