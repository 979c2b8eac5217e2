import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Connections are bounded: in number, and in how long a request may take to arrive; a client
/// that is merely idle between requests is never cut off.
@Suite("connection limits")
final class ConnectionLimitsTests: TestbedSuite {
    /// Whether the daemon has closed this connection (reads EOF or a reset within `seconds`).
    func closedByDaemon(_ connection: RawKCMConnection, within seconds: Int32) -> Bool {
        var descriptor = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, seconds * 1000) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(connection.fd, &byte, 1, 0) <= 0
    }

    @Test("a request left half-sent is cut off after --request-timeout; an idle client is not")
    func slowRequest() throws {
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--request-timeout", "1"])
        let idle = try RawKCMConnection(path: bed.socketPath)
        let slow = try RawKCMConnection(path: bed.socketPath)
        try slow.send([0, 0, 0, 40, 2, 0, 0, 4])  // a 40-byte INITIALIZE, 36 bytes never sent
        #expect(closedByDaemon(slow, within: 5))
        #expect(try bed.daemonStatus().limits.stalledRequests == 1)
        // The idle connection, silent for as long, is still served, and so is a new one.
        #expect(try idle.call(.getDefaultCache).status == .success)
        #expect(try RawKCMConnection(path: bed.socketPath).call(.getDefaultCache).status == .success)
    }

    @Test("connections over --max-connections are closed and counted; a freed slot serves again")
    func connectionCap() throws {
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--max-connections", "4"])
        var held = try (0..<4).map { _ in try RawKCMConnection(path: bed.socketPath) }
        for connection in held { #expect(try connection.call(.getDefaultCache).status == .success) }
        let extra = try RawKCMConnection(path: bed.socketPath)
        #expect(closedByDaemon(extra, within: 5))
        // Counted before it was closed; asked over an admitted connection, since a new one is refused.
        #expect(try held[0].daemonStatus().limits.connectionRefusals == 1)
        held.removeLast()
        var served = false
        for _ in 0..<100 where !served {
            if let reply = try? RawKCMConnection(path: bed.socketPath).call(.getDefaultCache), reply.status == .success
            {
                served = true
            } else {
                usleep(20_000)
            }
        }
        #expect(served)
    }

    @Test("1,000 idle connections held open: a new client is still served; memory stays bounded")
    func thousandIdleConnections() throws {
        var limit = rlimit()
        getrlimit(rlimitNoFile, &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(rlimitNoFile, &limit)
        try #require(
            limit.rlim_cur >= 1100, "the test needs 1,100 descriptors (RLIMIT_NOFILE hard limit is \(limit.rlim_max))")
        // Started again so that the daemon inherits the raised limit.
        bed.stopDaemon()
        try bed.startDaemon()
        let pid = bed.daemon!.processIdentifier
        let before = residentKiB(pid)
        var idle: [RawKCMConnection] = []
        for _ in 0..<1000 { idle.append(try RawKCMConnection(path: bed.socketPath)) }
        // Every one of them is accepted and has its thread.
        #expect(try idle.last!.call(.getDefaultCache).status == .success)
        try bed.kinit("alice")
        #expect(try bed.run("klist", "-s").status == 0)
        let after = residentKiB(pid)
        print("ccached RSS: \(before) KiB idle, \(after) KiB with 1,000 idle connections")
        #expect(after - before < 64 * 1024, "1,000 idle connections cost \(after - before) KiB")
        idle.removeAll()
    }

    func residentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
    }
}

/// `RLIMIT_NOFILE` as the type `getrlimit` takes on this platform.
let rlimitNoFile = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

/// The store's limits, met by the real MIT tools: a clear error, a log line naming the limit, and
/// nothing already stored lost.
@Suite("store limits")
final class StoreLimitsTests: TestbedSuite {
    @Test("a ticket over --max-credentials-per-cache is refused (MIT's kvno still works, uncached); the TGT stays")
    func credentialLimitWithMITTools() throws {
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--max-credentials-per-cache", "2"])
        try bed.kinit("alice")  // REPLACE: the fast_avail config entry and the TGT
        // MIT's kvno treats a failure to cache the new ticket as non-fatal: it gets the ticket
        // from the KDC, the daemon refuses to store it with KRB5_CC_NOMEM and says why.
        try bed.expectSuccess("kvno", "host/localhost")
        #expect(try bed.daemonStatus().limits.credentialsPerCacheRefusals == 1, "\(bed.daemonLogText)")
        // kvno hides the refusal, so the daemon's log is where the user learns which option to raise:
        // that line is part of the behaviour under test.
        #expect(bed.daemonLogText.contains("limit of 2 credentials per cache is reached (--max-credentials-per-cache)"))
        let klist = try bed.expectSuccess("klist")
        #expect(klist.stdout.contains("krbtgt/CCACHED.TEST@CCACHED.TEST"), "\(klist)")
        #expect(!klist.stdout.contains("host/localhost"), "\(klist)")
    }
}

/// The daemon's purge timer, end to end over the socket.
@Suite("expiry purge")
final class ExpiryPurgeTests: TestbedSuite {
    @Test("the daemon purges a ticket expired past --purge-grace and keeps the valid one")
    func purgeTimer() throws {
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--purge-grace", "1", "--purge-interval", "1"])
        let connection = try RawKCMConnection(path: bed.socketPath)
        let client = KCMPrincipal("alice@CCACHED.TEST")
        let now = UInt32(time(nil))
        let expired = KCMCredentialFields(
            client: client, server: KCMPrincipal("old/localhost@CCACHED.TEST"), key: [1],
            times: KCMTicketTimes(endtime: now - 100),
            ticket: [1]
        ).credential()
        let valid = KCMCredentialFields(
            client: client, server: KCMPrincipal("krbtgt/CCACHED.TEST@CCACHED.TEST"), key: [1],
            times: KCMTicketTimes(endtime: now + 3600),
            ticket: [2]
        ).credential()
        let name = KCMCacheName("\(getuid())")
        #expect(
            try connection.call(.replace(name: name, kdcOffset: 0, principal: client, credentials: [expired, valid]))
                .status == .success)
        var remaining = 2
        let deadline = Date().addingTimeInterval(10)
        while remaining != 1 && Date() < deadline {
            usleep(200_000)
            remaining = try connection.call(.getCredUUIDList(name: name)).payload.count / 16
        }
        #expect(remaining == 1)
        #expect(try connection.call(.getCredList(name: name)).payload.count > 4)
        #expect(bed.daemonLogText.contains("purged 1 ticket(s) expired over 1 s ago"), "\(bed.daemonLogText)")
    }
}
