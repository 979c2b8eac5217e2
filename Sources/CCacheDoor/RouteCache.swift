import CSupport
import Glibc
import SessionRuntime
import Synchronization
import SystemCalls

/// The door's memory of routing decisions, so that a connection from a process like one routed a
/// moment ago costs no logind, NSS or directory work (Docs/performance.md, "The door's path";
/// Docs/security.md, "The door's routing cache").
///
/// A decision of ``LoginRouter`` is a function of the peer's uid, of what `/proc` says about the
/// peer (its cgroup, audit session id and login uid: all that ``PeerProcess/read(pid:uid:)`` looks
/// at) and of logind's state. So the key is that: the uid from SO_PEERCRED and the exact text of
/// `/proc/PID/cgroup`, `sessionid` and `loginuid`, read while the peer's pidfd proves the pid is
/// still the process that connected. A process cannot forge these: it cannot move itself into a
/// session scope it is not in (that takes write access to `user-UID.slice`, root's), nor change its
/// audit session or login uid (CAP_AUDIT_CONTROL). Whatever a user can do to its own processes
/// yields a key the full rule would route the same way.
///
/// The state of logind is what changes: every entry belongs to a generation, and the generation
/// moves on whenever anything happens in `/run/systemd/sessions` or `/run/systemd/users` (an
/// inotify watch; logind rewrites those files by rename on every change of a session or user), and
/// whenever those directories cannot be watched yet. An entry also ends after ``lifetime``
/// (the passwd entry and the daemon's directory it carries are that old at most), and when a
/// hand-off through it fails (no daemon there: the door then routes by the full rule; any other
/// failure closes the connection, as the full path does). The cache is bounded per uid and overall,
/// so no user can grow it.
///
/// **Per process.** Most connections come from a process that connected a moment ago (MIT opens a
/// connection per ccache handle), and reading `/proc` for the key is most of a cache hit's cost. So
/// the cache also remembers, per ``Process`` (the uid and pid SO_PEERCRED recorded), the key
/// `/proc` gave for that process, with the inode of its pidfd and a pidfd of its own, kept open. A
/// later connection of the same process proves it is that process in one of two ways (``Proof``):
/// - **by inode**, where the caller holds the peer's own pidfd (a routing thread, which took it
///   from SO_PEERPIDFD): on pidfs (Linux 6.9+, 64-bit) a pidfd's inode number is an id of its
///   process that is never given to another process;
/// - **by the kept pidfd**, for the accept thread, at accept: `pidfd_send_signal(kept, 0)` still
///   succeeds. The remembered process then has held the pid without a break from its own connect
///   (before the connection that made the entry was accepted) until now; the listening socket
///   hands connections out in the order they were made, so the connection being accepted now was
///   made after that one, inside that span, by the holder of the pid: the remembered process. One
///   system call, where SO_PEERPIDFD, fstat and close cost about 4 µs here. A pid SO_PEERCRED
///   gives can be a reused number (the kernel keeps the connector's pid, not its process), which
///   is why this proof holds only at accept, in accept order: a routing thread, which may route a
///   connection after later ones, proves by inode.
///
/// What the key holds can change during a process's life only this way:
/// - the uid: a setuid program's or `setuid()`'s connections carry another SO_PEERCRED uid, which
///   is in ``Process``, so they never meet the entry;
/// - the login uid and audit session: written once by pam_loginuid for a login's first process;
///   changing them takes CAP_AUDIT_CONTROL (root's processes, and then still root's uid);
/// - the cgroup: the process can be moved (`systemd-run --scope` moves itself into a new scope
///   before it execs; only systemd or root can, as a user cannot write to `user-UID.slice`). A
///   moved process is still the same uid's, and the decision answered is the one the full rule
///   made for this very process at most ``processLifetime`` ago (1 s): an entry is not renewed
///   by its hits, only by reading `/proc` again.
/// A process entry also ends with logind's generation (like every entry), and answers only while
/// the decision it points to is there: a failed hand-off's ``forget(_:)`` ends both. Where pidfs
/// inodes do not name processes (older kernels, 32-bit), ``identifiesProcesses`` is false, checked
/// once (``pidfsIdentifiesProcesses``), and every connection reads `/proc` as before. The kept
/// pidfds are bounded with the entries (``processLimit`` overall).
final class RouteCache: Sendable {
    /// What cannot be forged about a peer.
    struct Key: Hashable, Sendable {
        let uid: UInt32
        /// What `/proc` said of the peer's process; nil for a peer whose process the door cannot
        /// tie to the connection (the rule then knows only the uid).
        let record: ProcessRecord?
    }

