import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `pam_ccached.so` (built by `make pam`, plain C): what it links against, and a whole login and
/// logout of a throwaway user through a private PAM configuration, against the test KDC.
// Serialized: useradd and userdel take a lock on /etc/passwd and fail rather than wait for it.
@Suite("pam_ccached", .serialized)
struct PAMModuleTests {
    static let pamDirectory = repositoryRoot.appendingPathComponent(".build/pam")
    static let module = pamDirectory.appendingPathComponent("pam_ccached.so").path
    static let harness = pamDirectory.appendingPathComponent("pam_harness").path
    let ccachectl = URL(fileURLWithPath: ccachedBinary).deletingLastPathComponent().appendingPathComponent("ccachectl")
        .path

    func requireBuilt() throws {
        for path in [Self.module, Self.harness] {
            try #require(
                FileManager.default.fileExists(atPath: path), "\(path) is missing: run 'make pam' (make test does)")
        }
    }

    @Test("the module links only libpam and libc, has no RUNPATH, and exports only the two session functions")
    func linkage() throws {
        try requireBuilt()
        let scratch = try ScratchDirectory.make("ccached-pam")
        defer { ScratchDirectory.remove(scratch) }
        let dynamic = try runCommand(
            ["readelf", "-d", Self.module], environment: ProcessInfo.processInfo.environment, scratch: scratch)
        #expect(dynamic.succeeded, "\(dynamic)")
        let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap {
            line -> String? in
            guard let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        #expect(Set(needed) == ["libpam.so.0", "libc.so.6"], "\(dynamic.stdout)")
        #expect(!needed.contains { $0.contains("swift") }, "\(dynamic.stdout)")
        #expect(!dynamic.stdout.contains("(RUNPATH)") && !dynamic.stdout.contains("(RPATH)"), "\(dynamic.stdout)")

        let symbols = try runCommand(
            ["nm", "-D", "--defined-only", Self.module], environment: ProcessInfo.processInfo.environment,
            scratch: scratch)
        #expect(symbols.succeeded, "\(symbols)")
        let exported = Set(
            symbols.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
        )
        .subtracting(["_init", "_fini"])
        #expect(exported == ["pam_sm_open_session", "pam_sm_close_session"], "\(symbols.stdout)")
    }

    @Test(
        "login imports pam_krb5's FILE cache into a daemon running as the user; kinit and klist use it; logout stops it",
        .requiresRoot("needs root: creates a user and drives PAM"))
    func loginAndLogout() throws {
        try requireBuilt()
        let login = try PAMLoginFixture.start(ccachectl: ccachectl)
        defer { login.stop() }
        let user = login.user

        // What pam_krb5 leaves behind: a FILE cache of the user's, from a real kinit.
        let fileCache = "/tmp/krb5cc_\(user.uid)_test"
        defer { unlink(fileCache) }
        let kinitFile = try user.run(
            ["kinit", "alice"], environment: ["KRB5_CONFIG": login.realmConf, "KRB5CCNAME": "FILE:" + fileCache],
            input: "pw-alice\n")
        #expect(kinitFile.succeeded, "\(kinitFile)")
        #expect(FileManager.default.fileExists(atPath: fileCache))

        var transcript = "=== login of \(user.name) (uid \(user.uid)) through \(Self.module)\n"
        let session = try login.open(
            options: "debug",
            putenv: [
                "KRB5CCNAME=FILE:" + fileCache, "XDG_RUNTIME_DIR=" + login.runtime, "XDG_SESSION_ID=pamtest",
                "KRB5_CONFIG=" + login.realmConf,
            ])
        defer { session.finish() }
        transcript += session.output
        #expect(session.output.contains("pam_open_session: Success"), "\(session.output)\n\(session.errors)")

        let exported = session.environment
        let sessionDirectory = login.runtime + "/ccached/pamtest"
        #expect(exported["KRB5CCNAME"] == "KCM:")
        #expect(exported["CCACHED_SOCKET"] == sessionDirectory + "/.heim_org.h5l.kcm-socket")
        #expect(exported["HEIM_IPC_DIR"] == sessionDirectory)
        #expect(exported["KRB5_CONFIG"] == sessionDirectory + "/krb5.conf:" + login.realmConf)

        // A daemon runs, as the user.
        let status = try user.run([ccachectl, "status", "--json", "--no-start"], environment: exported)
        #expect(status.succeeded, "\(status)")
        let statusObject = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let pid = try #require(statusObject?["pid"] as? Int, "\(status)")
        #expect(processUIDs(pid) == [user.uid, user.uid, user.uid, user.uid], "/proc/\(pid)/status")
        #expect(livingProcesses(named: "ccached", uid: user.uid) == [pid])

        // The FILE cache was imported and removed.
        #expect(!FileManager.default.fileExists(atPath: fileCache), "the imported FILE cache is still on disk")
        let klistImported = try user.run(["klist"], environment: exported)
        transcript += "=== as \(user.name), with that environment\n" + shown(klistImported)
        #expect(klistImported.succeeded, "\(klistImported)")
        #expect(klistImported.stdout.contains("Ticket cache: KCM:\(user.uid)"), "\(klistImported)")
        #expect(klistImported.stdout.contains("Default principal: alice@CCACHED.TEST"), "\(klistImported)")
        #expect(klistImported.stdout.contains("krbtgt/CCACHED.TEST@CCACHED.TEST"), "\(klistImported)")

        // The stock tools keep new tickets in the session's daemon.
        let kinit = try user.run(["kinit", "carol"], environment: exported, input: "pw-carol\n")
        #expect(kinit.succeeded, "\(kinit)")
        let kvno = try user.run(["kvno", "host/localhost"], environment: exported)
        #expect(kvno.succeeded, "\(kvno)")
        let klist = try user.run(["klist", "-l"], environment: exported)
        transcript += shown(kinit) + shown(kvno) + shown(klist)
        #expect(Set(collectionListing(klist.stdout).map(\.principal)) == ["alice@CCACHED.TEST", "carol@CCACHED.TEST"])
        let list = try user.run([ccachectl, "list"], environment: exported)
        transcript += shown(list)
        #expect(list.stdout.contains("carol@CCACHED.TEST") && list.stdout.contains("alice@CCACHED.TEST"), "\(list)")

        // Logout: the caches are wiped and the daemon stops.
        let logout = session.logout()
        transcript += "=== logout\n\(logout.output)--- module log (syslog copy)\n\(logout.errors)"
        print(transcript)
        #expect(logout.status == 0, "\(logout.output)\n\(logout.errors)")
        #expect(logout.output.contains("pam_close_session: Success"), "\(logout.output)\n\(logout.errors)")
        #expect(
            waitUntil { livingProcesses(named: "ccached", uid: user.uid).isEmpty }, "a ccached of \(user.name) remains")
        #expect(!FileManager.default.fileExists(atPath: sessionDirectory + "/.heim_org.h5l.kcm-socket"))
        #expect(logout.errors.contains("ccachectl import for user \(user.name): exit 0"), "\(logout.errors)")
    }

    @Test(
        "scope=user and keep: one daemon for all of the user's sessions, left running at logout",
        .requiresRoot("needs root: creates a user and drives PAM"))
    func userScopeAndKeep() throws {
        try requireBuilt()
        let login = try PAMLoginFixture.start(ccachectl: ccachectl)
        defer { login.stop() }
        let user = login.user

        let session = try login.open(
            options: "scope=user keep idle_timeout=600 remove_imported=no bogus_option",
            putenv: ["XDG_RUNTIME_DIR=" + login.runtime, "XDG_SESSION_ID=ignored"])
        defer { session.finish() }
        #expect(session.output.contains("pam_open_session: Success"), "\(session.output)\n\(session.errors)")
        #expect(session.environment["HEIM_IPC_DIR"] == login.runtime + "/ccached/user", "\(session.output)")
        let logout = session.logout()
        #expect(logout.status == 0, "\(logout.output)\n\(logout.errors)")
        #expect(logout.errors.contains("ignoring unknown option bogus_option"), "\(logout.errors)")

        let status = try user.run([ccachectl, "status", "--json", "--no-start"], environment: session.environment)
        #expect(status.succeeded, "keep should leave the daemon running:\n\(status)")
        #expect(status.stdout.contains("\"idle_timeout_seconds\":600"), "\(status)")
        let stop = try user.run([ccachectl, "stop"], environment: session.environment)
        #expect(stop.succeeded, "\(stop)")
        #expect(waitUntil { livingProcesses(named: "ccached", uid: user.uid).isEmpty })
    }

    @Test(
        "two sessions sharing the per-user daemon: the first logout leaves the other's tickets, the last wipes and stops it",
        .requiresRoot("needs root: creates a user and drives PAM"))
    func sharedDaemonSurvivesFirstLogout() throws {
        try requireBuilt()
        let login = try PAMLoginFixture.start(ccachectl: ccachectl)
        defer { login.stop() }
        let user = login.user
        let env = ["XDG_RUNTIME_DIR=" + login.runtime, "KRB5_CONFIG=" + login.realmConf]
        let first = try login.open(options: "scope=user", putenv: env + ["XDG_SESSION_ID=one"])
        defer { first.finish() }
        let second = try login.open(options: "scope=user", putenv: env + ["XDG_SESSION_ID=two"])
        defer { second.finish() }
        #expect(first.output.contains("pam_open_session: Success"), "\(first.output)\n\(first.errors)")
        #expect(second.output.contains("pam_open_session: Success"), "\(second.output)\n\(second.errors)")
        #expect(first.environment["CCACHED_SOCKET"] == second.environment["CCACHED_SOCKET"], "one shared daemon")
        let kinit = try user.run(["kinit", "alice"], environment: second.environment, input: "pw-alice\n")
        #expect(kinit.succeeded, "\(kinit)")
        func attached() throws -> Int? {
            let status = try user.run([ccachectl, "status", "--json", "--no-start"], environment: second.environment)
            let object = try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            return object?["attached_sessions"] as? Int
        }
        #expect(try attached() == 2)

        let firstOut = first.logout()
        #expect(firstOut.status == 0, "\(firstOut.output)\n\(firstOut.errors)")
        #expect(try attached() == 1)
        let klist = try user.run(["klist"], environment: second.environment)
        #expect(
            klist.succeeded && klist.stdout.contains("alice@CCACHED.TEST"),
            "the first logout wiped the other session: \(klist)")

        let secondOut = second.logout()
        #expect(secondOut.status == 0, "\(secondOut.output)\n\(secondOut.errors)")
        #expect(
            waitUntil { livingProcesses(named: "ccached", uid: user.uid).isEmpty }, "the last logout stops the daemon")
    }

    @Test(
        "another user's /tmp/ccached-<uid> does not lock the victim out: without /run/user, root makes /run/ccached/<uid>",
        .requiresRoot("needs root: creates two users and drives PAM"))
    func squattedTmpDoesNotBlockLogin() throws {
        try requireBuilt()
        let bed = try KerberosTestbed()
        defer { bed.stop() }
        let victim = try ThrowawayUser(bed: bed)
        defer { victim.remove() }
        let attacker = try ThrowawayUser(bed: bed)
        defer { attacker.remove() }
        let login = try PAMLoginFixture(bed: bed, user: victim, ccachectl: ccachectl)
        let managed = "/run/ccached/\(victim.uid)"
        var info = stat()
        try #require(lstat("/run/user/\(victim.uid)", &info) != 0, "/run/user/\(victim.uid) exists: nothing to test")
        // Undo what the module makes on the host: the user's directory, and /run/ccached if it was new.
        let baseExisted = lstat("/run/ccached", &info) == 0
        defer {
            _ = try? bed.run(["rm", "-rf", managed])
            if !baseExisted { rmdir("/run/ccached") }
        }

        // The squat of issue 12, item 2: the old predictable name, made first by someone else.
        let squat = "/tmp/ccached-\(victim.uid)"
        defer { _ = try? FileManager.default.removeItem(atPath: squat) }
        let made = try attacker.run(["mkdir", "-m", "0777", squat], environment: [:])
        #expect(made.succeeded, "\(made)")

        // No XDG_RUNTIME_DIR and no /run/user/<uid>: cron, su, ssh without pam_systemd.
        let session = try login.open(
            options: "debug", putenv: ["XDG_SESSION_ID=squat", "KRB5_CONFIG=" + login.realmConf])
        defer { session.finish() }
        #expect(session.output.contains("pam_open_session: Success"), "\(session.output)\n\(session.errors)")
        let exported = session.environment
        #expect(exported["HEIM_IPC_DIR"] == managed + "/ccached/squat", "\(session.output)")
        #expect(lstat("/run/ccached", &info) == 0 && info.st_uid == 0 && info.st_mode & 0o7777 == 0o755)
        #expect(lstat(managed, &info) == 0 && info.st_uid == victim.uid && info.st_mode & 0o7777 == 0o700, "\(managed)")
        // The daemon is the victim's and serves the stock tools; the squatted path was left alone.
        let kinit = try victim.run(["kinit", "alice"], environment: exported, input: "pw-alice\n")
        #expect(kinit.succeeded, "\(kinit)")
        let klist = try victim.run(["klist"], environment: exported)
        #expect(klist.stdout.contains("Default principal: alice@CCACHED.TEST"), "\(klist)")
        #expect(lstat(squat + "/ccached", &info) != 0, "something was made inside the squatted directory")
        let logout = session.logout()
        #expect(logout.status == 0, "\(logout.output)\n\(logout.errors)")
        #expect(waitUntil { livingProcesses(named: "ccached", uid: victim.uid).isEmpty })

        // A /run/ccached/<uid> that is not the victim's (made by root for someone else, say) is
        // refused by name, and the required session fails rather than use it.
        _ = try bed.run(["rm", "-rf", managed])
        #expect(mkdir(managed, 0o700) == 0 && chown(managed, attacker.uid, attacker.gid) == 0)
        let refused = try login.open(options: "", putenv: ["XDG_SESSION_ID=squat2"])
        let failed = refused.logout()
        #expect(refused.output.contains("pam_open_session: Cannot make/remove"), "\(refused.output)\n\(failed.errors)")
        #expect(
            failed.errors.contains(
                "cannot prepare the runtime directory of user \(victim.name): \(managed) exists but is owned by uid \(attacker.uid)"
            ),
            "\(failed.errors)")
    }

    @Test(
        "a ccachectl that cannot run fails the session with a reason in syslog when required; optional logs in anyway",
        .requiresRoot("needs root: creates a user and drives PAM"))
    func failureIsLogged() throws {
        try requireBuilt()
        let login = try PAMLoginFixture.start(ccachectl: "/nonexistent/ccachectl")
        defer { login.stop() }
        let user = login.user

        let failed = try expectRefused(login, logging: "cannot run /nonexistent/ccachectl")
        #expect(failed.status == 1)

        let optional = try login.open(options: "", control: "optional", putenv: ["XDG_RUNTIME_DIR=" + login.runtime])
        let passed = optional.logout()
        #expect(optional.output.contains("pam_open_session: Success"), "\(optional.output)\n\(passed.errors)")
        #expect(passed.errors.contains("cannot start or attach the daemon for user \(user.name)"), "\(passed.errors)")
    }

    @Test(
        "a ccachectl that closes its output and exits later is waited for, and its exit status counts",
        .requiresRoot("needs root: creates a user and drives PAM"))
    func closedOutputIsNotAnExit() throws {
        try requireBuilt()
        // Its pipes close at once; its exit comes 0.3 s later. The module waits for that exit (on the
        // child's pidfd) rather than taking the closed pipes for one.
        let login = try PAMLoginFixture.start { directory in
            let fake = directory.appendingPathComponent("late-ccachectl")
            try "#!/bin/sh\nexec >&- 2>&-\nsleep 0.3\nexit 7\n".write(to: fake, atomically: true, encoding: .utf8)
            chmod(fake.path, 0o755)
            return fake.path
        }
        defer { login.stop() }
        _ = try expectRefused(login, logging: "exit status 7, no message")
    }

    /// Opens a `required` session that the module must refuse, saying `reason` in syslog; logs out.
    func expectRefused(
        _ login: PAMLoginFixture, logging reason: String
    ) throws -> (status: Int32, output: String, errors: String) {
        let session = try login.open(options: "", putenv: ["XDG_RUNTIME_DIR=" + login.runtime])
        let ending = session.logout()
        #expect(
            session.output.contains("pam_open_session: Cannot make/remove an entry for the specified session"),
            "\(session.output)")
        #expect(
            ending.errors.contains("cannot start or attach the daemon for user \(login.user.name): \(reason)"),
            "\(ending.errors)")
        return ending
    }
}

