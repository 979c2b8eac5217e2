import CSupport
import Glibc
import SystemCalls

/// The daemon's epoll instance: every descriptor its main thread waits on — the listeners, the
/// signals, the login session and each connection it serves itself — reported by a token.
final class EventPoll {
    private let fileDescriptor: Int32
    private var ready = [UInt64](repeating: 0, count: 64)

    init() throws(Errno) {
        fileDescriptor = ccached_epoll_create()
        guard fileDescriptor >= 0 else { throw Errno.current }
    }

    deinit { close(fileDescriptor) }

    /// Reports `fd` as `token` whenever it is readable or hung up (level-triggered).
    func add(_ fd: Int32, token: UInt64) throws(Errno) {
        guard ccached_epoll_add(fileDescriptor, fd, token) == 0 else { throw Errno.current }
    }

    /// Stops watching `fd` (before it is closed or handed to another thread).
    func remove(_ fd: Int32) {
        _ = ccached_epoll_remove(fileDescriptor, fd)
    }

    /// Waits up to `timeout` milliseconds (-1: forever) and returns the tokens of the ready
    /// descriptors (at most 64 at a time; the rest are reported by the next wait). A signal's
    /// interruption returns none.
    func wait(timeout: Int32) throws(Errno) -> ArraySlice<UInt64> {
        let count = ready.withUnsafeMutableBufferPointer {
            ccached_epoll_wait(fileDescriptor, $0.baseAddress, Int32($0.count), timeout)
        }
        guard count >= 0 else { throw Errno.current }
        return ready[0..<Int(count)]
    }
}
