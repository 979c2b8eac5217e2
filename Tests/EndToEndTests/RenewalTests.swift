import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Background renewal and change notification (issue 13) against a real KDC, the real MIT tools and
/// a real ccached. Short ticket lifetimes (20–40 s) keep the waits small; the tests run in parallel.
@Suite("renewal and watch")
final class RenewalTests: TestbedSuite {
    /// ccachectl pointed at the testbed's daemon.
    func ctl(_ bed: KerberosTestbed) -> [String: String] {
        ["CCACHED_SOCKET": bed.socketPath, "CCACHED_DAEMON": ccachedBinary]
    }

    /// The first ticket line of `klist` output: (start, end) as MIT prints them.
    func times(_ klist: String, server: String = "krbtgt/") -> (start: String, end: String)? {
        for line in klist.split(separator: "\n") where line.contains(server) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5 else { continue }
            return ("\(fields[0]) \(fields[1])", "\(fields[2]) \(fields[3])")
        }
        return nil
    }

    /// Waits up to `seconds` for `condition`, checking every 50 ms. Not a timing assertion: the bound
    /// only keeps a broken build from hanging the run.
    func eventually(within seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    var kdcLogPath: (KerberosTestbed) -> String { { $0.directory.appendingPathComponent("kdc/kdc.log").path } }

    @Test(
        "kinit -l 20s -r 5m is renewed in the background: new times in klist, kvno past the original expiry, the primary stays primary; watch --json names every change"
    )
    func renewedInBackground() throws {
        let watchOutput = bed.directory.appendingPathComponent("watch.json").path
        let watcher = try SpawnedProcess(
            path: ccachectlBinary, arguments: [ccachectlBinary, "watch", "--json"],
            environment: bed.environment.merging(ctl(bed)) { $1 }, stdout: watchOutput)
        defer {
            kill(watcher.processIdentifier, SIGTERM)
            watcher.waitUntilExit()
        }
        func watched() -> [String] {
            ((try? String(contentsOfFile: watchOutput, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        func sawEvent(_ kind: String, _ cache: String) -> Bool {
            watched().contains { $0.contains("\"kind\":\"\(kind)\"") && $0.contains("\"cache\":\"\(cache)\"") }
        }
        // The watcher is connected once its first (resync) round trip is done: give it a moment.
        #expect(
            eventually(within: 5) {
                (try? bed.run([ccachectlBinary, "status"], extra: ctl(bed)).stdout)?.contains("connections") ?? false
            })
        usleep(300_000)
        let uid = getuid()

        try bed.kinit("alice", "-l", "20s", "-r", "5m")
        #expect(eventually(within: 5) { sawEvent("stored", "\(uid)") }, "kinit: \(watched())")
        let before = try bed.expectSuccess("klist")
        let original = try #require(times(before.stdout), "\(before)")
        // A second renewable cache that is not the primary.
        let bob = try bed.run(
            ["kinit", "-l", "20s", "-r", "5m", "bob"], input: "pw-bob\n", extra: ["KRB5CCNAME": "KCM:\(uid):bob"])
        #expect(bob.succeeded, "\(bob)")
        #expect(try bed.run("kvno", "host/localhost").succeeded)
        #expect(
            eventually(within: 5) {
                watched().filter { $0.contains("\"kind\":\"stored\"") && $0.contains("\"cache\":\"\(uid)\"") }.count
                    >= 2
            }, "kvno: \(watched())")

        // Past the original expiry (20 s): the daemon renewed meanwhile, with no kinit.
        sleep(23)
        let after = try bed.expectSuccess("klist")
        let renewed = try #require(times(after.stdout), "\(after)")
        #expect(renewed.start > original.start, "start time moved: \(before.stdout) -> \(after.stdout)")
        #expect(renewed.end > original.end, "expiry moved: \(before.stdout) -> \(after.stdout)")
        #expect(after.stdout.contains("Ticket cache: KCM:\(uid)\n"), "the primary stayed the primary: \(after)")
        #expect(after.stdout.contains("Default principal: alice@CCACHED.TEST"), "\(after)")
        let kvno = try bed.run("kvno", "HTTP/localhost")
        #expect(kvno.succeeded, "kvno past the original expiry: \(kvno)\n\(bed.daemonLogText)")
        let listing = try bed.run("klist", "-l")
        #expect(listing.stdout.contains("alice@CCACHED.TEST"), "\(listing)")
        let log = bed.daemonLogText
        #expect(log.contains("renewed krbtgt/CCACHED.TEST@CCACHED.TEST in \(uid):"), "\(log)")
        #expect(log.contains("renewed krbtgt/CCACHED.TEST@CCACHED.TEST in \(uid):bob:"), "\(log)")
        // The KDC saw a TGS request for the TGT itself: the renewal.
        let kdcLog = (try? String(contentsOfFile: kdcLogPath(bed), encoding: .utf8)) ?? ""
        #expect(
            kdcLog.split(separator: "\n").contains {
                $0.contains("TGS_REQ") && $0.contains("alice@CCACHED.TEST for krbtgt/CCACHED.TEST@CCACHED.TEST")
            }, "\(kdcLog)")
        #expect(sawEvent("renewed", "\(uid)"), "\(watched())")
        #expect(sawEvent("renewed", "\(uid):bob"), "\(watched())")
        #expect(
            !watched().contains { $0.contains("\"kind\":\"default\"") },
            "renewal never switches the default: \(watched())")

        // list -v and --json show the renewal.
        let verbose = try bed.run([ccachectlBinary, "list", "-v"], extra: ctl(bed))
        #expect(verbose.stdout.contains("renewal: next "), "\(verbose)")
        #expect(verbose.stdout.contains(", last "), "\(verbose)")
        let json = try bed.run([ccachectlBinary, "list", "--json"], extra: ctl(bed))
        let listed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let renewal = (listed?["caches"] as? [[String: Any]])?.first?["renewal"] as? [String: Any]
        #expect(renewal?["next"] is Int, "\(json)")
        let status = try bed.run([ccachectlBinary, "status"], extra: ctl(bed))
        #expect(status.stdout.contains("renewal:      on, "), "\(status)")

        // kswitch and kdestroy: one event each, naming the cache.
        #expect(try bed.run("kswitch", "-c", "KCM:\(uid):bob").succeeded)
        #expect(eventually(within: 5) { sawEvent("default", "\(uid):bob") }, "kswitch: \(watched())")
        #expect(try bed.run("kdestroy", "-c", "KCM:\(uid):bob").succeeded)
        #expect(eventually(within: 5) { sawEvent("destroyed", "\(uid):bob") }, "kdestroy: \(watched())")
    }

    @Test("renewal stops at renew_till with one log line, and the ticket expires normally")
    func stopsAtRenewTill() throws {
        try bed.kinit("alice", "-l", "20s", "-r", "30s")
        let line = "renewal of krbtgt/CCACHED.TEST@CCACHED.TEST in \(getuid()) stops: renewable lifetime reached"
        #expect(eventually(within: 40) { bed.daemonLogText.contains(line) }, "\(bed.daemonLogText)")
        sleep(3)
        let count = bed.daemonLogText.components(separatedBy: line).count - 1
        #expect(count == 1, "said once: \(bed.daemonLogText)")
        let verbose = try bed.run([ccachectlBinary, "list", "-v"], extra: ctl(bed))
        #expect(verbose.stdout.contains("renewable lifetime reached"), "\(verbose)")
    }

    @Test("with the KDC stopped renewal fails, backs off, logs once and costs no CPU; with the KDC back it succeeds")
    func kdcDown() throws {
        try bed.kinit("alice", "-l", "40s", "-r", "5m")
        let kdcDirectory = bed.directory.appendingPathComponent("kdc")
        let kdcPID = try #require(
            pid_t(
                (try String(contentsOf: kdcDirectory.appendingPathComponent("kdc.pid"), encoding: .utf8))
                    .trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(kdcPID, SIGTERM)
        #expect(eventually(within: 10) { kill(kdcPID, 0) != 0 })
        let daemonPID = try #require(bed.daemon?.processIdentifier)
        let cpuBefore = try cpuTicks(daemonPID)
        // The first renewal is due at 20 s (a third of 40 s left, never sooner than half the life).
        let failure = "renewal of krbtgt/CCACHED.TEST@CCACHED.TEST in \(getuid()) failed, next attempt at"
        #expect(eventually(within: 30) { bed.daemonLogText.contains(failure) }, "\(bed.daemonLogText)")
        // Requests are answered throughout.
        #expect(try bed.run("klist").succeeded)
        sleep(8)
        let cpu = try cpuTicks(daemonPID) - cpuBefore
        let hertz = sysconf(Int32(_SC_CLK_TCK))
        #expect(cpu < hertz, "daemon used \(cpu) ticks of \(hertz)/s with the KDC down")
        #expect(bed.daemonLogText.components(separatedBy: failure).count - 1 == 1, "logged once: \(bed.daemonLogText)")
        let state = try bed.run([ccachectlBinary, "list", "-v"], extra: ctl(bed))
        #expect(
            state.stdout.contains(
                "last error: renewing krbtgt/CCACHED.TEST@CCACHED.TEST for alice@CCACHED.TEST failed: Cannot contact any KDC"
            ), "\(state)")

        // The KDC comes back on the same port: the next attempt (asked for now) succeeds.
        var environment = bed.environment
        environment["KRB5_KDC_PROFILE"] = kdcDirectory.appendingPathComponent("kdc.conf").path
        environment["KRB5_CONFIG"] = kdcDirectory.appendingPathComponent("krb5.conf").path
        let kdc = try SpawnedProcess(
            path: "/usr/sbin/krb5kdc", arguments: ["krb5kdc", "-n", "-r", "CCACHED.TEST"], environment: environment,
            stderr: kdcDirectory.appendingPathComponent("kdc.stdout").path)
        defer {
            kill(kdc.processIdentifier, SIGTERM)
            kdc.waitUntilExit()
        }
        var renew = CommandResult(arguments: [], status: 1, stdout: "", stderr: "")
        #expect(
            try eventually(within: 10) {
                renew = try bed.run([ccachectlBinary, "renew"], extra: ctl(bed))
                return renew.succeeded && renew.stdout.contains("renewed 1 ticket")
            }, "\(renew)\n\(bed.daemonLogText)")
        #expect(renew.stdout.contains("\(getuid()): renewed 1 ticket, valid until"), "\(renew)")
    }

    @Test("a non-renewable ticket is left alone; --no-renew renews nothing by itself, ccachectl renew still does")
    func leftAlone() throws {
        let plain = bed
        let noRenew = try KerberosTestbed()
        defer { noRenew.stop() }
        noRenew.stopDaemon()
        try noRenew.startDaemon(extraArguments: ["--no-renew"])

        let fragment = plain.directory.appendingPathComponent("norenew.conf")
        try "[libdefaults]\n    renew_lifetime = 0\n".write(to: fragment, atomically: true, encoding: .utf8)
        let unrenewable = try plain.run(
            ["kinit", "-l", "20s", "alice"], input: "pw-alice\n",
            extra: ["KRB5_CONFIG": fragment.path + ":" + (plain.environment["KRB5_CONFIG"] ?? "")])
        #expect(unrenewable.succeeded, "\(unrenewable)")
        try noRenew.kinit("alice", "-l", "20s", "-r", "5m")
        let plainBefore = try #require(times(try plain.expectSuccess("klist").stdout))
        let noRenewBefore = try #require(times(try noRenew.expectSuccess("klist").stdout))
        // Both would have been renewed at 10 s.
        sleep(13)
        #expect(times(try plain.expectSuccess("klist").stdout)?.start == plainBefore.start)
        #expect(times(try noRenew.expectSuccess("klist").stdout)?.start == noRenewBefore.start)
        #expect(!plain.daemonLogText.contains("renewed krbtgt"), "\(plain.daemonLogText)")
        #expect(!noRenew.daemonLogText.contains("renewed krbtgt"), "\(noRenew.daemonLogText)")
        let plainList = try plain.run([ccachectlBinary, "list", "-v"], extra: ctl(plain))
        #expect(plainList.stdout.contains("renewal: not renewable"), "\(plainList)")
        let status = try noRenew.run([ccachectlBinary, "status"], extra: ctl(noRenew))
        #expect(status.stdout.contains("renewal:      off (--no-renew)"), "\(status)")

        let renew = try noRenew.run([ccachectlBinary, "renew"], extra: ctl(noRenew))
        #expect(renew.succeeded, "\(renew)")
        #expect(times(try noRenew.expectSuccess("klist").stdout)?.start != noRenewBefore.start)
        let nothing = try plain.run([ccachectlBinary, "renew"], extra: ctl(plain))
        #expect(nothing.stdout.contains("nothing to renew"), "\(nothing)")
    }

    @Test("100 watchers all get the event; a watcher that disconnects costs nothing afterwards")
    func manyWatchers() throws {
        // Each learns the epoch and counter (resync), then waits.
        var watchers: [(RawKCMConnection, KCMWatch.Reply)] = []
        for _ in 0..<100 {
            let connection = try RawKCMConnection(path: bed.socketPath)
            let (status, payload) = try connection.call(.watch(KCMWatch.Request()))
            #expect(status == .success)
            let start = try KCMReply(payload: payload, for: .watch).asWatchReply()
            #expect(start.resync)
            watchers.append((connection, start))
        }
        for (connection, start) in watchers {
            try connection.send(
                KCMRequest.watch(KCMWatch.Request(epoch: start.epoch, after: start.next, timeoutMilliseconds: 60_000))
                    .encodedFrame())
        }
        // One more that leaves while it waits.
        do {
            let leaving = try RawKCMConnection(path: bed.socketPath)
            let (_, payload) = try leaving.call(.watch(KCMWatch.Request()))
            let start = try KCMReply(payload: payload, for: .watch).asWatchReply()
            try leaving.send(
                KCMRequest.watch(KCMWatch.Request(epoch: start.epoch, after: start.next, timeoutMilliseconds: 60_000))
                    .encodedFrame())
        }
        // 100 waiting, the leaver gone, plus ccachectl's own.
        func connections() -> Int? {
            let status = try? bed.run([ccachectlBinary, "status", "--json"], extra: ctl(bed)).stdout
            guard let status, let range = status.range(of: "\"connections\":") else { return nil }
            return Int(status[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(eventually(within: 5) { connections() == 101 }, "open connections: \(connections() ?? -1)")

        try bed.kinit("alice")
        for (connection, _) in watchers {
            let reply = try connection.receiveReply()
            #expect(reply.status == .success)
            let changes = try KCMReply(payload: reply.payload, for: .watch).asWatchReply()
            #expect(changes.events.contains { $0.cacheName.description == "\(getuid())" }, "\(changes)")
        }
        watchers.removeAll()
        #expect(eventually(within: 5) { connections() == 1 }, "open connections: \(connections() ?? -1)")
    }

    /// utime + stime of `pid`, in clock ticks.
    func cpuTicks(_ pid: pid_t) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        return Int(fields[11])! + Int(fields[12])!
    }
}
