import KCM
import Logging
import Synchronization
import TestSupport
import Testing

@testable import CCacheDaemon

/// The level a request's answer reaches the daemon's log with, through a real ``ConnectionSession``:
/// the everyday misses stay at debug, so a notice means something.
@Suite("request log levels")
struct RequestLogLevelTests {
    /// Every line a logger at `.notice` lets through, with its level.
    final class Collected: Sendable {
        let lines = Mutex<[(Logger.Level, String)]>([])
    }

    struct CollectingHandler: LogHandler {
        let collected: Collected
        var logLevel: Logger.Level = .notice
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let line = "\(event.message)"
            collected.lines.withLock { $0.append((event.level, line)) }
        }
    }

    /// Sends `requests` on one owner's connection logging at notice; returns the replies' statuses
    /// and what was logged.
    static func serve(_ requests: [KCMRequest]) -> (statuses: [KCMStatus], logged: [(Logger.Level, String)]) {
        serve(bytes: requests.flatMap { $0.encodedFrame() })
    }

    /// ``serve(_:)`` for bytes as they came, framed or not.
    static func serve(bytes: [UInt8]) -> (statuses: [KCMStatus], logged: [(Logger.Level, String)]) {
        let collected = Collected()
        let state = ConnectionSessionTests.state()
        var session = ConnectionSession(
            peer: ConnectionSessionTests.owner, state: state,
            logger: Logger(label: "test") { _ in CollectingHandler(collected: collected) })
        defer { session.wipe() }
        var statuses: [KCMStatus] = []
        _ = session.receive(bytes, now: 0) {
            statuses.append(ConnectionSessionTests.status($0))
            return true
        }
        return (statuses, collected.lines.withLock { $0 })
    }

    @Test(
        "a by-UUID lookup of a cache or credential kdestroy -A removed meanwhile (KRB5_CC_END) is logged at debug, not notice"
    )
    func uuidRaceIsRoutine() {
        let gone = KCMUUID(high: 0x1234, low: 0x5678)
        let (statuses, logged) = Self.serve([
            .getCacheByUUID(uuid: gone),
            .initialize(name: "1000", principal: alice),
            .getCredByUUID(name: "1000", uuid: gone),
        ])
        #expect(statuses == [.ccEnd, .success, .ccEnd])
        #expect(logged.isEmpty, "\(logged)")
    }

    @Test("a malformed request is still logged at notice (the logger does see lines at that level)")
    func malformedStillNoticed() {
        // INITIALIZE with a body cut after its opcode: undecodable.
        let body: [UInt8] = [2, 0, 0, UInt8(KCMOpcode.initialize.rawValue)]
        let lines = Self.serve(bytes: [0, 0, 0, UInt8(body.count)] + body).logged
        #expect(lines.count == 1 && lines.first?.0 == .notice, "\(lines)")
    }
}

/// A daemon stopped by a client says why in its last line.
@Suite("stop reasons")
struct StopReasonTests {
    @Test("the last DETACH stops the daemon as a detach, never as a CCACHED_STOP; CCACHED_STOP as a stop")
    func detachIsNotStop() throws {
        for (request, expected) in [
            (KCMRequest.detachSession, DaemonState.StopReason.lastSessionDetached), (.stop, .stopAsked),
        ] {
            let (state, stops) = ConnectionSessionTests.stateCountingStops()
            #expect(state.stopReason == nil)
            var session = ConnectionSessionTests.session(ConnectionSessionTests.owner, state)
            _ = session.receive(request.encodedFrame(), now: 0) { _ in true }
            session.wipe()
            #expect(stops.value == 1)
            #expect(state.stopReason == expected)
        }
        #expect(DaemonState.StopReason.lastSessionDetached.logLine.contains("CCACHED_DETACH"))
        #expect(!DaemonState.StopReason.lastSessionDetached.logLine.contains("CCACHED_STOP"))
    }
}
