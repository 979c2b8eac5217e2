import CSupport

/// Runs a closure on a new detached thread with a small stack: one per connection being routed, so
/// a slow daemon start for one user never holds up another.
enum DoorThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread. Returns 0 or the errno of `pthread_create`.
    static func start(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Int32 {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let result = ccached_spawn_thread(
            { raw in
                Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, context, stackSize)
        if result != 0 { Unmanaged<Body>.fromOpaque(context).release() }
        return result
    }
}
