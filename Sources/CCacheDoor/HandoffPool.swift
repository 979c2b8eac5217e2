import Glibc
import Synchronization
import SystemCalls

/// Open hand-off connections kept for reuse: the hand-off protocol allows many messages per
/// connection, and reusing one saves a connect, the daemon's accept and its thread for every
/// routed client.
///
/// The pool is shared by every user, so no user may fill it: it keeps at most `perDaemon`
/// connections per daemon, `perUser` per uid (over all of that uid's daemons) and `overall` in
/// all, and when a cap is reached the least recently used connection under that cap goes.
/// Connections whose daemon has gone (the daemon hung up: POLLHUP/POLLRDHUP, or sent something
/// unasked) are dropped before any cap is applied (those of the uid for its own caps, all of them
/// for the overall cap and on every 32nd keep anyway), and a connection is checked again when it
/// is taken; so sessions that come and go leave little behind for long, and never crowd out live
/// ones.
///
/// A kept connection whose daemon has gone between that check and the send fails at once (EPIPE)
/// or answers with end of file; both mean the daemon did not take the client, which is then
/// offered on the next kept connection or a fresh one. A timeout is never retried (the daemon may
/// still take the client, and a client is never served twice). The daemon closes a hand-off
/// connection idle for 30 s, which makes it one to drop.
package final class HandoffPool: Sendable {
    private struct Entry {
        let key: String
        let uid: UInt32
        let socket: Int32
        /// When it was last kept (the pool's own counter): the smallest is the least recently used.
        let used: UInt64
    }

    private struct State {
        var entries: [Entry] = []
        var clock: UInt64 = 0
    }

    private let state = Mutex<State>(State())
    /// At most this many idle connections per daemon, per uid and overall.
    package let perDaemon: Int
    package let perUser: Int
    package let overall: Int

    package init(perDaemon: Int = 4, perUser: Int = 16, overall: Int = 256) {
        self.perDaemon = perDaemon
        self.perUser = perUser
        self.overall = overall
    }

    /// Hands `client` over like ``HandoffClient/handOff(client:handoffPath:expectedUID:timeoutMilliseconds:)``,
    /// on a kept connection when there is one. Kept connections were checked for `expectedUID` when
    /// they were made; they are keyed by path and uid together.
    package func handOff(client: Int32, handoffPath: String, expectedUID: UInt32, timeoutMilliseconds: Int32)
        -> HandoffClient.Outcome
    {
        let key = "\(expectedUID):\(handoffPath)"
        while let socket = take(key) {
            let exchange = HandoffClient.exchange(on: socket, client: client, timeoutMilliseconds: timeoutMilliseconds)
            if exchange.reusable { keep(socket, key: key, uid: expectedUID) } else { close(socket) }
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
        if exchange.reusable { keep(socket, key: key, uid: expectedUID) } else { close(socket) }
        return exchange.outcome
    }

    /// How many idle connections are kept now.
    /// Takes a kept, idle connection to the daemon behind `handoffPath` serving `expectedUID`, if
    /// there is one: it is the caller's (``ExpressHandoffs`` keeps it). Never connects, never waits.
    func takeKept(handoffPath: String, expectedUID: UInt32) -> Int32? {
        take("\(expectedUID):\(handoffPath)")
    }

    package var count: Int { state.withLock { $0.entries.count } }

    /// How many idle connections to `uid`'s daemons are kept now.
    package func count(uid: UInt32) -> Int { state.withLock { $0.entries.filter { $0.uid == uid }.count } }

    /// Drops every kept connection whose daemon has gone; returns how many.
    @discardableResult
    package func removeDead() -> Int {
        let dropped = state.withLock { Self.removeDead(from: &$0.entries) }
        for socket in dropped { close(socket) }
        return dropped.count
    }

    /// The most recently kept connection for `key` that is still alive; dead ones met on the way
    /// are closed.
    private func take(_ key: String) -> Int32? {
        while true {
            let socket = state.withLock { state -> Int32? in
                guard
                    let index = state.entries.indices.filter({ state.entries[$0].key == key }).max(by: {
                        state.entries[$0].used < state.entries[$1].used
                    })
                else { return nil }
                return state.entries.remove(at: index).socket
            }
            guard let socket else { return nil }
            if Self.isIdle([socket]) == [true] { return socket }
            close(socket)
        }
    }

    private func keep(_ socket: Int32, key: String, uid: UInt32) {
        guard perDaemon > 0, perUser > 0, overall > 0 else {
            close(socket)
            return
        }
        let dropped = state.withLock { state -> [Int32] in
            // Dead ones go first: the uid's own when one of its caps is reached, everyone's when the
            // pool is full and every 32nd time anyway (a check is one poll over those connections).
            var dropped: [Int32] = []
            if state.entries.count >= overall || state.clock % 32 == 0 {
                dropped = Self.removeDead(from: &state.entries)
            } else if state.entries.filter({ $0.uid == uid }).count >= perUser
                || state.entries.filter({ $0.key == key }).count >= perDaemon
            {
                dropped = Self.removeDead(from: &state.entries) { $0.uid == uid }
            }
            // The least recently used under each cap makes room.
            func evictOldest(where matches: (Entry) -> Bool, cap: Int) {
                while state.entries.filter(matches).count >= cap {
                    guard
                        let index = state.entries.indices.filter({ matches(state.entries[$0]) }).min(by: {
                            state.entries[$0].used < state.entries[$1].used
                        })
                    else { return }
                    dropped.append(state.entries.remove(at: index).socket)
                }
            }
            evictOldest(where: { $0.key == key }, cap: perDaemon)
            evictOldest(where: { $0.uid == uid }, cap: perUser)
            evictOldest(where: { _ in true }, cap: overall)
            state.clock += 1
            state.entries.append(Entry(key: key, uid: uid, socket: socket, used: state.clock))
            return dropped
        }
        for socket in dropped { close(socket) }
    }

    /// Removes the entries (of those `checked`) whose connection is not idle and alive; returns
    /// their sockets.
    private static func removeDead(from entries: inout [Entry], checked: (Entry) -> Bool = { _ in true }) -> [Int32] {
        let candidates = entries.indices.filter { checked(entries[$0]) }
        guard !candidates.isEmpty else { return [] }
        let idle = isIdle(candidates.map { entries[$0].socket })
        let dead = Set(zip(candidates, idle).filter { !$0.1 }.map(\.0))
        guard !dead.isEmpty else { return [] }
        let dropped = dead.sorted().map { entries[$0].socket }
        entries = entries.indices.filter { !dead.contains($0) }.map { entries[$0] }
        return dropped
    }

    /// For each socket, whether it is an idle hand-off connection that can carry another message:
    /// the daemon has not hung up (POLLHUP, POLLRDHUP), the socket has no error, and nothing waits
    /// to be read (the daemon sends only answers, so anything there is out of step).
    private static func isIdle(_ sockets: [Int32]) -> [Bool] {
        var descriptors = sockets.map { pollfd(fd: $0, events: Int16(POLLIN) | Int16(pollRDHUP), revents: 0) }
        guard (try? retryingInterrupts({ poll(&descriptors, nfds_t(descriptors.count), 0) })) != nil else {
            return sockets.map { _ in true }
        }
        return descriptors.map { $0.revents == 0 }
    }

    /// POLLRDHUP (0x2000, a GNU extension Glibc's module may not export).
    private static let pollRDHUP: Int32 = 0x2000
}
