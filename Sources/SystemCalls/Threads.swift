import Glibc

/// Starts threads: the one place that calls `pthread_create`.
public enum Threads {
    /// What the new thread runs: taken out as it starts, so nothing but the running closure keeps it.
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Runs `body` on a new thread with a stack of `stackSize` bytes (0: the default). The thread is
    /// detached unless `joinable`; a joinable one must be joined or detached by the caller, with the
    /// id returned. Throws the error `pthread_create` returned.
    @discardableResult
    public static func start(
        stackSize: Int, joinable: Bool = false, _ body: @escaping @Sendable () -> Void
    ) throws(Errno) -> pthread_t {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var attributes = pthread_attr_t()
        var result = pthread_attr_init(&attributes)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw Errno(rawValue: result)
        }
        defer { pthread_attr_destroy(&attributes) }
        if !joinable { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        if stackSize > 0 { pthread_attr_setstacksize(&attributes, stackSize) }
        var thread = pthread_t()
        result = pthread_create(
            &thread, &attributes,
            { raw in
                let run = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run
                run()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw Errno(rawValue: result)
        }
        return thread
    }
}
