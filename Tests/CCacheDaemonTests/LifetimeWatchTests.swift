import Glibc
import SessionRuntime
import Synchronization
import TestSupport
import Testing

@testable import CCacheDaemon

/// No daemon outlives what it serves: its socket, its job, its user's logins (issue 20).
@Suite("Lifetime: a daemon ends with its socket, its job, or its user's last login")
struct LifetimeWatchTests {
    /// The system's answers, set by each test.
    final class World: Sendable {
        let socketInPlace = Atomic<Bool>(true)
        let jobAlive = Atomic<Bool>(true)
        /// 0: logind does not run; 1: no login; 2: a login.
        let login = Atomic<Int>(2)
        let attached = Atomic<Bool>(false)

        var probe: LifetimeWatch.Probe {
            LifetimeWatch.Probe(
                socketIsInPlace: { self.socketInPlace.load(ordering: .relaxed) },
                auditSessionHasProcesses: { _ in self.jobAlive.load(ordering: .relaxed) },
                userHasLogin: {
                    switch self.login.load(ordering: .relaxed) {
                    case 0: nil
                    case 1: false
                    default: true
                    }
                },
                hasAttachedSessions: { self.attached.load(ordering: .relaxed) })
        }
    }

    static func configuration(job: UInt32? = nil, perUser: Bool = false) -> DaemonConfiguration {
        var configuration = DaemonConfiguration(socketPath: "/run/user/1000/ccached/5/.heim_org.h5l.kcm-socket")
        configuration.auditSession = job
        configuration.perUser = perUser
        configuration.lifetimeCheckInterval = 10
        configuration.perUserGrace = 30
        return configuration
    }

    @Test("a daemon whose socket was removed or replaced ends at the next check")
    func socketGone() {
        let world = World()
        var watch = LifetimeWatch(configuration: Self.configuration(), probe: world.probe)
        #expect(watch.tick(now: 100) == nil)
        world.socketInPlace.store(false, ordering: .relaxed)
        #expect(watch.tick(now: 105) == nil)  // between checks
        #expect(watch.tick(now: 110) == .socketGone("/run/user/1000/ccached/5/.heim_org.h5l.kcm-socket"))
    }

    @Test("a job's daemon ends when no process of its audit session is left, and only then")
    func jobEnds() {
        let world = World()
        var watch = LifetimeWatch(configuration: Self.configuration(job: 40), probe: world.probe)
        #expect(watch.tick(now: 0) == nil)
        #expect(watch.tick(now: 10) == nil)
        world.jobAlive.store(false, ordering: .relaxed)
        #expect(watch.tick(now: 20) == .jobEnded(40))
    }

    @Test("a login's daemon ignores the job and the user's logins")
    func loginDaemonIgnoresOthers() {
        let world = World()
        world.jobAlive.store(false, ordering: .relaxed)
        world.login.store(1, ordering: .relaxed)
        var watch = LifetimeWatch(configuration: Self.configuration(), probe: world.probe)
        for now in stride(from: UInt64(0), through: 600, by: 10) { #expect(watch.tick(now: now) == nil) }
    }

    @Test("the per-user daemon ends after 30 s without a login; a login in between restarts the count")
    func perUserEnds() {
        let world = World()
        world.login.store(1, ordering: .relaxed)
        var watch = LifetimeWatch(configuration: Self.configuration(perUser: true), probe: world.probe)
        #expect(watch.tick(now: 0) == nil)
        #expect(watch.tick(now: 10) == nil)
        world.login.store(2, ordering: .relaxed)
        #expect(watch.tick(now: 20) == nil)
        world.login.store(1, ordering: .relaxed)
        #expect(watch.tick(now: 30) == nil)
        #expect(watch.tick(now: 40) == nil)
        #expect(watch.tick(now: 50) == nil)
        #expect(watch.tick(now: 60) == .noLogin(getuid(), grace: 30))
    }

    @Test("the per-user daemon stays while a PAM session is attached, or where logind does not run")
    func perUserStays() {
        let world = World()
        world.login.store(1, ordering: .relaxed)
        world.attached.store(true, ordering: .relaxed)
        var watch = LifetimeWatch(configuration: Self.configuration(perUser: true), probe: world.probe)
        for now in stride(from: UInt64(0), through: 300, by: 10) { #expect(watch.tick(now: now) == nil) }
        world.attached.store(false, ordering: .relaxed)
        world.login.store(0, ordering: .relaxed)
        for now in stride(from: UInt64(310), through: 600, by: 10) { #expect(watch.tick(now: now) == nil) }
    }

    @Test("an unused audit session has no process")
    func unusedAuditSession() {
        #expect(!SessionLiveness.anyProcess(inAuditSession: 4_000_000_000, excluding: getpid()))
    }

    @Test(
        "a job's audit session counts while a process of it lives, and not after it exited",
        .requiresRoot("needs root to start a process in a new audit session"))
    func auditSessionScan() throws {
        // A child that starts a new audit session (as pam_loginuid does for a cron job) and waits.
        var pid: pid_t = 0
        let script = "echo 4242 >/proc/self/loginuid && { read s </proc/self/sessionid; echo $s; } && exec sleep 30"
        var pipeEnds: [Int32] = [0, 0]
        try #require(pipe(&pipeEnds) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        let words = ["/bin/sh", "-c", script]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { (text: String) in strdup(text) } + [nil]
        defer { argv.forEach { free($0) } }
        try #require(posix_spawn(&pid, "/bin/sh", &actions, nil, argv, nil) == 0)
        posix_spawn_file_actions_destroy(&actions)
        close(pipeEnds[1])
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
        close(pipeEnds[0])
        let session = UInt32(String(decoding: buffer[0..<max(0, count)], as: UTF8.self).filter(\.isNumber))
        guard let session, session != UInt32.max else {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            Issue.record("the child got no audit session (no CAP_AUDIT_CONTROL, or loginuid already set)")
            return
        }
        #expect(SessionLiveness.anyProcess(inAuditSession: session, excluding: getpid()))
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(!SessionLiveness.anyProcess(inAuditSession: session, excluding: getpid()))
    }
}
