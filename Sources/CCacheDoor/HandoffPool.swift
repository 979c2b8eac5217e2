import Glibc
import Synchronization

/// Open hand-off connections kept for reuse, a few per daemon: the hand-off protocol allows many
/// messages per connection, and reusing one saves a connect, the daemon's accept and its thread
/// for every routed client.
///
/// A kept connection whose daemon has gone fails at once on the next send (EPIPE) or answers with
/// end of file; both mean the daemon did not take the client, which is then offered on a fresh
/// connection. A timeout is never retried (the daemon may still take the client, and a client is
/// never served twice). The daemon closes a hand-off connection idle for 30 s; such a connection
/// is found dead on its next use in the same way.
public final class HandoffPool: Sendable {
    private let idle = Mutex<(byPath: [String: [Int32]], total: Int)>(([:], 0))
    /// At most this many idle connections per daemon and overall.
    public let perDaemon: Int
    public let overall: Int

    public init(perDaemon: Int = 4, overall: Int = 256) {
        self.perDaemon = perDaemon
        self.overall = overall
    }

    /// Hands `client` over like ``HandoffClient/handOff(client:handoffPath:expectedUID:timeoutMilliseconds:)``,
    /// on a kept connection when there is one. Kept connections were checked for `expectedUID` when
    /// they were made; they are keyed by path and uid together.
    public func handOff(client: Int32, handoffPath: String, expectedUID: UInt32, timeoutMilliseconds: Int32)
        -> HandoffClient.Outcome
    {
        let key = "\(expectedUID):\(handoffPath)"
        while let socket = take(key) {
            let exchange = HandoffClient.exchange(on: socket, client: client, timeoutMilliseconds: timeoutMilliseconds)
            if exchange.reusable { keep(socket, key) } else { close(socket) }
            // A dead kept connection: try the next, then a fresh one.
            if exchange.outcome == .noDaemon && exchange.safeToRetry { continue }
            return exchange.outcome
        }
        let socket: Int32
        switch HandoffClient.connect(
            handoffPath: handoffPath, expectedUID: expectedUID, timeoutMilliseconds: timeoutMilliseconds)
        {
        case .success(let connected): socket = connected
        case .failure(let failure): return failure.outcome
        }
        let exchange = HandoffClient.exchange(on: socket, client: client, timeoutMilliseconds: timeoutMilliseconds)
        if exchange.reusable { keep(socket, key) } else { close(socket) }
        return exchange.outcome
    }

    /// How many idle connections are kept now.
    public var count: Int { idle.withLock { $0.total } }

    private func take(_ key: String) -> Int32? {
        idle.withLock { state in
            guard let socket = state.byPath[key]?.popLast() else { return nil }
            if state.byPath[key]?.isEmpty == true { state.byPath[key] = nil }
            state.total -= 1
            return socket
        }
    }

    private func keep(_ socket: Int32, _ key: String) {
        let kept = idle.withLock { state -> Bool in
            guard state.total < overall, state.byPath[key, default: []].count < perDaemon else { return false }
            state.byPath[key, default: []].append(socket)
            state.total += 1
            return true
        }
        if !kept { close(socket) }
    }
}
