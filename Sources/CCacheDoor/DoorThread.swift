import SystemCalls

/// Runs a closure on a thread of its own with a small stack: one per connection being routed, so
/// a slow daemon start (or a daemon slow to answer the hand-off) for one user never holds up
/// another.
///
/// A thread whose routing ended parks for a while (at most 8, each for 10 s) and takes the next
/// connection instead of exiting (``ParkingThreads``): creating a thread and unmapping its stack
/// again cost more than routing a connection from the cache. So under a steady stream of
/// connections no thread is created per connection, and an idle door goes back to its accept thread
/// alone. A connection that comes while every parked thread is busy still gets a new thread: no
/// connection ever waits for another's routing.
enum DoorThread {
    static let pool = ParkingThreads(maximumParked: 8, parkSeconds: 10)

    /// Runs `body` on a parked thread if one is free, else on a new one. Returns 0 or the errno of
    /// `pthread_create`.
    static func start(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Int32 {
        pool.start(stackSize: stackSize, body)
    }

    /// How many threads were created so far.
    static var createdCount: Int { pool.createdCount }
}
