import Glibc
import Synchronization

/// Wakes every CCACHED_WATCH request waiting for a change, within the time a `write` takes.
///
/// A waiter takes the current ``Beacon`` *before* it looks at the journal, then polls the beacon's
/// descriptor (and its socket, to notice a peer that left) with its timeout. ``notify()`` — called
/// after every request that moved the journal counter, and after a renewal or a purge — fires the
/// beacon and forgets it, so every waiter holding it wakes and the next waiter gets a new one. A
/// waiter that looked just before a change therefore still wakes, and no thread ever spins. With no
/// waiter no beacon exists and a notification costs one uncontended lock.
public final class ChangeNotifier: Sendable {
    /// A pipe whose read end becomes readable once fired (nothing ever reads it); both ends are
    /// closed when the last waiter holding it lets go.
    public final class Beacon: Sendable {
        /// The end to poll for readability.
        public let fileDescriptor: Int32
        private let writeEnd: Int32

        fileprivate init?() {
            var ends: [Int32] = [-1, -1]
            guard pipe(&ends) == 0 else { return nil }
            for fd in ends {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            fileDescriptor = ends[0]
            writeEnd = ends[1]
        }

        fileprivate func fire() {
            var one: UInt8 = 1
            _ = write(writeEnd, &one, 1)
        }

        deinit {
            close(writeEnd)
            close(fileDescriptor)
        }
    }

    private let current = Mutex<Beacon?>(nil)

    public init() {}

    /// The beacon the next change fires; nil when no descriptor is left (the waiter then re-checks
    /// on a coarse timer instead).
    public func beacon() -> Beacon? {
        current.withLock { beacon in
            if let beacon { return beacon }
            beacon = Beacon()
            return beacon
        }
    }

    /// Wakes every waiter: the collection changed.
    public func notify() {
        let fired = current.withLock { beacon -> Beacon? in
            defer { beacon = nil }
            return beacon
        }
        fired?.fire()
    }
}