/// A user made for one test with `useradd`, removed with its home by ``remove()``.
struct ThrowawayUser {
    let name: String
    let uid: UInt32
    let gid: UInt32
    let bed: KerberosTestbed

    init(bed: KerberosTestbed) throws {
        self.bed = bed
        let name = "ccachedpam\(UInt32.random(in: 100_000...999_999))"
        var added = try bed.run(["useradd", "--create-home", "--shell", "/bin/sh", name])
        // Exit status 10: /etc/passwd is locked by another tool right now.
        for _ in 0..<20 where added.status == 10 {
            usleep(100_000)
            added = try bed.run(["useradd", "--create-home", "--shell", "/bin/sh", name])
        }
        guard added.succeeded else { throw TestbedError.setup("useradd failed:\n\(added)") }
        guard let entry = getpwnam(name) else { throw TestbedError.setup("\(name) is not in the password database") }
        self.name = name
        uid = entry.pointee.pw_uid
        gid = entry.pointee.pw_gid
    }

    /// Runs a program as the user with exactly `environment` (plus a PATH).
    func run(_ arguments: [String], environment: [String: String], input: String? = nil) throws -> CommandResult {
        var clean = environment
        clean["PATH"] = clean["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        clean["HOME"] = clean["HOME"] ?? "/home/\(name)"
        let assignments = clean.map { "\($0.key)=\($0.value)" }.sorted()
        return try bed.run(["runuser", "-u", name, "--", "env", "-i"] + assignments + arguments, input: input)
    }

    /// Kills what the user still runs (a failed test may leave a daemon) and deletes the user.
    func remove() {
        for pid in livingProcesses(named: nil, uid: uid) { kill(pid_t(pid), SIGKILL) }
        _ = waitUntil { livingProcesses(named: nil, uid: uid).isEmpty }
        _ = try? bed.run(["userdel", "--remove", name])
    }
}

/// The private PAM configuration and runtime directory for logging a ``ThrowawayUser`` in.
struct PAMLoginFixture {
    let bed: KerberosTestbed
    let user: ThrowawayUser
    let ccachectl: String
    /// The user's XDG_RUNTIME_DIR (0700, theirs), as pam_systemd would make it.
    let runtime: String
    /// The test realm's krb5.conf, readable by the user.
    let realmConf: String

