import CCacheDoor
import Foundation
import Testing

@testable import SessionRuntime

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Where a session daemon lives and how it is started")
struct SessionDaemonTests {
    static let isRoot: Bool = {
        if getuid() != 0 { print("SessionDaemonTests: root-only cases SKIPPED, NOT RUN: they chown to other uids") }
        return getuid() == 0
    }()

    func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "door-run-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        chmod(url.path, 0o755)
        return url
    }

    @Test(
        "without /run/user/N the door makes /run/ccached (root 0755) and /run/ccached/N (N, 0700)", .enabled(if: isRoot)
    )
    func fallbackBase() throws {
        let run = try scratch()
        defer { try? FileManager.default.removeItem(at: run) }
        let account = UserAccount(uid: 4242, gid: 4343, name: "x", home: "/", groups: [4343])
        let location = try SessionDaemonLocation.prepare(
            for: account, session: SessionIdentity(key: "audit-7", source: .audit), runRoot: run.path)
        #expect(location.base == run.path + "/ccached/4242")
        #expect(location.socket == run.path + "/ccached/4242/ccached/audit-7/.heim_org.h5l.kcm-socket")
        #expect(location.handoffSocket == location.socket + ".handoff")
        #expect(!location.isUserRuntimeDirectory)
        var info = stat()
        #expect(lstat(run.path + "/ccached", &info) == 0 && info.st_uid == 0 && info.st_mode & 0o7777 == 0o755)
        #expect(
            lstat(location.base, &info) == 0 && info.st_uid == 4242 && info.st_gid == 4343
                && info.st_mode & 0o7777 == 0o700)
        // A second time finds and accepts what the first made.
        #expect(
            try SessionDaemonLocation.prepare(
                for: account, session: SessionIdentity(key: "user", source: .user), runRoot: run.path
            ).base == location.base)
    }

    @Test("a link or a wrongly owned /run/ccached/N is refused, never followed", .enabled(if: isRoot))
    func unsafeBase() throws {
        let run = try scratch()
        defer { try? FileManager.default.removeItem(at: run) }
        let account = UserAccount(uid: 4242, gid: 4242, name: "x", home: "/", groups: [])
        try FileManager.default.createDirectory(atPath: run.path + "/ccached", withIntermediateDirectories: false)
        chmod(run.path + "/ccached", 0o755)
        #expect(symlink("/etc", run.path + "/ccached/4242") == 0)
        #expect(throws: DoorError.self) {
            try SessionDaemonLocation.prepare(
                for: account, session: SessionIdentity(key: "user", source: .user), runRoot: run.path)
        }
        unlink(run.path + "/ccached/4242")
        mkdir(run.path + "/ccached/4242", 0o700)  // owned by root, not by 4242
        #expect(throws: DoorError.self) {
            try SessionDaemonLocation.prepare(
                for: account, session: SessionIdentity(key: "user", source: .user), runRoot: run.path)
        }
    }

    @Test("/run/user/N owned by N is the base, and the daemon's XDG_RUNTIME_DIR")
    func userRuntimeDirectory() throws {
        let run = try scratch()
        defer { try? FileManager.default.removeItem(at: run) }
        let uid = getuid()
        try FileManager.default.createDirectory(atPath: run.path + "/user/\(uid)", withIntermediateDirectories: true)
        let account = UserAccount(uid: uid, gid: getgid(), name: "me", home: "/home/me", groups: [])
        let location = try SessionDaemonLocation.prepare(
            for: account, session: SessionIdentity(key: "5", source: .logind), runRoot: run.path)
        #expect(location.base == run.path + "/user/\(uid)")
        #expect(location.isUserRuntimeDirectory)
        let starter = SessionDaemonStarter(daemonPath: "/usr/bin/ccached", logToJournal: false)
        #expect(
            starter.environment(account: account, location: location)
                == [
                    "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/me", "USER=me", "LOGNAME=me",
                    "XDG_RUNTIME_DIR=\(location.base)",
                ])
        #expect(
            starter.arguments(location: location, session: SessionIdentity(key: "5", source: .logind))
                == ["/usr/bin/ccached", "--socket", location.socket, "--ready-fd", "3", "--login-session", "5"])
        // A job's daemon is told its audit session, the per-user daemon that it is one.
        let job = SessionIdentity(route: LoginRoute(key: "job-3", rule: .ownJob, lifetime: .auditSession(3)))
        #expect(starter.arguments(location: location, session: job).suffix(2) == ["--audit-session", "3"])
        #expect(starter.arguments(location: location, session: .perUser).last == "--per-user")
        // The session's state file (Docs/state.md): inherited as descriptor 4, or from the door.
        #expect(
            starter.arguments(location: location, session: .perUser, state: .descriptor(4)).suffix(3)
                == ["--per-user", "--state-fd", "4"])
        #expect(
            starter.arguments(location: location, session: .perUser, readyDescriptor: nil, state: .door).suffix(2)
                == ["--per-user", "--state-from-door"])
    }

    @Test("a unit of its own in the user's slice, Type=notify, network for renewal, stale sockets removed at stop")
    func unitArguments() throws {
        let run = try scratch()
        defer { try? FileManager.default.removeItem(at: run) }
        let uid = getuid()
        let account = UserAccount(uid: uid, gid: 4243, name: "u", home: "/home/u", groups: [])
        try FileManager.default.createDirectory(atPath: run.path + "/user/\(uid)", withIntermediateDirectories: true)
        let session = SessionIdentity(route: LoginRoute(key: "7", rule: .ownLogin, lifetime: .loginSession("7")))
        let location = try SessionDaemonLocation.prepare(for: account, session: session, runRoot: run.path)
        let starter = SessionDaemonStarter(daemonPath: "/usr/bin/ccached", logToJournal: true)
        let arguments = starter.unitArguments(account: account, session: session, location: location)
        for expected in [
            "--unit=ccached-\(uid)-7.service", "--slice=user-\(uid).slice", "--uid=\(uid)", "--gid=4243",
            "--service-type=notify", "--collect", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            "ReadWritePaths=\(location.base)", "NoNewPrivileges=yes", "LimitCORE=0",
            "ExecStopPost=/usr/bin/ccached --remove-stale --socket \(location.socket)",
        ] {
            #expect(arguments.contains(expected), "\(expected) in \(arguments)")
        }
        // The daemon itself, after "--": no ready pipe (it reports READY=1), its lifetime, the journal.
        let daemon = Array(arguments.drop { $0 != "--" }.dropFirst())
        #expect(
            daemon == [
                "/usr/bin/ccached", "--socket", location.socket, "--login-session", "7", "--log-target", "journal",
            ])
        // With the door's state file: the daemon waits for it on the hand-off socket.
        let withState = starter.unitArguments(
            account: account, session: session, location: location, stateFromDoor: true)
        #expect(Array(withState.drop { $0 != "--" }.dropFirst()).contains("--state-from-door"))
    }

    @Test("waiting for systemd-run, the door sleeps until it exits instead of waking every millisecond")
    func unitStartWaitsWithoutPolling() throws {
        let run = try scratch()
        defer { try? FileManager.default.removeItem(at: run) }
        let uid = getuid()
        let account = UserAccount(uid: uid, gid: getgid(), name: "u", home: "/", groups: [])
        try FileManager.default.createDirectory(atPath: run.path + "/user/\(uid)", withIntermediateDirectories: true)
        let session = SessionIdentity(route: LoginRoute(key: "7", rule: .ownLogin, lifetime: .loginSession("7")))
        let location = try SessionDaemonLocation.prepare(for: account, session: session, runRoot: run.path)
        // A systemd-run that takes 300 ms to report the unit ready, and notes that it ran.
        let fake = run.path + "/systemd-run"
        try "#!/bin/sh\nsleep 0.3\ntouch \"$0.ran\"\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let starter = SessionDaemonStarter(daemonPath: "/usr/bin/ccached", logToJournal: false)
        // RUSAGE_THREAD (1; Swift's Glibc does not export the name): this thread's sleeps only.
        let thisThread = __rusage_who_t(1)
        var before = rusage()
        getrusage(thisThread, &before)
        let readiness = try starter.startUnit(
            systemdRun: fake, account: account, session: session, location: location, timeoutMilliseconds: 10_000)
        var after = rusage()
        getrusage(thisThread, &after)
        #expect(readiness == .ready)
        #expect(FileManager.default.fileExists(atPath: fake + ".ran"), "startUnit returned before systemd-run ended")
        // Polling waitpid every millisecond sleeps (a voluntary switch) about 300 times meanwhile.
        let sleeps = after.ru_nvcsw - before.ru_nvcsw
        #expect(sleeps < 30, "\(sleeps) voluntary context switches while waiting for a 300 ms helper")
    }
}