    /// A process as its socket recorded it: SO_PEERCRED's uid and pid.
    struct Process: Hashable, Sendable {
        let uid: UInt32
        let pid: Int32
    }

    /// How a connection shows that its process is the one a process entry remembers.
    enum Proof: Sendable {
        /// The inode of the peer's own pidfd (SO_PEERPIDFD): pidfs names a process by it.
        case inode(UInt64)
        /// The remembered process still holds its pid (its kept pidfd can be signalled). Only for
        /// a connection being accepted now, by the thread that accepts (see "Per process" above).
        case keptPidfd
    }

    /// A decision: the session, the account and the daemon's location the full path found.
    struct Entry: Sendable {
        let session: SessionIdentity
        let account: UserAccount
        let location: SessionDaemonLocation
    }

    private struct Stored {
        let entry: Entry
        let generation: UInt64
        let expires: Int64
    }

    /// The key `/proc` gave for a process, and what names that process.
    private struct Seen {
        let key: Key
        let generation: UInt64
        let expires: Int64
        /// Its pidfd's inode (pidfs).
        let inode: UInt64
        /// A pidfd of the process, the cache's own (closed when the entry goes); -1 for none.
        let pidfd: Int32
    }

    private struct State {
        var entries: [Key: Stored] = [:]
        var perUser: [UInt32: Int] = [:]
        var processes: [Process: Seen] = [:]
        var processesPerUser: [UInt32: Int] = [:]
        var generation: UInt64 = 1
        /// Whether every directory (or its nearest existing ancestor) is watched; until then every
        /// lookup moves the generation on.
        var watching = false
        /// The watch descriptors, and whether each is one of the directories itself (not an ancestor).
        var watches: [Int32: Bool] = [:]
    }

    /// How long an entry lives at most, in microseconds.
    let lifetime: Int64
    /// How long a process's key is answered without reading `/proc` again, in microseconds.
    let processLifetime: Int64
    /// Whether a pidfd's inode names its process (pidfs): false keeps no process entries.
    let identifiesProcesses: Bool
    let perUserLimit: Int
    let overallLimit: Int
    /// How many process entries (each with a pidfd held open) are kept at most.
    let processLimit: Int
    /// The directories whose changes end every entry (logind's state).
    let watchedDirectories: [String]
    private let state = Mutex<State>(State())
    /// An inotify descriptor (non-blocking), or -1 when there is none: then nothing is cached.
    private let events: Int32

    init(
        lifetimeMicroseconds: Int64 = 10_000_000, processLifetimeMicroseconds: Int64 = 1_000_000,
        identifiesProcesses: Bool = RouteCache.pidfsIdentifiesProcesses, perUserLimit: Int = 64,
        overallLimit: Int = 4096, processLimit: Int = 1024,
        watchedDirectories: [String] = ["/run/systemd/sessions", "/run/systemd/users"]
    ) {
        self.lifetime = lifetimeMicroseconds
        self.processLifetime = processLifetimeMicroseconds
        self.identifiesProcesses = identifiesProcesses
        self.perUserLimit = perUserLimit
        self.overallLimit = overallLimit
        self.processLimit = processLimit
        self.watchedDirectories = watchedDirectories
        events = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    }

    deinit {
        if events >= 0 { close(events) }
        state.withLock { Self.removeAllProcesses(from: &$0) }
    }

    /// The generation now: call before computing a decision, and store the decision under it.
    /// Reads the watch's events first (one read when nothing happened).
    func currentGeneration() -> UInt64 {
        guard events >= 0 else { return 0 }
        return state.withLock { state in
            Self.drain(events, into: &state, directories: watchedDirectories)
            return state.generation
        }
    }

    /// The decision for `key`, if one of the current generation is there and not expired.
    func lookUp(_ key: Key, now: Int64) -> Entry? {
        guard events >= 0 else { return nil }
        return state.withLock { state -> Entry? in
            Self.drain(events, into: &state, directories: watchedDirectories)
            guard let stored = state.entries[key] else { return nil }
            guard stored.generation == state.generation, stored.expires > now else {
                Self.remove(key, from: &state)
                return nil
            }
            return stored.entry
        }
    }

