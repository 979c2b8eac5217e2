import CredentialStore
import KCM
import Logging
import Synchronization
import TestSupport
import Testing

@testable import CCacheDaemon

/// A cache evicted at `--max-caches` is logged: a user's tickets went, however stale.
@Suite("eviction log line")
struct EvictionLogTests {
    @Test("INITIALIZE at --max-caches evicts a fully expired cache and the daemon logs it at notice")
    func evictionIsLogged() {
        let collected = RequestLogLevelTests.Collected()
        var configuration = DaemonConfiguration(socketPath: "/unused", ownerUID: 1000)
        configuration.storeLimits = CredentialStoreLimits(maximumCaches: 1)
        let logger = Logger(label: "test") { _ in
            EscapingLogHandler(RequestLogLevelTests.CollectingHandler(collected: collected))
        }
        let state = DaemonState(configuration: configuration, logger: logger)
        let now = UInt32(1_800_000_000)
        let expired = ticket(client: Fixture.alice, server: Fixture.krbtgt, endtime: now - 120)
        state.store.withLock { store in
            store.clock = { now }
            try! store.initialize("1000:old\nforged", principal: alice)
            try! store.store(expired, in: "1000:old\nforged")
        }
        var session = ConnectionSessionTests.session(ConnectionSessionTests.owner, state)
        defer { session.wipe() }
        var statuses: [KCMStatus] = []
        _ = session.receive(KCMRequest.initialize(name: "1000:1", principal: alice).encodedFrame(), now: 0) {
            statuses.append(ConnectionSessionTests.status($0))
            return true
        }
        #expect(statuses == [.success])
        let lines = collected.lines.withLock { $0 }
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.0 == .notice)
        #expect(
            lines.first?.1
                == "evicted cache 1000:old\\nforged, whose tickets all expired 120 s ago, to make room for a new cache at the cache limit (--max-caches)",
            "\(lines)")
    }
}
