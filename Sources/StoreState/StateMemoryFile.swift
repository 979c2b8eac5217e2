import CStateFile
import Glibc
import SystemCalls

/// Why the state file could not be made, adopted or grown.
public struct StateFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(Errno(rawValue: errno).message)" }
}

/// The state file's memory: an anonymous memory file (`memfd_create`, close-on-exec; never a path)
/// mapped shared at a fixed reservation, its pages locked in RAM as they are first touched
/// (`MLOCK_ONFAULT`, when the memlock limit allows), excluded from core dumps and from any child.
///
/// The file grows with `ftruncate` inside the reservation; pages never written are never backed, and
/// the area a compaction leaves is given back (`FALLOC_FL_PUNCH_HOLE`). Not thread-safe: the daemon
/// uses it under the store's lock.
public final class StateMemoryFile {
    /// The descriptor (the daemon keeps it open; ccached-door keeps a descriptor of its own for a
    /// daemon it started, Docs/state.md).
    public let fileDescriptor: Int32
    /// The mapping: `reservation` bytes, of which the first `size` are the file.
    public let base: UnsafeMutableRawPointer
    public let reservation: Int
    public private(set) var size: Int
    /// Whether the mapping is locked in RAM (false when the memlock limit refused it).
    public private(set) var isLocked = false
    private static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// A new, empty memory file.
    public static func create(reservation: Int) throws(StateFileError) -> StateMemoryFile {
        let fd = ccached_state_memfd_create("ccached-state")
        guard fd >= 0 else { throw StateFileError("memfd_create", errno: errno) }
        do {
            return try StateMemoryFile(adopting: fd, reservation: reservation)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Maps the memory file `fd` (inherited: `--state-fd`, or from ccached-door). Refuses anything
    /// but a memfd, so state never goes to a file on a disk, and a file another open file
    /// description holds locked (another daemon uses it). Locks it, and marks it close-on-exec.
    public init(adopting fd: Int32, reservation: Int) throws(StateFileError) {
        switch ccached_state_is_memfd(fd) {
        case 1: break
        case 0: throw StateFileError("the state descriptor is not a memfd", errno: EINVAL)
        default: throw StateFileError("readlink /proc/self/fd/\(fd)", errno: errno)
        }
        // Never two daemons on one file: the one that uses it holds a lock on its open file
        // description until that closes (its exit, however it comes); ccached-door looks at it.
        guard ccached_state_lock(fd) == 0 else {
            let code = errno
            if code == EAGAIN { throw StateFileError("the state file is in use by another daemon", errno: EBUSY) }
            throw StateFileError("fcntl(F_OFD_SETLK)", errno: code)
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw StateFileError("fstat", errno: errno) }
        let size = Int(status.st_size)
        let reservation = max(Self.roundUp(reservation), Self.roundUp(size))
        guard let mapped = mmap(nil, reservation, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED
        else { throw StateFileError("mmap", errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = madvise(mapped, reservation, MADV_DONTDUMP)
        // A child the daemon might fork does not get the mapping (MADV_WIPEONFORK is for private ones).
        _ = madvise(mapped, reservation, MADV_DONTFORK)
        fileDescriptor = fd
        base = mapped
        self.reservation = reservation
        self.size = size
        relock()
    }

    /// Empties and closes a state file handed to a daemon that keeps none (`--secret-memory`): a
    /// memfd no other daemon holds locked is truncated to 0 bytes — its tickets gone, and ccached-door
    /// sees an ended daemon's file and drops it; anything else is only closed. Returns the bytes the
    /// file held when it was emptied, nil when it was only closed.
    public static func empty(_ fd: Int32) -> Int? {
        defer { close(fd) }
        guard ccached_state_is_memfd(fd) == 1, ccached_state_lock(fd) == 0 else { return nil }
        var status = stat()
        guard fstat(fd, &status) == 0, ftruncate(fd, 0) == 0 else { return nil }
        return Int(status.st_size)
    }

    deinit {
        munmap(base, reservation)
        close(fileDescriptor)
    }

    /// The file's bytes (valid until it changes size).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Grows the file to hold `count` bytes, in 64 KiB steps; false when the reservation is full.
    public func ensure(_ count: Int) -> Bool {
        guard count > size else { return true }
        guard count <= reservation else { return false }
        let grown = min(reservation, Self.roundUp(count, to: 64 << 10))
        guard ftruncate(fileDescriptor, off_t(grown)) == 0 else { return false }
        let old = size
        size = grown
        relock()
        // The new pages are faulted in (and locked) now, 64 KiB at a time, rather than one by one by
        // the requests that write them (MADV_POPULATE_WRITE, Linux 5.14+; ignored where missing).
        let start = Self.roundUp(old)
        if start < grown { _ = madvise(base + start, grown - start, 23) }
        return true
    }

    /// Locks the file's extent as its pages are touched: what the memlock limit is counted against.
    private func relock() {
        guard size > 0 else { return }
        isLocked = ccached_state_lock_on_fault(base, size) == 0
    }

    /// Zeroes `range`, and gives its pages back when it is 1 MiB or more: a smaller area is where
    /// the generation after next is written (areas take turns), so its pages are kept rather than
    /// faulted in again.
    public func discard(_ range: Range<Int>) {
        let lower = max(0, range.lowerBound)
        let upper = min(size, range.upperBound)
        guard lower < upper else { return }
        memset(base + lower, 0, upper - lower)
        guard upper - lower >= 1 << 20 else { return }
        let start = Self.roundUp(lower)
        let end = upper / Self.page * Self.page
        if start < end { _ = ccached_state_punch_hole(fileDescriptor, Int64(start), Int64(end - start)) }
    }

    /// Zeroes the `live` ranges (the rest is holes or zeros already: never backed, or given back
    /// zeroed) and truncates the file to nothing: a normal end leaves no state to load, and no page
    /// that held a ticket goes back to the kernel unzeroed.
    public func wipe(live: [Range<Int>]) {
        for range in live {
            let lower = max(0, range.lowerBound)
            let upper = min(size, range.upperBound)
            if lower < upper { memset(base + lower, 0, upper - lower) }
        }
        _ = ftruncate(fileDescriptor, 0)
        size = 0
    }

    static func roundUp(_ value: Int, to step: Int = page) -> Int { (value + step - 1) / step * step }
}
