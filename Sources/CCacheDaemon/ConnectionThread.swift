import CSupport

/// Runs a closure on a new detached thread with a small stack. Each connection gets one: a blocking
/// thread per connection answers at the cost of a bare socket round trip (see STYLE.md, "What a
/// request costs"), and one slow client never delays another.
enum ConnectionThread {
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
