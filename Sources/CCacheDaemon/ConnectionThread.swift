import SystemCalls

/// Runs a closure on a thread of its own with a small stack. The event loop serves most
/// connections itself; one that must wait (a CCACHED_WATCH, a CCACHED_RENEW, a reply its socket
/// does not take at once) gets a thread here, so one slow client never delays another.
///
/// A thread whose connection ended parks for a while (at most 4, each for 10 s) and takes the next
/// connection instead of exiting (``ParkingThreads``); it lets go of the connection it served first,
/// so nothing of it (the credentials of a reply) lives on in a parked thread. An idle daemon goes
/// back to one thread.
enum ConnectionThread {
    static let pool = ParkingThreads(maximumParked: 4, parkSeconds: 10)

    /// Runs `body` on a parked thread if one is free, else on a new one. Returns 0 or the errno of
    /// `pthread_create`.
    static func start(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Int32 {
        pool.start(stackSize: stackSize, body)
    }
}
