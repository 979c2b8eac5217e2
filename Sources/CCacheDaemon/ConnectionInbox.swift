import CSupport
import Glibc
import Synchronization
import SystemCalls

/// Connections admitted on another thread (the hand-off from ccached-door is received on one) for
/// the event loop to serve: a queue and an eventfd that wakes the loop.
final class ConnectionInbox: Sendable {
    /// Readable while connections wait; the event loop watches it.
    let fileDescriptor: Int32
    private let queue = Mutex<[AdmittedConnection]>([])

    init() throws(Errno) {
        fileDescriptor = ccached_eventfd_create()
        guard fileDescriptor >= 0 else { throw Errno.current }
    }

    deinit { close(fileDescriptor) }

    /// Queues a connection and wakes the loop.
    func post(_ connection: AdmittedConnection) {
        queue.withLock { $0.append(connection) }
        ccached_eventfd_signal(fileDescriptor)
    }

    /// Everything queued, oldest first; the descriptor is quiet again until the next post.
    func takeAll() -> [AdmittedConnection] {
        ccached_eventfd_drain(fileDescriptor)
        return queue.withLock { queue in
            defer { queue = [] }
            return queue
        }
    }
}