    /// The key and decision for a process whose key `/proc` gave at most ``processLifetime`` ago,
    /// if `proof` shows the connection's process is the one remembered and that decision is still
    /// there (``lookUp(_:now:)``).
    func lookUp(_ process: Process, proof: Proof, now: Int64) -> (key: Key, entry: Entry)? {
        guard events >= 0, identifiesProcesses else { return nil }
        return state.withLock { state -> (key: Key, entry: Entry)? in
            Self.drain(events, into: &state, directories: watchedDirectories)
            guard let seen = state.processes[process] else { return nil }
            guard seen.generation == state.generation, seen.expires > now else {
                Self.remove(process, from: &state)
                return nil
            }
            switch proof {
            case .inode(let inode):
                guard inode != 0, inode == seen.inode else { return nil }
            case .keptPidfd:
                // Under the lock: the descriptor cannot be closed (and its number reused) meanwhile.
                guard seen.pidfd >= 0, ccached_pidfd_send_signal(seen.pidfd, 0) == 0 else {
                    Self.remove(process, from: &state)
                    return nil
                }
            }
            guard let stored = state.entries[seen.key] else { return nil }
            guard stored.generation == state.generation, stored.expires > now else {
                Self.remove(seen.key, from: &state)
                return nil
            }
            return (seen.key, stored.entry)
        }
    }

    /// Remembers that `/proc` gave `key` for `process`, read in `generation` (from
    /// ``currentGeneration()`` before it was read) while the process's pidfd, `pidfd` (of inode
    /// `inode`), proved it was the peer. The cache keeps a duplicate of `pidfd`; the caller keeps
    /// its own.
    func remember(_ process: Process, inode: UInt64, pidfd: Int32, key: Key, generation: UInt64, now: Int64) {
        guard events >= 0, identifiesProcesses, generation != 0, process.uid == key.uid else { return }
        state.withLock { state in
            Self.drain(events, into: &state, directories: watchedDirectories)
            guard generation == state.generation else { return }
            if state.processes[process] == nil {
                // A uid's processes share four times its share of decisions; a full cache starts over.
                if state.processesPerUser[process.uid, default: 0] >= 4 * perUserLimit {
                    for other in state.processes.keys where other.uid == process.uid {
                        Self.remove(other, from: &state)
                    }
                }
                if state.processes.count >= processLimit { Self.removeAllProcesses(from: &state) }
            } else {
                Self.remove(process, from: &state)
            }
            state.processesPerUser[process.uid, default: 0] += 1
            let kept = pidfd >= 0 ? fcntl(pidfd, F_DUPFD_CLOEXEC, 0) : -1
            state.processes[process] = Seen(
                key: key, generation: generation, expires: now + processLifetime, inode: inode, pidfd: kept)
        }
    }

    /// Ends every process entry past its lifetime, closing its pidfd: a process that connected
    /// once and went is not held (as a pidfd) for longer than the door's sweep takes to come round.
    func removeExpiredProcesses(now: Int64) {
        state.withLock { state in
            for (process, seen) in state.processes where seen.expires <= now { Self.remove(process, from: &state) }
        }
    }

    /// Remembers a decision computed in `generation` (from ``currentGeneration()`` before it was
    /// computed); one of an older generation is not kept.
    func store(_ entry: Entry, for key: Key, generation: UInt64, now: Int64) {
        guard events >= 0, generation != 0 else { return }
        state.withLock { state in
            Self.drain(events, into: &state, directories: watchedDirectories)
            guard generation == state.generation else { return }
            if state.entries[key] == nil {
                if state.perUser[key.uid, default: 0] >= perUserLimit {
                    for other in state.entries.keys where other.uid == key.uid { Self.remove(other, from: &state) }
                }
                if state.entries.count >= overallLimit {
                    state.entries.removeAll()
                    state.perUser.removeAll()
                }
                state.perUser[key.uid, default: 0] += 1
            }
            state.entries[key] = Stored(entry: entry, generation: generation, expires: now + lifetime)
        }
    }

    /// Forgets the decision for `key` (its hand-off failed).
    func forget(_ key: Key) {
        state.withLock { Self.remove(key, from: &$0) }
    }

    /// How many decisions are kept now.
    var count: Int { state.withLock { $0.entries.count } }

    /// How many processes' keys are kept now.
    var processCount: Int { state.withLock { $0.processes.count } }

