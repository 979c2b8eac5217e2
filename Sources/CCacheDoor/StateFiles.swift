import CStateFile
import Glibc
import SystemCalls
import SessionRuntime
import Synchronization

/// The state files of the session daemons the door started or recovered (Docs/state.md, "The
/// door's part"): one memfd per (uid, session), which the door holds but never maps, reads or
/// writes. It looks only at the file's size (`fstat`) and at whether a daemon holds it
/// (`F_OFD_GETLK`: a daemon locks its own open file description of the file for as long as it uses
/// it).
///
/// - A daemon the door starts gets a new open file description of the session's file (so that the
///   daemon's lock is not the door's): inherited as `--state-fd 4`, or sent over the hand-off
///   socket (``HandoffMessage/stateFile``).
/// - A file that is not empty and that no daemon holds is one a daemon died with (SIGKILL, a crash,
///   the OOM killer): the next daemon of that session gets it and restores it.
/// - An empty file nobody holds is one a daemon wiped at a normal end: ``sweep(ended:)`` closes it.
/// - A file a daemon died with whose session has ended (logout, the job's end) is emptied and
///   closed by ``sweep(ended:)``: the tickets of an ended session are not kept for a daemon that
///   will never come.
/// - A file still held when a new daemon must start (the old one is still ending) is waited for
///   briefly and otherwise left to it: the new daemon gets a new file. Never two daemons on one file
///   (the daemon refuses a file another description holds locked, too).
package final class StateFiles: Sendable {
    private struct State {
        /// The door's own descriptor of each session's file.
        var files: [StartGate.Key: Int32] = [:]
        /// Sessions whose daemon the door asked for its file already (after a door restart).
        var asked: Set<StartGate.Key> = []
        /// What ends each session, where the door knows it: a file whose daemon died is let go
        /// once its session ended (``sweep(ended:)``).
        var lifetimes: [StartGate.Key: DaemonLifetime] = [:]

        mutating func remove(_ key: StartGate.Key) -> Int32? {
            asked.remove(key)
            lifetimes[key] = nil
            return files.removeValue(forKey: key)
        }
    }

    private let state = Mutex<State>(State())
    /// Files held for one uid at most: a user who kills daemon after daemon of ever new sessions
    /// (jobs) cannot make the door hold descriptors without end. Past it, the files of that uid's
    /// daemons that died (no daemon holds them) go first.
    package let maximumPerUser: Int

    package init(maximumPerUser: Int = 32) {
        self.maximumPerUser = max(1, maximumPerUser)
    }

    /// How many files the door holds.
    package var count: Int { state.withLock { $0.files.count } }

    /// What ``prepare(for:waitMilliseconds:)`` found.
    package enum Preparation: Equatable, Sendable {
        /// A new, empty file.
        case new
        /// The file a daemon of this session died with (its size in bytes): the new daemon restores it.
        case crashed(bytes: Int)
        /// The session's file is still held by a daemon that has not ended: a new file instead.
        case stillHeld
    }

    /// The file for a daemon about to start for `key` (called under the session's start gate): the
    /// door's own descriptor (`own`), which the caller gives back with ``keep(_:for:)`` once the
    /// daemon took its copy (not before: ``sweep()`` would take a new file nobody holds yet for an
    /// ended one), and a new open file description of it (`copy`) to hand over and then close. Nil,
    /// errno set, when no memfd can be made (a file a daemon died with is kept then).
    package func prepare(for key: StartGate.Key, waitMilliseconds: Int32 = 2000)
        -> (own: Int32, copy: Int32, preparation: Preparation)?
    {
        let held = state.withLock { state -> Int32? in
            // Not asked of the daemon being started: it gets this file (a connection routed while it
            // starts would otherwise ask it for a file the door is about to keep).
            state.asked.insert(key)
            state.lifetimes[key] = nil
            return state.files.removeValue(forKey: key)
        }
        var preparation = Preparation.new
        var file: Int32 = -1
        if let held {
            let deadline = Int64(MonotonicClock.milliseconds()) + Int64(waitMilliseconds)
            while ccached_state_in_use(held) == 1 && Int64(MonotonicClock.milliseconds()) < deadline { usleep(20_000) }
            let size = Self.size(of: held)
            if ccached_state_in_use(held) != 0 {
                preparation = .stillHeld
                close(held)
            } else if size > 0 {
                preparation = .crashed(bytes: size)
                file = held
            } else {
                close(held)
            }
        }
        if file < 0 {
            file = ccached_state_memfd_create("ccached-state")
            guard file >= 0 else { return nil }
        }
        let copy = ccached_state_reopen(file)
        guard copy >= 0 else {
            let code = errno
            if case .crashed = preparation { keep(file, for: key) } else { close(file) }
            errno = code
            return nil
        }
        return (file, copy, preparation)
    }

    /// Keeps `file` as `key`'s (closing one held already); `lifetime` says what ends the session.
    package func keep(_ file: Int32, for key: StartGate.Key, lifetime: DaemonLifetime? = nil) {
        let dropped = state.withLock { state -> [Int32] in
            state.asked.insert(key)
            state.lifetimes[key] = lifetime
            var dropped: [Int32] = []
            if let replaced = state.files[key], replaced != file { dropped.append(replaced) }
            state.files[key] = file
            return dropped + Self.trim(&state, uid: key.uid, keeping: key, to: maximumPerUser)
        }
        for fd in dropped { close(fd) }
    }

    /// Removes files of `uid` no daemon holds (never `keeping`'s) until at most `limit` remain;
    /// returns them to be closed.
    private static func trim(_ state: inout State, uid: UInt32, keeping: StartGate.Key, to limit: Int) -> [Int32] {
        let mine = state.files.keys.filter { $0.uid == uid }
        guard mine.count > limit else { return [] }
        var dropped: [Int32] = []
        var count = mine.count
        for key in mine where key != keeping && count > limit {
            guard let fd = state.files[key], ccached_state_in_use(fd) == 0 else { continue }
            _ = state.remove(key)
            dropped.append(fd)
            count -= 1
        }
        return dropped
    }

    /// Whether the door should ask `key`'s running daemon for its state file: it holds none for it
    /// and has not asked yet (after a door restart, at the first hand-off to each daemon). Marks it
    /// asked.
    package func shouldAsk(for key: StartGate.Key) -> Bool {
        state.withLock { state in
            guard state.files[key] == nil else { return false }
            return state.asked.insert(key).inserted
        }
    }

    /// Makes ``shouldAsk(for:)`` true again for `key` (the daemon did not answer).
    package func forgetAsked(_ key: StartGate.Key) {
        _ = state.withLock { $0.asked.remove(key) }
    }

    /// Takes a state file `key`'s running daemon sent (``HandoffMessage/stateFileCopy``): only a
    /// memfd, which the door keeps as a new open file description of its own (the daemon's lock
    /// stays the daemon's). Closes `received` in every case; false when it is refused.
    @discardableResult
    package func adopt(_ received: Int32, for key: StartGate.Key, lifetime: DaemonLifetime? = nil) -> Bool {
        defer { close(received) }
        // What a user's daemon sends is looked at, never read: only a memfd is reopened.
        var info = stat()
        guard fstat(received, &info) == 0,
            Self.looksLikeStateFile(
                mode: info.st_mode, links: UInt64(info.st_nlink), memfdLink: ccached_state_is_memfd(received) == 1)
        else { return false }
        let own = ccached_state_reopen(received)
        guard own >= 0 else { return false }
        let (kept, dropped) = state.withLock { state -> (Bool, [Int32]) in
            guard state.files[key] == nil else { return (false, []) }
            state.files[key] = own
            state.lifetimes[key] = lifetime
            return (true, Self.trim(&state, uid: key.uid, keeping: key, to: maximumPerUser))
        }
        if !kept { close(own) }
        for fd in dropped { close(fd) }
        return kept
    }

    /// Whether a descriptor a user's daemon sent may be a state file the door reopens (as root,
    /// read-write) and later hands to a daemon or empties: a regular file whose `/proc/self/fd`
    /// link reads "/memfd:…" and that has no name in any file system. The link text alone is not
    /// enough: a user with a mount namespace of their own can give a real file such a path (a
    /// bind mount of a file they may only read), and the door must never open that for writing.
    /// A memfd is never linked; a file with a name (`st_nlink` > 0) is refused whatever it says.
    static func looksLikeStateFile(mode: mode_t, links: UInt64, memfdLink: Bool) -> Bool {
        mode & S_IFMT == S_IFREG && links == 0 && memfdLink
    }

    /// Closes the files of daemons that ended normally (empty, held by no daemon), and empties and
    /// closes those of daemons that died in sessions that `ended` says are over (it is asked only
    /// about files no daemon holds that are not empty, outside the lock); returns how many.
    @discardableResult
    package func sweep(ended: (StartGate.Key, DaemonLifetime?) -> Bool = { _, _ in false }) -> Int {
        let (empty, orphans) = state.withLock { state -> ([Int32], [(StartGate.Key, Int32, DaemonLifetime?)]) in
            var empty: [Int32] = []
            var orphans: [(StartGate.Key, Int32, DaemonLifetime?)] = []
            for (key, fd) in state.files where ccached_state_in_use(fd) == 0 {
                if Self.size(of: fd) == 0 {
                    empty.append(fd)
                    _ = state.remove(key)
                } else {
                    orphans.append((key, fd, state.lifetimes[key]))
                }
            }
            return (empty, orphans)
        }
        for fd in empty { close(fd) }
        let over = orphans.filter { ended($0.0, $0.2) }
        let gone = state.withLock { state -> [Int32] in
            over.compactMap { key, fd, _ in
                guard state.files[key] == fd, ccached_state_in_use(fd) == 0 else { return nil }
                return state.remove(key)
            }
        }
        for fd in gone {
            // The door never reads the file; emptying it frees its pages now (the kernel hands them
            // to no one unzeroed), not whenever the last descriptor closes.
            _ = ftruncate(fd, 0)
            close(fd)
        }
        return empty.count + gone.count
    }

    /// Whether the session a file belongs to is over, as far as the door can tell: its logind
    /// session is gone, no process of its audit session is left (a job), or its user has no logind
    /// session left and does not linger (the per-user daemon). Without logind, or not knowing the
    /// lifetime, never (the file stays until the next daemon, or the per-uid cap).
    package static func sessionHasEnded(_ key: StartGate.Key, _ lifetime: DaemonLifetime?) -> Bool {
        guard access("/run/systemd/system", F_OK) == 0 else {
            if case .auditSession(let session) = lifetime {
                return !SessionLiveness.anyProcess(inAuditSession: session)
            }
            return false
        }
        switch lifetime {
        case .loginSession(let id):
            return !id.isEmpty && !id.contains("/") && !id.hasPrefix(".")
                && access("/run/systemd/sessions/" + id, F_OK) != 0
        case .auditSession(let session): return !SessionLiveness.anyProcess(inAuditSession: session)
        case .perUser: return SessionLiveness.userHasLogin(uid: key.uid) == false
        case nil: return false
        }
    }

    /// The file's size in bytes (0 when it cannot be told).
    static func size(of fd: Int32) -> Int {
        var info = stat()
        return fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }
}
