@testable import CCacheDoor
import CStateFile
import Glibc
import SessionRuntime
import Testing

/// The door's side of the state files (Docs/state.md, "The door's part"): which file a new daemon
/// gets, which the door lets go, and what it takes from a daemon. A "daemon" here is what a daemon
/// does to its copy: a lock on its open file description (StateMemoryFile) and writes.
@Suite("door: state files")
struct StateFilesTests {
    let key = StartGate.Key(uid: 4242, session: "7")

    /// Writes `count` bytes to `fd` (what a daemon's journal does to the file).
    func write(_ fd: Int32, count: Int) {
        #expect(ftruncate(fd, off_t(count)) == 0)
    }

    @Test("a new session gets a new file; a daemon that died holding a non-empty file leaves it to the next one")
    func crashedFileGoesToTheNextDaemon() throws {
        let files = StateFiles()
        let first = try #require(files.prepare(for: key))
        #expect(first.preparation == .new)
        #expect(first.own != first.copy)
        #expect(!files.shouldAsk(for: key), "the daemon being started is not asked for its file")
        // The daemon locks its copy and writes; the door keeps its own.
        #expect(ccached_state_lock(first.copy) == 0)
        files.keep(first.own, for: key)
        write(first.copy, count: 65536)
        #expect(files.sweep() == 0)
        // It dies: its description closes, and with it the lock.
        close(first.copy)
        #expect(files.sweep() == 0, "a non-empty file is kept")
        let second = try #require(files.prepare(for: key))
        #expect(second.preparation == .crashed(bytes: 65536))
        #expect(second.own == first.own)
        close(second.copy)
        files.keep(second.own, for: key)
        #expect(files.count == 1)
    }

    @Test("a file a daemon still holds is never handed to a second one; an empty unheld one is swept")
    func neverTwoDaemonsAndSweep() throws {
        let files = StateFiles()
        let first = try #require(files.prepare(for: key))
        #expect(ccached_state_lock(first.copy) == 0)
        write(first.copy, count: 4096)
        files.keep(first.own, for: key)
        // The daemon does not answer but still holds the file: the next one gets a new file.
        let second = try #require(files.prepare(for: key, waitMilliseconds: 100))
        #expect(second.preparation == .stillHeld)
        #expect(ccached_state_lock(second.copy) == 0, "the new file is free")
        files.keep(second.own, for: key)
        close(first.copy)
        // A normal end: the daemon empties its file and exits; the door lets go of it.
        write(second.copy, count: 0)
        #expect(files.sweep() == 0, "still held by its daemon")
        close(second.copy)
        #expect(files.sweep() == 1)
        #expect(files.count == 0)
    }

    @Test("after a door restart it keeps only a memfd a daemon sends, as a description of its own, and asks once")
    func adoptOnlyMemfds() throws {
        let files = StateFiles()
        #expect(files.shouldAsk(for: key))
        #expect(!files.shouldAsk(for: key), "asked once")
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        defer { close(ends[1]) }
        #expect(!files.adopt(ends[0], for: key), "a pipe is no state file")
        #expect(files.count == 0)
        let daemons = ccached_state_memfd_create("ccached-state")
        try #require(daemons >= 0)
        defer { close(daemons) }
        #expect(ccached_state_lock(daemons) == 0)
        write(daemons, count: 8192)
        let sent = dup(daemons)  // what SCM_RIGHTS gives: the daemon's own description
        #expect(files.adopt(sent, for: key))
        #expect(files.count == 1)
        // The door's descriptor is not the daemon's description: the daemon's lock shows as "in use",
        // so no second daemon gets it while this one lives.
        let next = try #require(files.prepare(for: key, waitMilliseconds: 50))
        #expect(next.preparation == .stillHeld)
        close(next.copy)
        close(next.own)
    }

    @Test(
        "a descriptor a daemon sends is taken for a state file only when it is an unlinked regular file named like a memfd"
    )
    func stateFileRule() throws {
        #expect(StateFiles.looksLikeStateFile(mode: S_IFREG | 0o600, links: 0, memfdLink: true))
        // A file with a name that a mount namespace made read "/memfd:…": never reopened by root.
        #expect(!StateFiles.looksLikeStateFile(mode: S_IFREG | 0o644, links: 1, memfdLink: true))
        #expect(!StateFiles.looksLikeStateFile(mode: S_IFIFO | 0o600, links: 0, memfdLink: true))
        #expect(!StateFiles.looksLikeStateFile(mode: S_IFREG | 0o600, links: 0, memfdLink: false))
        // A real file with a name is refused by adopt itself.
        var template = Array("/tmp/ccached-statefiles-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0)
        defer { unlink(String(cString: template)) }
        #expect(!StateFiles().adopt(fd, for: key), "a named file is no state file")
        // And a real memfd passes the rule as fstat sees it.
        let memfd = ccached_state_memfd_create("ccached-state")
        try #require(memfd >= 0)
        defer { close(memfd) }
        var info = stat()
        #expect(fstat(memfd, &info) == 0)
        #expect(
            StateFiles.looksLikeStateFile(
                mode: info.st_mode, links: UInt64(info.st_nlink), memfdLink: ccached_state_is_memfd(memfd) == 1))
    }

    @Test("a file a daemon died with is emptied and let go once its session has ended, not before")
    func endedSessionsFileLetGo() throws {
        let files = StateFiles()
        let prepared = try #require(files.prepare(for: key))
        write(prepared.copy, count: 65536)
        files.keep(prepared.own, for: key, lifetime: .loginSession("7"))
        close(prepared.copy)  // the daemon died
        var asked: [DaemonLifetime?] = []
        #expect(
            files.sweep { _, lifetime in
                asked.append(lifetime); return false
            } == 0)
        #expect(asked == [.loginSession("7")])
        #expect(files.count == 1)
        // The door's descriptor is closed; a second one shows the file emptied.
        let witness = ccached_state_reopen(prepared.own)
        try #require(witness >= 0)
        defer { close(witness) }
        #expect(files.sweep { _, _ in true } == 1)
        #expect(files.count == 0)
        var info = stat()
        #expect(fstat(witness, &info) == 0 && info.st_size == 0)
    }

    @Test("one uid's files are capped: the oldest files no daemon holds go first")
    func cappedPerUser() throws {
        let files = StateFiles(maximumPerUser: 2)
        var copies: [Int32] = []
        for session in 0..<3 {
            let key = StartGate.Key(uid: 4242, session: "job-\(session)")
            let prepared = try #require(files.prepare(for: key))
            write(prepared.copy, count: 4096)
            files.keep(prepared.own, for: key)
            copies.append(prepared.copy)  // unlocked: these daemons "died"
        }
        #expect(files.count == 2)
        for copy in copies { close(copy) }
    }
}
