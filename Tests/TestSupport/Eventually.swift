import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Polls `condition` every 20 ms for up to `seconds`; true as soon as it holds. A bound on how long
/// to wait for something asynchronous, not a timing assertion.
package func eventually(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}