    /// How many pidfds the process entries hold open now.
    var keptPidfdCount: Int { state.withLock { $0.processes.values.filter { $0.pidfd >= 0 }.count } }

    /// Whether a pidfd's inode number names its process here, checked once: pidfds live on pidfs
    /// (Linux 6.9+; before, every pidfd had one anonymous inode), inode numbers are 64 bits wide
    /// (pidfs numbers processes from a 64-bit counter and never reuses a number; on 32-bit it
    /// may), two pidfds of this process have the same inode and one of another process another.
    static let pidfsIdentifiesProcesses: Bool = {
        guard MemoryLayout<ino_t>.size == 8 else { return false }
        let own = ccached_pidfd_open(getpid())
        guard own >= 0 else { return false }
        defer { close(own) }
        let again = ccached_pidfd_open(getpid())
        guard again >= 0 else { return false }
        defer { close(again) }
        let inode = ccached_pidfd_inode(own)
        guard ccached_pidfd_on_pidfs(own) == 1, inode != 0, ccached_pidfd_inode(again) == inode else { return false }
        // Another process: the parent, or init when the parent is outside this pid namespace.
        let otherPID = getppid() > 0 ? getppid() : 1
        guard otherPID != getpid() else { return true }
        let other = ccached_pidfd_open(otherPID)
        guard other >= 0 else { return false }
        defer { close(other) }
        let otherInode = ccached_pidfd_inode(other)
        return otherInode != 0 && otherInode != inode
    }()

    private static func remove(_ process: Process, from state: inout State) {
        guard let seen = state.processes.removeValue(forKey: process) else { return }
        if seen.pidfd >= 0 { close(seen.pidfd) }
        let left = state.processesPerUser[process.uid, default: 1] - 1
        state.processesPerUser[process.uid] = left > 0 ? left : nil
    }

    private static func removeAllProcesses(from state: inout State) {
        for seen in state.processes.values where seen.pidfd >= 0 { close(seen.pidfd) }
        state.processes.removeAll()
        state.processesPerUser.removeAll()
    }

    private static func remove(_ key: Key, from state: inout State) {
        guard state.entries.removeValue(forKey: key) != nil else { return }
        let left = state.perUser[key.uid, default: 1] - 1
        state.perUser[key.uid] = left > 0 ? left : nil
    }

    /// Reads every pending event; any event, an overflow, or directories not watched move the
    /// generation on and drop every entry.
    private static func drain(_ events: Int32, into state: inout State, directories: [String]) {
        var changed = false
        if !state.watching {
            rewatch(events, &state, directories: directories)
            changed = true
        }
        // On the stack: every lookup reads once, and nearly always finds nothing.
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 8) { buffer in
            while true {
                let count = try? retryingInterrupts { read(events, buffer.baseAddress, buffer.count) }
                guard let count, count > 0 else { break }
                changed = true
                var offset = 0
                while offset + 16 <= count {
                    let wd = buffer.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                    let mask = buffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let length = buffer.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)
                    offset += 16 + Int(length)
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                        state.watching = false
                        continue
                    }
                    guard let isTarget = state.watches[wd] else { continue }
                    // A watched directory went (logind restarted, /run remounted), or one that was
                    // missing may have appeared below a watched ancestor: watch again.
                    if mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) != 0
                        || (!isTarget && mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0)
                    {
                        state.watching = false
                    }
                }
            }
        }
        if !state.watching { rewatch(events, &state, directories: directories) }
        if changed {
            state.generation &+= 1
            if state.generation == 0 { state.generation = 1 }
            state.entries.removeAll()
            state.perUser.removeAll()
            removeAllProcesses(from: &state)
        }
    }

    /// Watches each directory, or while it does not exist its nearest ancestor that does (where
    /// it would appear: logind not started yet, a system without logind).
    private static func rewatch(_ events: Int32, _ state: inout State, directories: [String]) {
        for wd in state.watches.keys { inotify_rm_watch(events, wd) }
        state.watches = [:]
        let mask = UInt32(
            IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF
                | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
        var all = true
        for directory in directories {
            var path = directory
            var watched = false
            while true {
                let wd = inotify_add_watch(events, path, mask)
                if wd >= 0 {
                    state.watches[wd] = (state.watches[wd] ?? false) || path == directory
                    watched = true
                    break
                }
                guard errno == ENOENT, let slash = path.lastIndex(of: "/"), path != "/" else { break }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
            all = all && watched
        }
        state.watching = all
    }
}
