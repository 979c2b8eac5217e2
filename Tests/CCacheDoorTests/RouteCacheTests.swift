import CSupport
import Foundation
import Logging
import Synchronization
import SystemCalls
import Testing

@testable import CCacheDoor
@testable import SessionRuntime

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Route cache: remembered decisions end with logind's state, their lifetime, or a failure")
struct RouteCacheTests {
    /// Two directories standing in for /run/systemd/sessions and /run/systemd/users.
    final class Directories {
        let root: URL
        var sessions: String { root.appendingPathComponent("sessions").path }
        var users: String { root.appendingPathComponent("users").path }
        init(creatingSessions: Bool = true) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent(
                "door-routes-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            if creatingSessions {
                try FileManager.default.createDirectory(atPath: sessions, withIntermediateDirectories: true)
            }
            try FileManager.default.createDirectory(atPath: users, withIntermediateDirectories: true)
        }
        func touch(_ path: String) { _ = FileManager.default.createFile(atPath: path, contents: Data("x".utf8)) }
        deinit { try? FileManager.default.removeItem(at: root) }
    }

    static func key(uid: UInt32, cgroup: String = "0::/user.slice/user-1000.slice/session-3.scope\n")
        -> RouteCache.Key
    {
        RouteCache.Key(uid: uid, record: ProcessRecord(cgroup: cgroup, sessionID: "3", loginUID: "\(uid)"))
    }

    static func entry(uid: UInt32) -> RouteCache.Entry {
        let session = SessionIdentity(route: LoginRoute(key: "3", rule: .ownLogin, lifetime: .loginSession("3")))
        return RouteCache.Entry(
            session: session, account: UserAccount(uid: uid, gid: uid, name: "u\(uid)", home: "/", groups: [uid]),
            location: SessionDaemonLocation(
                base: "/run/user/\(uid)", directory: "/run/user/\(uid)/ccached/3",
                socket: "/run/user/\(uid)/ccached/3/.heim_org.h5l.kcm-socket", isUserRuntimeDirectory: true))
    }

    static let now: Int64 = 1_000_000

    @Test("a decision is answered until a session file changes, then forgotten")
    func sessionChange() throws {
        let directories = try Directories()
        let cache = RouteCache(watchedDirectories: [directories.sessions, directories.users])
        let generation = cache.currentGeneration()
        cache.store(Self.entry(uid: 1000), for: Self.key(uid: 1000), generation: generation, now: Self.now)
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now)?.location.base == "/run/user/1000")
        // A process of another cgroup or audit session is another key.
        #expect(cache.lookUp(Self.key(uid: 1000, cgroup: "0::/other\n"), now: Self.now) == nil)
        #expect(cache.lookUp(Self.key(uid: 1001), now: Self.now) == nil)
        // logind writes a session file (its state became "closing", say): every decision goes.
        directories.touch(directories.sessions + "/3")
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now) == nil)
        #expect(cache.count == 0)
    }

    @Test("a decision computed while the user's logind state changed is not kept")
    func changedWhileComputing() throws {
        let directories = try Directories()
        let cache = RouteCache(watchedDirectories: [directories.sessions, directories.users])
        let generation = cache.currentGeneration()
        // Between reading logind and storing the decision, the user's file is rewritten.
        directories.touch(directories.users + "/1000")
        cache.store(Self.entry(uid: 1000), for: Self.key(uid: 1000), generation: generation, now: Self.now)
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now) == nil)
        // Computed again now, it is kept.
        let next = cache.currentGeneration()
        cache.store(Self.entry(uid: 1000), for: Self.key(uid: 1000), generation: next, now: Self.now)
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now) != nil)
    }

    @Test("while logind's directory is missing its parent is watched, and its creation ends every decision")
    func missingDirectory() throws {
        let directories = try Directories(creatingSessions: false)
        let cache = RouteCache(watchedDirectories: [directories.sessions, directories.users])
        var generation = cache.currentGeneration()
        cache.store(Self.entry(uid: 1000), for: Self.key(uid: 1000), generation: generation, now: Self.now)
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now) != nil)
        // logind starts: its sessions directory appears.
        try FileManager.default.createDirectory(atPath: directories.sessions, withIntermediateDirectories: false)
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now) == nil)
        // From now on the directory itself is watched.
        generation = cache.currentGeneration()
        cache.store(Self.entry(uid: 1000), for: Self.key(uid: 1000), generation: generation, now: Self.now)
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now) != nil)
        directories.touch(directories.sessions + "/3")
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now) == nil)
    }

    @Test("a decision ends after its lifetime, and when forgotten")
    func lifetime() throws {
        let directories = try Directories()
        let cache = RouteCache(
            lifetimeMicroseconds: 1000, watchedDirectories: [directories.sessions, directories.users])
        cache.store(
            Self.entry(uid: 1000), for: Self.key(uid: 1000), generation: cache.currentGeneration(), now: Self.now)
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now + 999) != nil)
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now + 1000) == nil)
        cache.store(
            Self.entry(uid: 1000), for: Self.key(uid: 1000), generation: cache.currentGeneration(), now: Self.now)
        cache.forget(Self.key(uid: 1000))
        #expect(cache.lookUp(Self.key(uid: 1000), now: Self.now) == nil)
    }

    @Test("one uid's many cgroups never grow the cache past its share nor push out another uid")
    func bounded() throws {
        let directories = try Directories()
        let cache = RouteCache(perUserLimit: 4, watchedDirectories: [directories.sessions, directories.users])
        let generation = cache.currentGeneration()
        cache.store(Self.entry(uid: 2000), for: Self.key(uid: 2000), generation: generation, now: Self.now)
        for index in 0..<100 {
            cache.store(
                Self.entry(uid: 1000), for: Self.key(uid: 1000, cgroup: "0::/user.slice/x\(index)\n"),
                generation: generation, now: Self.now)
        }
        #expect(cache.count <= 5)
        #expect(cache.lookUp(Self.key(uid: 2000), now: Self.now) != nil)
    }

    @Test("a live peer is identified from the cache the second time, with the session the full rule gave it")
    func peerFromCache() throws {
        let child = try ConnectingChild(after: "time.sleep(30)")
        let pid = child.pid
        let connection = ccached_accept_cloexec(child.listener)
        #expect(connection >= 0)
        defer { close(connection) }
        let directories = try Directories()
        let cache = RouteCache(watchedDirectories: [directories.sessions, directories.users])
        guard case .identified(let first) = DoorPeer.identify(socket: connection, router: LoginRouter(), cache: cache),
            let key = first.cacheKey
        else {
            Issue.record("the peer was not identified with a key to remember its route by")
            return
        }
        #expect(first.cached == nil)
        #expect(key.uid == getuid() && key.record != nil)
        let entry = Self.entry(uid: getuid())
        let remembered = RouteCache.Entry(session: first.session, account: entry.account, location: entry.location)
        cache.store(remembered, for: key, generation: first.generation, now: Int64(MonotonicClock.microseconds()))
        guard case .identified(let second) = DoorPeer.identify(socket: connection, router: LoginRouter(), cache: cache)
        else {
            Issue.record("the peer was not identified the second time")
            return
        }
        #expect(second.cached != nil)
        #expect(second.session == first.session)
        #expect(second.session == SessionIdentity.of(pid: pid, uid: getuid()))
        #expect(second.pid == pid)
    }

    /// Identifies the peer of `connection` with `cache`, remembering its decision when it was not
    /// from the cache; the peer.
    static func identifyRemembering(_ connection: Int32, cache: RouteCache) -> DoorPeer? {
        guard case .identified(let peer) = DoorPeer.identify(socket: connection, router: LoginRouter(), cache: cache)
        else { return nil }
        if peer.cached == nil, let key = peer.cacheKey {
            let entry = Self.entry(uid: getuid())
            cache.store(
                RouteCache.Entry(session: peer.session, account: entry.account, location: entry.location), for: key,
                generation: peer.generation, now: Int64(MonotonicClock.microseconds()))
        }
        return peer
    }

    @Test("on this kernel a pidfd's inode names its process: the same for two pidfds of it, another for another")
    func pidfsNamesProcesses() throws {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(separator: ".").prefix(2).map { Int($0.prefix { $0.isNumber }) ?? 0 }
        let pidfs = parts.count == 2 && (parts[0], parts[1]) >= (6, 9)
        #expect(RouteCache.pidfsIdentifiesProcesses == pidfs, "kernel \(release)")
    }

    @Test("a process that connected before is known by its pidfd alone, and another process is not")
    func processKnownByPidfd() throws {
        try #require(RouteCache.pidfsIdentifiesProcesses, "pidfs inodes do not name processes on this kernel")
        let directories = try Directories()
        let cache = RouteCache(watchedDirectories: [directories.sessions, directories.users])
        let first = try ConnectingChild(after: "time.sleep(30)")
        let second = try ConnectingChild(after: "time.sleep(30)")
        let a = ccached_accept_cloexec(first.listener)
        let b = ccached_accept_cloexec(second.listener)
        defer { close(a); close(b) }
        let initial = try #require(Self.identifyRemembering(a, cache: cache))
        #expect(initial.cached == nil && !initial.knownProcess)
        #expect(cache.processCount == 1)
        let again = try #require(Self.identifyRemembering(a, cache: cache))
        #expect(again.knownProcess && again.cached != nil)
        #expect(again.session == initial.session && again.cacheKey == initial.cacheKey && again.pid == first.pid)
        // Another process with the same uid, cgroup and audit ids: the decision, read from /proc.
        let other = try #require(Self.identifyRemembering(b, cache: cache))
        #expect(other.cached != nil && !other.knownProcess && other.pid == second.pid)
        #expect(cache.processCount == 2)
        let otherAgain = try #require(Self.identifyRemembering(b, cache: cache))
        #expect(otherAgain.knownProcess && otherAgain.pid == second.pid)
    }

    /// A child that connected, its accepted connection and a cache (watching directories of its
    /// own) that has routed it once by the full rule, so its process is remembered. The connection
    /// and the directories go with it.
    final class RememberedChild {
        let directories: Directories
        let cache: RouteCache
        let child: ConnectingChild
        let connection: Int32
        /// The peer as the full rule identified it.
        let first: DoorPeer

        init() throws {
            try #require(RouteCache.pidfsIdentifiesProcesses, "pidfs inodes do not name processes on this kernel")
            directories = try Directories()
            cache = RouteCache(watchedDirectories: [directories.sessions, directories.users])
            child = try ConnectingChild(after: "time.sleep(30)")
            connection = ccached_accept_cloexec(child.listener)
            first = try #require(RouteCacheTests.identifyRemembering(connection, cache: cache))
            #expect(first.cached == nil && !first.knownProcess)
        }

        deinit { close(connection) }
    }

    @Test("a process that exited is not routed from its entry: its connection is the peer that left")
    func exitedProcessNotKnown() throws {
        let remembered = try RememberedChild()
        defer { withExtendedLifetime(remembered) {} }
        let (child, connection, cache) = (remembered.child, remembered.connection, remembered.cache)
        #expect(try #require(Self.identifyRemembering(connection, cache: cache)).knownProcess)
        kill(child.pid, SIGKILL)
        _ = child.reap()
        guard case .gone = DoorPeer.identify(socket: connection, router: LoginRouter(), cache: cache) else {
            Issue.record("a connection whose process exited was routed")
            return
        }
    }

    @Test("a process's entry answers only its uid, for its lifetime, while its decision and logind's state stand")
    func processEntryBounds() throws {
        let directories = try Directories()
        let cache = RouteCache(
            processLifetimeMicroseconds: 1000, identifiesProcesses: true,
            watchedDirectories: [directories.sessions, directories.users])
        let key = Self.key(uid: 1000)
        let process = RouteCache.Process(uid: 1000, pid: 4242)
        func remember(_ process: RouteCache.Process = process, inode: UInt64 = 77, key: RouteCache.Key = key) {
            let generation = cache.currentGeneration()
            cache.store(Self.entry(uid: key.uid), for: key, generation: generation, now: Self.now)
            cache.remember(process, inode: inode, pidfd: -1, key: key, generation: generation, now: Self.now)
        }
        remember()
        #expect(cache.lookUp(process, proof: .inode(77), now: Self.now)?.key == key)
        // Another process under the same pid (its pidfd names another inode).
        #expect(cache.lookUp(process, proof: .inode(78), now: Self.now) == nil)
        // No pidfd kept (none given): at accept it is not known.
        #expect(cache.lookUp(process, proof: .keptPidfd, now: Self.now) == nil)
        // The same pid under another uid (a setuid exec connects with another SO_PEERCRED uid).
        #expect(cache.lookUp(RouteCache.Process(uid: 1001, pid: 4242), proof: .inode(77), now: Self.now) == nil)
        remember(RouteCache.Process(uid: 1001, pid: 4243), inode: 78, key: key)
        #expect(cache.lookUp(RouteCache.Process(uid: 1001, pid: 4243), proof: .inode(78), now: Self.now) == nil)
        // Its lifetime: /proc is read again after it, though the decision lives on.
        remember()
        #expect(cache.lookUp(process, proof: .inode(77), now: Self.now + 1000) == nil)
        #expect(cache.lookUp(key, now: Self.now + 1000) != nil)
        // A failed hand-off forgets the decision: the process's entry answers nothing.
        remember()
        cache.forget(key)
        #expect(cache.lookUp(process, proof: .inode(77), now: Self.now) == nil)
        // Any change of logind's state.
        remember()
        directories.touch(directories.sessions + "/3")
        #expect(cache.lookUp(process, proof: .inode(77), now: Self.now) == nil)
        #expect(cache.processCount == 0)
        // Where pidfs inodes do not name processes, none is kept.
        let older = RouteCache(
            identifiesProcesses: false, watchedDirectories: [directories.sessions, directories.users])
        older.remember(process, inode: 77, pidfd: -1, key: key, generation: older.currentGeneration(), now: Self.now)
        #expect(older.processCount == 0)
    }

    @Test("at accept a process is known by the cache's own pidfd of it, until that process is gone")
    func processKnownAtAccept() throws {
        let remembered = try RememberedChild()
        defer { withExtendedLifetime(remembered) {} }
        let (child, connection, cache, first) = (
            remembered.child, remembered.connection, remembered.cache, remembered.first
        )
        let credentials = try PeerCredentials(socket: connection)
        let known = try #require(DoorPeer.knownProcess(credentials: credentials, cache: cache))
        #expect(known.session == first.session && known.pid == child.pid && known.cacheKey == first.cacheKey)
        // Another uid with the same pid is another process as far as the cache goes.
        let otherUID = PeerCredentials(pid: credentials.pid, uid: credentials.uid &+ 1, gid: credentials.gid)
        #expect(DoorPeer.knownProcess(credentials: otherUID, cache: cache) == nil)
        // Once the process is gone (reaped: its pid may be anyone's), its pid is not known.
        kill(child.pid, SIGKILL)
        _ = child.reap()
        #expect(DoorPeer.knownProcess(credentials: credentials, cache: cache) == nil)
        #expect(cache.processCount == 0)
    }

    @Test("a pidfd names its process's pid while the process is there, then -1 once it is reaped")
    func pidfdNamesItsPid() throws {
        let child = try ConnectingChild(after: "time.sleep(30)")
        let pidfd = ccached_pidfd_open(child.pid)
        try #require(pidfd >= 0)
        defer { close(pidfd) }
        #expect(ccached_pidfd_pid(pidfd) == child.pid)
        kill(child.pid, SIGKILL)
        // A zombie still holds its pid.
        var info = siginfo_t()
        #expect(waitid(P_PID, id_t(child.pid), &info, WEXITED | WNOWAIT) == 0)
        #expect(ccached_pidfd_pid(pidfd) == child.pid)
        _ = child.reap()
        #expect(ccached_pidfd_pid(pidfd) == -1)
    }

    @Test("the process entries hold at most their limit of pidfds, and give them back when they go or expire")
    func processEntriesBoundPidfds() throws {
        let directories = try Directories()
        let cache = RouteCache(
            identifiesProcesses: true, processLimit: 4, watchedDirectories: [directories.sessions, directories.users])
        let own = ccached_pidfd_open(getpid())
        try #require(own >= 0)
        defer { close(own) }
        let key = Self.key(uid: 1000)
        let generation = cache.currentGeneration()
        cache.store(Self.entry(uid: 1000), for: key, generation: generation, now: Self.now)
        for pid in Int32(1)...10 {
            cache.remember(
                RouteCache.Process(uid: 1000, pid: pid), inode: 1, pidfd: own, key: key, generation: generation,
                now: Self.now)
            #expect(cache.keptPidfdCount == cache.processCount)
        }
        #expect(cache.processCount <= 4 && cache.processCount > 0)
        // The door's sweep: nothing is past its lifetime yet, then everything is.
        let kept = cache.processCount
        cache.removeExpiredProcesses(now: Self.now)
        #expect(cache.processCount == kept)
        cache.removeExpiredProcesses(now: Self.now + cache.processLifetime)
        #expect(cache.processCount == 0 && cache.keptPidfdCount == 0)
        cache.remember(
            RouteCache.Process(uid: 1000, pid: 11), inode: 1, pidfd: own, key: key, generation: generation,
            now: Self.now)
        #expect(cache.keptPidfdCount == 1)
        directories.touch(directories.sessions + "/4")
        _ = cache.currentGeneration()
        #expect(cache.processCount == 0 && cache.keptPidfdCount == 0)
    }

    @Test("routing threads park and are reused: a hundred routings one after another create a few threads")
    func threadsReused() {
        let before = DoorThread.createdCount
        let done = Atomic<Int>(0)
        for round in 1...100 {
            #expect(DoorThread.start(stackSize: 256 << 10) { done.add(1, ordering: .relaxed) } == 0)
            while done.load(ordering: .relaxed) < round { usleep(100) }
            // The thread parks right after its work: give it the moment a real client's next
            // connect takes anyway.
            usleep(2000)
        }
        #expect(DoorThread.createdCount - before <= 3)
    }

    static let isRoot: Bool = {
        if getuid() != 0 { print("RouteCacheTests: SKIPPED, NOT RUN: the hand-off accepts only root peers") }
        return getuid() == 0
    }()

    @Test(
        "a hand-off from the cache that times out closes the client: it is never offered to a daemon again",
        .enabled(if: isRoot))
    func cachedTimeoutNeverRetried() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent(
            "door-cached-timeout-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: run) }
        var configuration = DoorConfiguration(
            socketPath: run.appendingPathComponent("door").path, daemonPath: "/bin/false")
        configuration.runRoot = run.path
        configuration.routingTimeoutMilliseconds = 500
        configuration.daemonStart = .fork
        let door = Door(configuration: configuration, logger: Logger(label: "test"))
        // A "daemon" at root's location that takes every hand-off message and never answers.
        let account = UserAccount(uid: 0, gid: 0, name: "root", home: "/root", groups: [0])
        let location = try SessionDaemonLocation.prepare(
            for: account, session: .perUser, runRoot: run.path)
        try FileManager.default.createDirectory(atPath: location.directory, withIntermediateDirectories: true)
        let messages = Atomic<Int>(0)
        let held = Mutex<[Int32]>([])
        let silent = FakeDaemon(path: location.handoffSocket) { _, fd in
            messages.add(1, ordering: .relaxed)
            if fd >= 0 { held.withLock { $0.append(fd) } }
            return .silence
        }
        defer {
            silent.stop()
            for fd in held.withLock({ $0 }) { close(fd) }
        }
        // A client: a live process of root's, connected to a socket of the test's.
        let child = try ConnectingChild(after: "time.sleep(30)")
        let pid = child.pid
        let connection = ccached_accept_cloexec(child.listener)
        #expect(connection >= 0)
        // Its route, remembered as the door would after a first hand-off.
        guard case .identified(let peer) = DoorPeer.identify(socket: connection, router: LoginRouter(), cache: nil),
            let key = DoorPeer.cacheKey(pid: pid, uid: 0)
        else {
            Issue.record("the client was not identified")
            close(connection)
            return
        }
        door.routes.store(
            RouteCache.Entry(session: peer.session, account: account, location: location), for: key,
            generation: door.routes.currentGeneration(), now: Int64(MonotonicClock.microseconds()))
        door.route(connection)  // closes it
        #expect(messages.load(ordering: .relaxed) == 1)
        #expect(door.droppedCount == 1 && door.handedOffCount == 0)
        #expect(door.routes.lookUp(key, now: Int64(MonotonicClock.microseconds())) == nil)
    }
}
