import Glibc

/// A failed system call's `errno`, as a typed error with its message, in the shape of
/// swift-system's `Errno`.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's `errno` now.
    public static var current: Errno { Errno(rawValue: errno) }

    /// `strerror`'s text, without the number: for sentences shown to a person.
    public var message: String { String(cString: strerror(rawValue)) }

    /// The message and the number, e.g. "Permission denied (errno 13)": for logs.
    public var description: String { "\(message) (errno \(rawValue))" }

    // The codes the modules test for by name.
    public static let interrupted = Errno(rawValue: EINTR)
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    public static let noSuchFile = Errno(rawValue: ENOENT)
    public static let connectionRefused = Errno(rawValue: ECONNREFUSED)
    public static let connectionAborted = Errno(rawValue: ECONNABORTED)
    public static let connectionReset = Errno(rawValue: ECONNRESET)
    public static let protocolError = Errno(rawValue: EPROTO)
    public static let fileExists = Errno(rawValue: EEXIST)
}

/// Runs a system call until it is not interrupted by a signal. Returns its result, or throws the
/// `errno` it failed with (a result of -1). This is the one EINTR loop: a call with a timeout
/// recomputes the time left inside `call`, so that a signal never extends a deadline.
@inline(__always)
public func retryingInterrupts<Result: BinaryInteger>(_ call: () -> Result) throws(Errno) -> Result {
    while true {
        let result = call()
        if result != -1 { return result }
        let error = Errno.current
        if error != .interrupted { throw error }
    }
}