    init(bed: KerberosTestbed, user: ThrowawayUser, ccachectl: String) throws {
        self.bed = bed
        self.user = user
        self.ccachectl = ccachectl
        // The user must reach their runtime directory and the realm's krb5.conf inside the testbed.
        chmod(bed.directory.path, 0o711)
        chmod(bed.directory.appendingPathComponent("kdc").path, 0o711)
        realmConf = bed.directory.appendingPathComponent("kdc/krb5.conf").path
        chmod(realmConf, 0o644)
        runtime = bed.directory.appendingPathComponent("run-\(user.name)").path
        guard mkdir(runtime, 0o700) == 0, chown(runtime, user.uid, user.gid) == 0 else {
            throw TestbedError.setup("cannot make \(runtime): \(String(cString: strerror(errno)))")
        }
    }

    /// A fresh test bed, a throwaway user in it and that user's login; ``stop()`` removes them.
    static func start(ccachectl: String) throws -> PAMLoginFixture {
        try start { _ in ccachectl }
    }

    /// The same, with the ccachectl that `ccachectl` puts in the test bed's directory (reachable by
    /// the user) and names.
    static func start(ccachectl: (URL) throws -> String) throws -> PAMLoginFixture {
        let bed = try KerberosTestbed()
        do {
            let user = try ThrowawayUser(bed: bed)
            do {
                return try PAMLoginFixture(bed: bed, user: user, ccachectl: ccachectl(bed.directory))
            } catch {
                user.remove()
                throw error
            }
        } catch {
            bed.stop()
            throw error
        }
    }

