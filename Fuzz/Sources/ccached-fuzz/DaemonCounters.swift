import CCacheDaemon
import Synchronization

/// The counters a ``DaemonState`` keeps outside the store, read at one moment: to show what a frame
/// changed (a refused peer's frame changes none of them).
struct DaemonCounters: Equatable, CustomStringConvertible {
    var largestRequest: Int
    var oversizedRequests: Int
    var stalledRequests: Int

    init(_ state: DaemonState) {
        largestRequest = state.largestRequest.load(ordering: .relaxed)
        oversizedRequests = state.oversizedRequests.load(ordering: .relaxed)
        stalledRequests = state.stalledRequests.load(ordering: .relaxed)
    }

    var description: String {
        "largest request \(largestRequest), oversized \(oversizedRequests), stalled \(stalledRequests)"
    }
}
