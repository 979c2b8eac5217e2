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
final class RouteCache: Sendable {
    /// What cannot be forged about a peer.
    struct Key: Hashable, Sendable {
        let uid: UInt32
        /// What `/proc` said of the peer's process; nil for a peer whose process the door cannot
        /// tie to the connection (the rule then knows only the uid).
        let record: ProcessRecord?
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

    private struct State {
        var entries: [Key: Stored] = [:]
        var perUser: [UInt32: Int] = [:]
        var generation: UInt64 = 1
        /// Whether every directory (or its nearest existing ancestor) is watched; until then every
        /// lookup moves the generation on.
        var watching = false
        /// The watch descriptors, and whether each is one of the directories itself (not an ancestor).
        var watches: [Int32: Bool] = [:]
    }

    /// How long an entry lives at most, in microseconds.
    let lifetime: Int64
    let perUserLimit: Int
    let overallLimit: Int
    /// The directories whose changes end every entry (logind's state).
    let watchedDirectories: [String]
    private let state = Mutex<State>(State())
    /// An inotify descriptor (non-blocking), or -1 when there is none: then nothing is cached.
    private let events: Int32

    init(
        lifetimeMicroseconds: Int64 = 10_000_000, perUserLimit: Int = 64, overallLimit: Int = 4096,
        watchedDirectories: [String] = ["/run/systemd/sessions", "/run/systemd/users"]
    ) {
        self.lifetime = lifetimeMicroseconds
        self.perUserLimit = perUserLimit
        self.overallLimit = overallLimit
        self.watchedDirectories = watchedDirectories
        events = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    }

    deinit { if events >= 0 { close(events) } }

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
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try? retryingInterrupts {
                buffer.withUnsafeMutableBytes { read(events, $0.baseAddress, $0.count) }
            }
            guard let count, count > 0 else { break }
            changed = true
            var offset = 0
            while offset + 16 <= count {
                let (wd, mask, length) = buffer.withUnsafeBytes {
                    (
                        $0.loadUnaligned(fromByteOffset: offset, as: Int32.self),
                        $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                        $0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)
                    )
                }
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
        if !state.watching { rewatch(events, &state, directories: directories) }
        if changed {
            state.generation &+= 1
            if state.generation == 0 { state.generation = 1 }
            state.entries.removeAll()
            state.perUser.removeAll()
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