    /// Removes the user, then stops the test bed.
    func stop() {
        user.remove()
        bed.stop()
    }

    /// Starts the harness: writes the service file, opens the session, returns once it is logged in.
    func open(options: String, control: String = "required", putenv: [String]) throws -> PAMSession {
        let confdir = bed.directory.appendingPathComponent("pam.d")
        try FileManager.default.createDirectory(at: confdir, withIntermediateDirectories: true)
        // pam_permit stands for the rest of a real session stack (pam_unix and friends): with a
        // lone optional module PAM would report that module's result.
        try
            "session required pam_permit.so\nsession \(control) \(PAMModuleTests.module) ccachectl=\(ccachectl) \(options)\n"
            .write(to: confdir.appendingPathComponent("ccached-test"), atomically: true, encoding: .utf8)
        return try PAMSession(
            arguments: ["ccached-test", user.name, confdir.path] + putenv, scratch: bed.directory)
    }
}

/// One run of `pam_harness`: logged in after init, logged out by ``logout()``.
final class PAMSession {
    let process = Process()
    private let input = Pipe()
    private let outputPipe = Pipe()
    private let errorsURL: URL
    private(set) var output = ""

    init(arguments: [String], scratch: URL) throws {
        errorsURL = scratch.appendingPathComponent("harness-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errorsURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: PAMModuleTests.harness)
        process.arguments = arguments
        // Like sshd: a bare environment; the module reads the session's variables from PAM's.
        process.environment = ["PATH": "/usr/local/bin:/usr/bin:/bin"]
        process.standardInput = input
        process.standardOutput = outputPipe
        process.standardError = try FileHandle(forWritingTo: errorsURL)
        try process.run()
        var collected = Data()
        while !String(decoding: collected, as: UTF8.self).contains("--- logged in") {
            let chunk = outputPipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            collected.append(chunk)
        }
        output = String(decoding: collected, as: UTF8.self)
    }

    var errors: String { (try? String(contentsOf: errorsURL, encoding: .utf8)) ?? "" }

    /// The PAM environment printed after open_session.
    var environment: [String: String] {
        var result: [String: String] = [:]
        let lines = output.split(separator: "\n").drop { !$0.hasPrefix("--- PAM environment after open_session") }
            .dropFirst()
        for line in lines.prefix(while: { !$0.hasPrefix("---") }) {
            guard let equals = line.firstIndex(of: "=") else { continue }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }

    /// Ends the login (close_session, pam_end); returns what the harness printed from then on
    /// (all of its output stays in ``output``) and the module's log.
    func logout() -> (status: Int32, output: String, errors: String) {
        if process.isRunning {
            try? input.fileHandleForWriting.write(contentsOf: Data("\n".utf8))
            try? input.fileHandleForWriting.close()
        }
        let rest = String(decoding: outputPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        output += rest
        return (process.terminationStatus, rest, errors)
    }

    /// Makes sure the harness is gone, whatever the test did.
    func finish() {
        if process.isRunning { _ = logout() }
        try? FileManager.default.removeItem(at: errorsURL)
    }
}

/// The real, effective, saved and filesystem uids of a process, from `/proc/PID/status`.
func processUIDs(_ pid: Int) -> [UInt32] {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })
    else { return [] }
    return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().compactMap { UInt32($0) }
}

/// Processes (not zombies) whose real uid is `uid`, optionally only those called `name`.
func livingProcesses(named name: String?, uid: UInt32) -> [Int] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int.init).filter { pid in
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        let fields = Dictionary(
            status.split(separator: "\n").compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }, uniquingKeysWith: { first, _ in first })
        guard fields["State"]?.hasPrefix("Z") != true, fields["State"]?.hasPrefix("X") != true else { return false }
        if let name, fields["Name"] != name { return false }
        return processUIDs(pid).first == uid
    }.sorted()
}

/// A command run by ``ThrowawayUser/run(_:environment:input:)`` as a transcript shows it: the program and
/// its arguments (without runuser and the environment), then what it printed.
func shown(_ result: CommandResult) -> String {
    let command = result.arguments.drop { $0 != "-i" }.dropFirst().drop { $0.contains("=") }
    let status = result.succeeded ? "" : "[exit \(result.status)]\n"
    return "$ \(command.joined(separator: " "))\n\(result.stdout)\(result.stderr)\(status)"
}

/// Polls `condition` for up to `seconds`; true as soon as it holds.
func waitUntil(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
