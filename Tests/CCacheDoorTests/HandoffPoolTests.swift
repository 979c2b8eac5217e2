import CCacheDoor
import CSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The door's pool of kept hand-off connections is shared by every user: sessions that come and
/// go leave nothing behind, and one user cannot crowd out another (issue 24, item 6).
@Suite("Hand-off pool: dead entries evicted, capped per uid, least recently used first", .serialized)
struct HandoffPoolTests {
    static let isRoot: Bool = {
        if getuid() != 0 {
            print("HandoffPoolTests: root-only cases SKIPPED, NOT RUN: they run fake daemons as another uid")
        }
        return getuid() == 0
    }()

    func scratch() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "door-pool-\(UUID().uuidString.prefix(8))"
        ).path
        #expect(mkdir(directory, 0o755) == 0)
        return directory
    }

    func route(_ pool: HandoffPool, to daemon: FakeDaemon, uid: UInt32 = getuid()) -> HandoffClient.Outcome {
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        return pool.handOff(client: ends[0], handoffPath: daemon.path, expectedUID: uid, timeoutMilliseconds: 5000)
    }

    @Test("300 sessions that come and go leave at most the per-uid cap behind, and a live daemon's entry is reused")
    func churn() throws {
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pool = HandoffPool()
        var largest = 0
        for session in 0..<300 {
            let daemon = FakeDaemon(directory: root + "/session-\(session)")
            #expect(route(pool, to: daemon) == .accepted)
            daemon.stop()
            largest = max(largest, pool.count)
        }
        #expect(largest <= pool.perUser)
        // Nothing left of them is worth keeping.
        pool.removeDead()
        #expect(pool.count == 0)
        // A live daemon now: its connection is kept and carries the next clients.
        let live = FakeDaemon(directory: root + "/live")
        defer { live.stop() }
        for _ in 0..<3 { #expect(route(pool, to: live) == .accepted) }
        #expect(live.accepted.load(ordering: .relaxed) == 1)
        // The fake daemon counts an answer after sending it: the pool may have read it first.
        for _ in 0..<200 where live.answered.load(ordering: .relaxed) < 3 { usleep(10_000) }
        #expect(live.answered.load(ordering: .relaxed) == 3)
        #expect(pool.count == 1)
    }

    @Test("a kept connection whose daemon has gone is dropped on the next check, not offered a client")
    func deadEntry() throws {
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pool = HandoffPool()
        let first = FakeDaemon(directory: root + "/a")
        #expect(route(pool, to: first) == .accepted)
        #expect(pool.count == 1)
        first.stop()
        #expect(pool.removeDead() == 1)
        #expect(pool.count == 0)
    }

    @Test(
        "one uid's 300 sessions never evict another uid's live entry; the overall cap evicts least recently used",
        .enabled(if: isRoot))
    func fairness() throws {
        let root = scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pool = HandoffPool(perDaemon: 2, perUser: 3, overall: 6)
        let mine = FakeDaemon(directory: root + "/root-session")
        defer { mine.stop() }
        #expect(route(pool, to: mine, uid: 0) == .accepted)
        // uid 4242's sessions come and go, and its live daemons stay: it never holds more than 3.
        var live: [FakeDaemon] = []
        defer { for daemon in live { daemon.stop() } }
        var largest = 0
        for session in 0..<300 {
            let daemon = FakeDaemon(directory: root + "/other-\(session)", uid: 4242)
            #expect(route(pool, to: daemon, uid: 4242) == .accepted)
            if session % 50 == 0 { live.append(daemon) } else { daemon.stop() }
            largest = max(largest, pool.count(uid: 4242))
        }
        #expect(largest <= 3)
        #expect(pool.count(uid: 0) == 1)
        #expect(route(pool, to: mine, uid: 0) == .accepted)
        #expect(mine.accepted.load(ordering: .relaxed) == 1)
        // Overall: five more uids' daemons fill the pool (6); the least recently used go first,
        // and root's entry, just used, is among those kept.
        var others: [FakeDaemon] = []
        defer { for daemon in others { daemon.stop() } }
        for index in 0..<5 {
            let uid = UInt32(5000 + index)
            let daemon = FakeDaemon(directory: root + "/uid-\(uid)", uid: uid)
            others.append(daemon)
            #expect(route(pool, to: daemon, uid: uid) == .accepted)
        }
        #expect(pool.count == 6)
        #expect(pool.count(uid: 0) == 1)
        #expect(pool.count(uid: 4242) == 0)
    }
}
