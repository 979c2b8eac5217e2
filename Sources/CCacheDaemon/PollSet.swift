import Glibc
import SystemCalls

/// The descriptors the daemon's main loop waits on, each under a name.
struct PollSet<Name: Hashable> {
    private var names: [Name] = []
    private var descriptors: [pollfd] = []

    /// Adds `fd`, to be reported as `name` when it is readable (or hung up).
    mutating func add(_ name: Name, fileDescriptor fd: Int32) {
        names.append(name)
        descriptors.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
    }

    /// Waits up to `timeout` milliseconds (-1: forever) and returns the names of the ready
    /// descriptors, in the order they were added. A signal's interruption returns none.
    mutating func wait(timeout: Int32) throws(Errno) -> [Name] {
        let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
        if ready < 0 {
            if errno == EINTR { return [] }
            throw Errno.current
        }
        return zip(names, descriptors).compactMap { $1.revents != 0 ? $0 : nil }
    }
}
