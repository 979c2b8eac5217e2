import CSupport
import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `ccachectl` against the testbed's daemon and KDC, with the real MIT tools on the other side.
@Suite("ccachectl")
final class CCacheCtlTests: TestbedSuite {
    let ccachectl = ccachectlBinary

    /// The testbed's environment with ccachectl pointed at the testbed's daemon.
    func environment(_ bed: KerberosTestbed) -> [String: String] {
        ["CCACHED_SOCKET": bed.socketPath, "CCACHED_DAEMON": ccachedBinary]
    }

    @Test("import of a FILE cache from a real kinit, then klist through KCM; export back to FILE")
    func importAndExport() throws {
        let file = "FILE:" + bed.directory.appendingPathComponent("krb5cc_import").path
        let kinit = try bed.run(["kinit", "-c", file, "alice"], input: "pw-alice\n")
        #expect(kinit.succeeded, "\(kinit)")
        #expect(try bed.run(["kvno", "-c", file, "host/localhost"]).succeeded)
        let fileListing = try bed.run(["klist", "-c", file])

        let imported = try bed.run([ccachectl, "import", file, "--remove-source"], extra: environment(bed))
        #expect(imported.succeeded, "\(imported)")
        #expect(imported.stdout.contains("for alice@CCACHED.TEST into KCM:\(getuid())"), "\(imported)")
        #expect(!FileManager.default.fileExists(atPath: String(file.dropFirst(5))))
        let kcmListing = try bed.expectSuccess("klist")
        // Same tickets, same times: only the cache name line differs.
        #expect(
            kcmListing.stdout.split(separator: "\n").dropFirst()
                == fileListing.stdout.split(separator: "\n").dropFirst(),
            "\(fileListing)\n\(kcmListing)")
        #expect(try bed.run("kvno", "host/localhost").succeeded)
        #expect(!bed.daemonLogText.contains("STORE -> OK"), "kvno should have found the imported ticket")

