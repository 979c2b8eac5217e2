import CSupport
import Glibc
import SessionRuntime
import SystemCalls

/// Who connected to the door and which session it belongs to, established without a pid race.
///
/// `SO_PEERCRED` gives the uid and gid the kernel recorded at `connect` (for a setuid program: its
/// effective ids at that moment); those cannot be wrong. The session, however, is read from
/// `/proc/PID` and logind *by pid*, and a pid can be reused once its process has exited and been
/// reaped. So the door also takes `SO_PEERPIDFD`, a pidfd for the very process that connected,
/// and checks in this order:
///
/// 1. the pidfd names the pid SO_PEERCRED gave (`/proc/self/fdinfo`, `Pid:`);
/// 2. it reads what logind and `/proc` say about that pid and routes it
///    (``SessionIdentity/of(pid:uid:router:logind:)``, ``LoginRouter``);
/// 3. `pidfd_send_signal(pidfd, 0)` still succeeds and the pidfd still names that pid.
///
/// A pid is only reused after its process is reaped, and a pidfd's signal fails with ESRCH from
/// the reaping on; so success in step 3 proves the process was still the pid's owner throughout
/// step 2, and what was read is its session. Any failure means the peer left before it could be
/// routed: the door closes the connection having started nothing.
///
/// A process whose key `/proc` gave a moment ago (``RouteCache``, "Per process") is known by its
/// pidfd's pidfs inode instead: the pidfd SO_PEERPIDFD gives is the kernel's record of the very
/// process that connected, so nothing is read by pid and steps 1 and 2 have nothing to prove;
/// step 3's signal still shows the peer has not left. At accept, the accept thread knows such a
/// process with less still: the cache's own pidfd of it still signals, so it has held its pid since
/// before this connection was made (``knownProcess(credentials:cache:)``, ``RouteCache/Proof``).
package struct DoorPeer: Sendable, CustomStringConvertible {
    package let pid: Int32
    package let uid: UInt32
    package let gid: UInt32
    package let session: SessionIdentity
    /// What cannot be forged about the peer, when the door may remember its route (``RouteCache``).
    var cacheKey: RouteCache.Key?
    /// The logind generation the session was found in (store a decision under it).
    var generation: UInt64 = 0
    /// The remembered decision, when the session came from the cache.
    var cached: RouteCache.Entry?
    /// Whether the process was known by its pidfd alone (no `/proc` read).
    var knownProcess = false

    package init(pid: Int32, uid: UInt32, gid: UInt32, session: SessionIdentity) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.session = session
    }

    /// What happened when identifying a peer.
    package enum Outcome: Sendable {
        case identified(DoorPeer)
        /// The peer exited (or its pid could not be tied to it) before it was routed.
        case gone
        case failed(DoorError)
    }

    /// Identifies the peer of an accepted connection and routes it by ``LoginRouter``'s rule.
    /// Reads nothing from the connection.
    ///
    /// With a `cache`, a decision made for a peer with the same uid, cgroup, audit session and
    /// login uid in the same logind state is taken from it (``RouteCache``): the pidfd checks are
    /// the same, only logind and the rule are not asked again.
    package static func identify(socket fd: Int32, router: LoginRouter = LoginRouter()) -> Outcome {
        identify(socket: fd, router: router, cache: nil)
    }

    /// `credentials` are the socket's SO_PEERCRED when the caller has read them already (the door
    /// reads them once, at accept, for its per-user bound); nil reads them here.
    static func identify(
        socket fd: Int32, credentials: PeerCredentials? = nil, router: LoginRouter, cache: RouteCache?
    ) -> Outcome {
        let recorded: PeerCredentials
        if let credentials {
            recorded = credentials
        } else {
            do throws(Errno) {
                recorded = try PeerCredentials(socket: fd)
            } catch {
                return .failed(.system(operation: "getsockopt(SO_PEERCRED)", errno: error))
            }
        }
        let (pid, uid, gid) = (recorded.pid, recorded.uid, recorded.gid)
        // The door itself never is a client: a connection from its own pid can only come from a
        // link that led one of its own connects back to its listening socket (issue 24, item 5).
        guard pid != ownPID else { return .failed(.selfConnection) }
        // What is known about a process the door cannot tie to the connection: only its uid. It gets
        // its user's primary login (rule 3), never another user's daemon (the uid is exact).
        func unseen() -> Outcome {
            let key = RouteCache.Key(uid: uid, record: nil)
            if let cache, let entry = cache.lookUp(key, now: Int64(MonotonicClock.microseconds())) {
                var peer = DoorPeer(pid: pid, uid: uid, gid: gid, session: entry.session)
                peer.cacheKey = key
                peer.cached = entry
                return .identified(peer)
            }
            let generation = cache?.currentGeneration() ?? 0
            let route = router.route(uid: uid, process: .unseen, logind: SystemLogind())
            var peer = DoorPeer(pid: pid, uid: uid, gid: gid, session: SessionIdentity(route: route))
            peer.cacheKey = cache == nil ? nil : key
            peer.generation = generation
            return .identified(peer)
        }
        // A peer in a pid namespace we cannot see has pid 0.
        guard pid > 0 else { return unseen() }
        let pidfd = ccached_peer_pidfd(fd)
        guard pidfd >= 0 else {
            let code = errno
            // Kernels before 6.5 have no SO_PEERPIDFD. Without it what /proc says cannot be tied to
            // the process that connected, so it is not read at all.
            if code == ENOPROTOOPT || code == EINVAL || code == EOPNOTSUPP { return unseen() }
            return .gone
        }
        defer { close(pidfd) }
        // A process that connected a moment ago: its key without reading /proc.
        let process = RouteCache.Process(uid: uid, pid: pid)
        var inode: UInt64 = 0
        if let cache, cache.identifiesProcesses { inode = UInt64(ccached_pidfd_inode(pidfd)) }
        if let cache, inode != 0,
            let (key, entry) = cache.lookUp(process, proof: .inode(inode), now: Int64(MonotonicClock.microseconds()))
        {
            guard ccached_pidfd_send_signal(pidfd, 0) == 0 else { return .gone }
            var peer = DoorPeer(pid: pid, uid: uid, gid: gid, session: entry.session)
            peer.cacheKey = key
            peer.cached = entry
            peer.knownProcess = true
            return .identified(peer)
        }
        let named = ccached_pidfd_pid(pidfd)
        if named == 0 { return unseen() }
        guard named == pid else { return .gone }
        // Every check below ends with the pidfd's: what was read belongs to the peer.
        func stillThePeer() -> Bool { ccached_pidfd_send_signal(pidfd, 0) == 0 && ccached_pidfd_pid(pidfd) == pid }
        // What the rule decides from is read once; the cache is keyed by exactly that.
        let readIn = inode == 0 ? 0 : cache?.currentGeneration() ?? 0
        let record = ProcessRecord.read(pid: pid)
        let key = record.map { RouteCache.Key(uid: uid, record: $0) }
        // Once the pidfd has shown the texts are the peer's: the process's key, for its next connect.
        func rememberProcess() {
            guard let cache, inode != 0, let key else { return }
            cache.remember(
                process, inode: inode, pidfd: pidfd, key: key, generation: readIn,
                now: Int64(MonotonicClock.microseconds()))
        }
        if let cache, let key, let entry = cache.lookUp(key, now: Int64(MonotonicClock.microseconds())) {
            guard stillThePeer() else { return .gone }
            rememberProcess()
            var peer = DoorPeer(pid: pid, uid: uid, gid: gid, session: entry.session)
            peer.cacheKey = key
            peer.cached = entry
            return .identified(peer)
        }
        let generation = cache?.currentGeneration() ?? 0
        let seen = record.map { PeerProcess(record: $0, uid: uid) } ?? .unseen
        let session = SessionIdentity(route: router.route(uid: uid, process: seen, logind: SystemLogind()))
        guard stillThePeer() else { return .gone }
        rememberProcess()
        var peer = DoorPeer(pid: pid, uid: uid, gid: gid, session: session)
        if cache != nil, let key {
            peer.cacheKey = key
            peer.generation = generation
        }
        return .identified(peer)
    }

    /// The peer of a connection being accepted now, when ``RouteCache`` knows its process
    /// ("Per process") and the process still holds its pid; nil otherwise (then
    /// ``identify(socket:credentials:router:cache:)`` decides). What the accept thread asks, and
    /// only it, at accept (the proof rests on accept order): one pidfd_send_signal on the cache's
    /// own pidfd, no SO_PEERPIDFD, no `/proc`, no logind.
    static func knownProcess(credentials: PeerCredentials, cache: RouteCache) -> DoorPeer? {
        let (pid, uid, gid) = (credentials.pid, credentials.uid, credentials.gid)
        guard cache.identifiesProcesses, pid > 0, pid != ownPID,
            let (key, entry) = cache.lookUp(
                RouteCache.Process(uid: uid, pid: pid), proof: .keptPidfd, now: Int64(MonotonicClock.microseconds()))
        else { return nil }
        var peer = DoorPeer(pid: pid, uid: uid, gid: gid, session: entry.session)
        peer.cacheKey = key
        peer.cached = entry
        peer.knownProcess = true
        return peer
    }

    /// The door's own pid, read once.
    static let ownPID = getpid()

    /// The peer's cache key from `/proc/PID` (the caller checks the pidfd afterwards), or nil when
    /// a file cannot be read.
    static func cacheKey(pid: Int32, uid: UInt32) -> RouteCache.Key? {
        ProcessRecord.read(pid: pid).map { RouteCache.Key(uid: uid, record: $0) }
    }

    package var description: String { "pid \(pid) uid \(uid) session \(session)" }
}
