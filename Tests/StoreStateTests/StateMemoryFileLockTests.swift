import CStateFile
import Glibc
import StoreState
import Testing

/// Never two daemons on one state file (Docs/state.md, "The door's part"): the daemon that uses a
/// file locks its own open file description of it, and ccached-door looks at the lock.
@Suite("state file lock")
struct StateMemoryFileLockTests {
    @Test("a state file another open file description uses is refused, and free again once that one closes")
    func secondUserRefused() throws {
        let door = ccached_state_memfd_create("ccached-state")
        try #require(door >= 0)
        defer { close(door) }
        #expect(ccached_state_in_use(door) == 0)
        let first = ccached_state_reopen(door)
        try #require(first >= 0)
        var file: StateMemoryFile? = try StateMemoryFile(adopting: first, reservation: 1 << 20)
        #expect(ccached_state_in_use(door) == 1)
        let second = ccached_state_reopen(door)
        try #require(second >= 0)
        #expect(throws: StateFileError("the state file is in use by another daemon", errno: EBUSY)) {
            _ = try StateMemoryFile(adopting: second, reservation: 1 << 20)
        }
        // The first daemon's end (its description closes) frees the file for the next one.
        file = nil
        #expect(ccached_state_in_use(door) == 0)
        let next = try StateMemoryFile(adopting: second, reservation: 1 << 20)
        #expect(next.fileDescriptor == second)
        _ = file
    }
}