        let exported = bed.directory.appendingPathComponent("krb5cc_export").path
        let export = try bed.run([ccachectl, "export", "alice", "FILE:" + exported], extra: environment(bed))
        #expect(export.succeeded, "\(export)")
        let back = try bed.run(["klist", "-c", "FILE:" + exported])
        #expect(back.succeeded, "\(back)")
        #expect(back.stdout.split(separator: "\n").dropFirst() == kcmListing.stdout.split(separator: "\n").dropFirst())
    }

    @Test("eval of 'ccachectl env' in sh points kinit and klist at the session's daemon")
    func envForShell() throws {
        let runtime = bed.directory.appendingPathComponent("xdg")
        try FileManager.default.createDirectory(
            atPath: runtime.path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        let script = """
            set -e
            eval "$("\(ccachectl)" env)"
            printf 'pw-carol\\n' | kinit carol >/dev/null
            klist
            echo "KRB5CCNAME=$KRB5CCNAME"
            echo "HEIM_IPC_DIR=$HEIM_IPC_DIR"
            echo "CCACHED_SOCKET=$CCACHED_SOCKET"
            "\(ccachectl)" list
            "\(ccachectl)" stop
            """
        let realmConf = bed.directory.appendingPathComponent("kdc/krb5.conf").path
        let result = try bed.run(
            ["sh", "-c", script],
            extra: [
                "XDG_RUNTIME_DIR": runtime.path, "CCACHED_SESSION": "envtest", "CCACHED_DAEMON": ccachedBinary,
                "KRB5_CONFIG": realmConf,
            ])
        #expect(result.succeeded, "\(result)")
        let sessionDirectory = runtime.path + "/ccached/envtest"
        #expect(result.stdout.contains("Default principal: carol@CCACHED.TEST"), "\(result)")
        #expect(result.stdout.contains("Ticket cache: KCM:\(getuid())"), "\(result)")
        #expect(result.stdout.contains("KRB5CCNAME=KCM:"))
        #expect(result.stdout.contains("HEIM_IPC_DIR=\(sessionDirectory)"))
        #expect(result.stdout.contains("CCACHED_SOCKET=\(sessionDirectory)/.heim_org.h5l.kcm-socket"))
        #expect(result.stdout.contains("carol@CCACHED.TEST"))
        // The testbed's own daemon saw none of it.
        #expect(!bed.daemonLogText.contains("REPLACE"))

        for shell in ["csh", "fish"] {
            let lines = try bed.run(
                [ccachectl, "env", "--shell", shell, "--no-start"],
                extra: ["XDG_RUNTIME_DIR": runtime.path, "CCACHED_SESSION": "envtest"])
            #expect(lines.succeeded, "\(lines)")
            #expect(lines.stdout.contains(shell == "csh" ? "setenv KRB5CCNAME 'KCM:';" : "set -gx KRB5CCNAME 'KCM:';"))
        }
    }

    @Test(
        "env output for sh, csh and fish keeps a value with ' and \\ intact: real fish sources it",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/fish"), "needs fish (scripts/install-deps.sh)"))
    func envQuoting() throws {
        let runtime = bed.directory.appendingPathComponent("xdg-quote")
        try FileManager.default.createDirectory(
            atPath: runtime.path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        // KRB5_CONFIG is carried into the output as it is: the value with quotes and backslashes.
        let awkward = "/etc/it's a \\ 'test'/krb5.conf"
        let extra = ["XDG_RUNTIME_DIR": runtime.path, "CCACHED_SESSION": "quote", "KRB5_CONFIG": awkward]
        let fragment = runtime.path + "/ccached/quote/krb5.conf"
        let expected = fragment + ":" + awkward

        let fish = try bed.run(
            [
                "fish", "--no-config", "-c",
                "\(ccachectl) env --shell fish --no-start | source; and printf '%s' $KRB5_CONFIG",
            ],
            extra: extra)
        #expect(fish.succeeded, "fish could not source the output:\n\(fish)")
        #expect(fish.stdout == expected, "\(fish)")
        let sh = try bed.run(
            ["sh", "-c", "eval \"$(\(ccachectl) env --shell sh --no-start)\" && printf '%s' \"$KRB5_CONFIG\""],
            extra: extra)
        #expect(sh.succeeded, "\(sh)")
        #expect(sh.stdout == expected, "\(sh)")
        let lines = try bed.run([ccachectl, "env", "--shell", "fish", "--no-start"], extra: extra)
        #expect(
            lines.stdout.contains("set -gx KRB5_CONFIG '\(fragment):/etc/it\\'s a \\\\ \\'test\\'/krb5.conf';"),
            "\(lines)")
    }

    @Test("list -v shows each ticket's flags exactly as klist -f does, and a referral entry's real ticket server")
    func flagsMatchKlist() throws {
        let kinit = try bed.run(["kinit", "-f", "-r", "2d", "alice"], input: "pw-alice\n")
        #expect(kinit.succeeded, "\(kinit)")
        // -S host localhost: a host-based name, whose realm the client leaves empty (the referral
        // realm) and learns from the KDC: MIT caches it as host/localhost@ and klist prints the
        // ticket's own server after "Ticket server:".
        try bed.expectSuccess("kvno", "HTTP/localhost")
        // Without the testbed's [domain_realm] mapping, so the realm is left to the KDC.
        let realmConf = bed.directory.appendingPathComponent("kdc/krb5.conf").path
        let unmapped = bed.directory.appendingPathComponent("krb5-no-domain-realm.conf").path
        let text = try String(contentsOfFile: realmConf, encoding: .utf8)
        try String(text[..<(text.range(of: "[domain_realm]")?.lowerBound ?? text.endIndex)])
            .write(toFile: unmapped, atomically: true, encoding: .utf8)
        let fragment = (bed.environment["KRB5_CONFIG"] ?? "").split(separator: ":").first.map(String.init) ?? ""
        let referral = try bed.run(
            ["kvno", "-S", "host", "localhost"], extra: ["KRB5_CONFIG": fragment + ":" + unmapped])
        #expect(referral.succeeded, "\(referral)")
        let klist = try bed.expectSuccess("klist", "-f")
        let verbose = try bed.run([ccachectl, "list", "-v"], extra: environment(bed))
        #expect(verbose.succeeded, "\(verbose)")

        // klist -f: "<start>  <end>  <server>", then "\tFlags: X" and, for a referral entry,
        // "\tTicket server: Y".
        var fromKlist: [(server: String, flags: String, ticketServer: String?)] = []
        for line in klist.stdout.split(separator: "\n") {
            if line.hasPrefix("\t"), let flags = line.range(of: "Flags: ") {
                fromKlist[fromKlist.count - 1].flags = String(line[flags.upperBound...])
            } else if line.hasPrefix("\tTicket server: ") {
                fromKlist[fromKlist.count - 1].ticketServer = String(line.dropFirst("\tTicket server: ".count))
            } else if line.first?.isNumber == true, let server = line.split(separator: " ").last {
                fromKlist.append((String(server), "", nil))
            }
        }
        var fromList: [(server: String, flags: String, ticketServer: String?)] = []
        for line in verbose.stdout.split(separator: "\n") {
            if line.hasPrefix("        flags ") {
                let flags = line.dropFirst("        flags ".count).split(separator: ",").first.map(String.init) ?? ""
                fromList[fromList.count - 1].flags = flags == "-" ? "" : flags
            } else if line.hasPrefix("        ticket server ") {
                fromList[fromList.count - 1].ticketServer = String(line.dropFirst("        ticket server ".count))
            } else if line.hasPrefix("      "), !line.hasPrefix("       "), !line.hasPrefix("      renewal:") {
                // (The cache's renewal line sits at a ticket's indentation; it is not a ticket.)
                fromList.append((String(line.dropFirst(6).split(separator: " ").first ?? ""), "", nil))
            }
        }
        let transcript = "\(klist.stdout)\n\(verbose.stdout)"
        #expect(fromKlist.count == 3, "\(transcript)")
        #expect(fromList.map(\.server) == fromKlist.map(\.server), "\(transcript)")
        #expect(fromList.map(\.flags) == fromKlist.map(\.flags), "\(transcript)")
        #expect(fromList.map(\.ticketServer) == fromKlist.map(\.ticketServer), "\(transcript)")
        // What the issue saw missing: T on the service tickets, and the referral's real name.
        #expect(
            fromKlist.contains { $0.flags.contains("T") }, "the KDC set no transit-policy-checked flag: \(transcript)")
        #expect(fromKlist.contains { $0.ticketServer != nil }, "no referral entry in this cache: \(transcript)")
        print(transcript)
    }

    @Test("list, list -v and --json describe the caches; status reports the daemon")
    func listAndStatus() throws {
        let env = environment(bed)
        let empty = try bed.run([ccachectl, "list"], extra: env)
        #expect(empty.status == 1, "\(empty)")
        try bed.kinit("alice")
        try bed.expectSuccess("kvno", "host/localhost", "HTTP/localhost")
        try bed.kinit("bob")

        let list = try bed.run([ccachectl, "list"], extra: env)
        #expect(list.succeeded, "\(list)")
        let lines = list.stdout.split(separator: "\n")
        #expect(lines.first?.contains("PRINCIPAL") == true)
        #expect(lines.count == 3, "\(list)")
        #expect(lines[1].hasPrefix("*") && lines[1].contains("bob@CCACHED.TEST"), "\(list)")
        #expect(lines[2].contains("alice@CCACHED.TEST") && lines[2].contains("  3  "), "\(list)")

        let verbose = try bed.run([ccachectl, "list", "-v"], extra: env)
        #expect(verbose.stdout.contains("HTTP/localhost@CCACHED.TEST"), "\(verbose)")
        #expect(verbose.stdout.contains("aes256-cts-hmac-sha1-96"), "\(verbose)")
        #expect(verbose.stdout.contains("renew until"), "\(verbose)")

        let json = try bed.run([ccachectl, "list", "--json"], extra: env)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let caches = parsed?["caches"] as? [[String: Any]]
        #expect(caches?.count == 2)
        #expect(caches?.first?["principal"] as? String == "bob@CCACHED.TEST")
        #expect(caches?.first?["default"] as? Bool == true)
        #expect(caches?.last?["tickets"] as? Int == 3)
        #expect(
            (caches?.last?["credentials"] as? [[String: Any]])?.contains {
                $0["server"] as? String == "host/localhost@CCACHED.TEST"
            } == true)

        let status = try bed.run([ccachectl, "status", "--json"], extra: env)
        let statusObject = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect(statusObject?["pid"] as? Int == Int(bed.daemon?.processIdentifier ?? -1))
        #expect(statusObject?["caches"] as? Int == 2)
        #expect(statusObject?["credentials"] as? Int ?? 0 >= 4)

        #expect(try bed.run([ccachectl, "switch", "alice"], extra: env).succeeded)
        #expect(try bed.expectSuccess("klist").stdout.contains("Default principal: alice@CCACHED.TEST"))
        let destroy = try bed.run([ccachectl, "destroy", "bob@CCACHED.TEST"], extra: env)
        #expect(destroy.succeeded, "\(destroy)")
        #expect(
            collectionListing(try bed.expectSuccess("klist", "-l").stdout).map(\.principal) == ["alice@CCACHED.TEST"])
        #expect(try bed.run([ccachectl, "destroy", "--all"], extra: env).succeeded)
        #expect(try bed.run("klist", "-l").status == 1)
        let missing = try bed.run([ccachectl, "switch", "nobody-here"], extra: env)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no cache named 'nobody-here'"))
    }

    @Test("list asks the daemon for each cache's principal once: the reply that says it exists names it")
    func listReadsEachPrincipalOnce() throws {
        try bed.kinit("alice")
        try bed.kinit("bob")
        func principalRequests() -> Int {
            bed.daemonLogText.split(separator: "\n").filter { $0.contains("GET_PRINCIPAL -> ") }.count
        }
        let before = principalRequests()
        let list = try bed.run([ccachectl, "list"], extra: environment(bed))
        #expect(list.succeeded, "\(list)")
        #expect(principalRequests() - before == 2, "two caches:\n\(bed.daemonLogText)")
    }

    @Test("status shows each limit met by the MIT tools: used == limit, the refusals, the option that sets it")
    func statusShowsLimits() throws {
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--max-caches", "2", "--max-credentials-per-cache", "2"])
        let env = environment(bed)
        try bed.kinit("alice")  // REPLACE: the fast_avail config entry and the TGT, 2 of 2
        try bed.expectSuccess("kvno", "host/localhost")  // its STORE is refused; kvno goes on uncached
        try bed.kinit("bob", "-c", "KCM:\(getuid()):bob")  // the second cache of 2
        let third = try bed.run(["kinit", "-c", "KCM:\(getuid()):carol", "carol"], input: "pw-carol\n")
        #expect(!third.succeeded, "\(third)")

        let json = try bed.run([ccachectl, "status", "--json", "--no-start"], extra: env)
        #expect(json.succeeded, "\(json)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let limits = object?["limits"] as? [String: [String: Any]]
        func value(_ limit: String, _ field: String) -> Int? { limits?[limit]?[field] as? Int }
        #expect(value("caches", "used") == 2 && value("caches", "limit") == 2, "\(json.stdout)")
        #expect(value("caches", "refused") ?? 0 >= 1, "\(json.stdout)")
        #expect(limits?["caches"]?["option"] as? String == "--max-caches")
        #expect(value("credentials_per_cache", "used") == 2, "\(json.stdout)")
        #expect(value("credentials_per_cache", "limit") == 2, "\(json.stdout)")
        #expect(value("credentials_per_cache", "refused") ?? 0 >= 1, "\(json.stdout)")
        // Limits not met: their defaults, nothing refused.
        #expect(value("credential_bytes", "limit") == 256 << 20 && value("credential_bytes", "refused") == 0)
        #expect(value("credential_bytes", "used") == object?["credential_bytes"] as? Int)
        #expect(value("connections", "limit") == 4096 && value("connections", "used") ?? 0 >= 1)
        #expect(value("request_bytes", "limit") == 16 << 20 && value("request_bytes", "used") ?? 0 > 100)
        #expect(value("request_timeout_seconds", "limit") == 10 && value("request_timeout_seconds", "used") == nil)

        let human = try bed.run([ccachectl, "status", "--no-start"], extra: env)
        #expect(human.succeeded, "\(human)")
        let lines = human.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("caches:       2 of 2 ") && $0.hasSuffix("--max-caches") }, "\(human)")
        #expect(lines.contains { $0.hasPrefix("credentials:  ") && $0.contains("largest cache 2 of 2") }, "\(human)")
        #expect(lines.contains { $0.contains("over --max-caches") }, "\(human)")
        #expect(lines.contains { $0.contains("over --max-credentials-per-cache") }, "\(human)")
        #expect(lines.contains { $0.hasPrefix("bytes:") && $0.contains("of 256 MiB") }, "\(human)")
        // The usage column is one width: every option starts in the same column.
        let optionColumns = Set(lines.compactMap { $0.range(of: "  --max-")?.lowerBound.utf16Offset(in: $0) })
        #expect(optionColumns.count == 1, "\(human)")
    }

    @Test("eight ccachectl processes starting the daemon at once leave exactly one daemon")
    func racingProcesses() throws {
        let socket = bed.directory.appendingPathComponent("race/kcm.sock").path
        let env = ["CCACHED_SOCKET": socket, "CCACHED_DAEMON": ccachedBinary]
        let results = Mutexed<[CommandResult]>([])
        let bed = bed  // the testbed, not the suite, goes to the concurrent closures
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let result =
                (try? bed.run([ccachectlBinary, "status", "--json"], extra: env))
                ?? CommandResult(arguments: [], status: -1, stdout: "", stderr: "spawn failed")
            results.append(result)
        }
        let pids = Set(
            results.value.compactMap { result -> Int? in
                (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["pid"] as? Int
            })
        for result in results.value { #expect(result.succeeded, "\(result)") }
        #expect(pids.count == 1, "\(results.value)")
        let stop = try bed.run([ccachectl, "stop"], extra: env)
        #expect(stop.succeeded, "\(stop)")
        #expect(!FileManager.default.fileExists(atPath: socket))
        let again = try bed.run([ccachectl, "stop"], extra: env)
        #expect(again.status == 1)
    }

    @Test("a runtime directory open to others is refused with a message naming it")
    func unsafeRuntime() throws {
        let runtime = bed.directory.appendingPathComponent("xdg").path
        mkdir(runtime, 0o700)
        mkdir(runtime + "/ccached", 0o755)
        chmod(runtime + "/ccached", 0o755)
        let result = try bed.run([ccachectl, "status"], extra: ["XDG_RUNTIME_DIR": runtime, "CCACHED_SESSION": "x"])
        #expect(result.status == 2, "\(result)")
        #expect(
            result.stderr.contains("refusing to use \(runtime)/ccached: it is open to group or others (mode 755"),
            "\(result)")
    }

    @Test("a login that opens adopts the tickets stored in the per-user daemon while there was no login")
    func loginAdoptsPerUserTickets() throws {
        let runtime = bed.directory.appendingPathComponent("xdg-adopt")
        try FileManager.default.createDirectory(
            atPath: runtime.path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        let realmConf = bed.directory.appendingPathComponent("kdc/krb5.conf").path
        let common = ["XDG_RUNTIME_DIR": runtime.path, "CCACHED_DAEMON": ccachedBinary, "KRB5_CONFIG": realmConf]
        // A writer outside any session (sssd's krb5_child, rpc.gssd) stores into the per-user daemon.
        let writer = """
            set -e
            eval "$("\(ccachectl)" env)"
            printf 'pw-carol\\n' | kinit carol >/dev/null
            klist
            """
        let stored = try bed.run(["sh", "-c", writer], extra: common.merging(["CCACHED_SESSION": "user"]) { $1 })
        #expect(stored.succeeded && stored.stdout.contains("Default principal: carol@"), "\(stored)")
        // The login opens: pam_ccached runs this in it. It starts the login's daemon, attaches, adopts,
        // and prints only the session's variables on stdout (the module reads them); the rest on stderr.
        let login = common.merging(["CCACHED_SESSION": "login1"]) { $1 }
        let attach = try bed.run([ccachectl, "attach", "--idle-timeout", "0", "--print-env", "plain"], extra: login)
        #expect(attach.succeeded, "\(attach)")
        #expect(attach.stderr.contains("adopted 1 cache(s) stored before the login: carol@CCACHED.TEST"), "\(attach)")
        #expect(attach.stderr.contains("1 session attached"), "\(attach)")
        let lines = attach.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "KRB5CCNAME=KCM:", "\(attach)")
        #expect(lines.allSatisfy { $0.contains("=") && !$0.contains(" ") }, "only NAME=value lines: \(attach)")
        let status = try bed.run([ccachectl, "status"], extra: login)
        #expect(
            status.stdout.split(separator: "\n").contains { $0.contains("idle exit") && $0.hasSuffix("never") },
            "started with --idle-timeout 0: \(status)")
        let listed = try bed.run([ccachectl, "list"], extra: login)
        #expect(listed.stdout.contains("carol@CCACHED.TEST"), "\(listed)")
        let perUser = try bed.run([ccachectl, "list"], extra: common.merging(["CCACHED_SESSION": "user"]) { $1 })
        #expect(!perUser.stdout.contains("carol@"), "the per-user daemon keeps no copy: \(perUser)")
        // A second attach finds nothing more to adopt.
        let again = try bed.run([ccachectl, "attach"], extra: login)
        #expect(again.succeeded && !again.stdout.contains("adopted"), "\(again)")
        for session in ["login1", "user"] {
            _ = try bed.run([ccachectl, "stop"], extra: common.merging(["CCACHED_SESSION": session]) { $1 })
        }
    }
}
