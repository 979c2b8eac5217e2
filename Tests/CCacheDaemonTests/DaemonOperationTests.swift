import CredentialStore
import KCM
import Synchronization
import Testing

@testable import CCacheDaemon

/// The daemon's own operations reach the daemon only through ``DaemonOperations``: the dispatcher
/// answers them from whatever provides it, and says which answers stop the daemon.
@Suite("Daemon operations")
struct DaemonOperationTests {
    /// A daemon of pid 4321 with `sessions` login sessions attached, and a real status.
    final class Fake: DaemonOperations, Sendable {
        let sessions: Atomic<Int>
        let real = DaemonState(configuration: DaemonConfiguration(socketPath: "/unused", ownerUID: 1000))
        init(sessions: Int) { self.sessions = Atomic(sessions) }
        func status() -> KCMDaemonStatus { real.status() }
        func renewalState() -> KCMRenewalState { KCMRenewalState(worker: .init(enabled: false, queued: 7)) }
        var processID: UInt32 { 4321 }
        func attachSession() -> Int { sessions.add(1, ordering: .relaxed).newValue }
        func detachSession() -> Int { sessions.subtract(1, ordering: .relaxed).newValue }
    }

    @Test("STOP, ATTACH, DETACH and RENEWAL_STATE are answered from the operations the dispatcher is given")
    func answeredFromTheOperations() throws {
        let daemon = Fake(sessions: 1)
        #expect(try RequestDispatcher.perform(.stop, daemon: daemon).asStoppingPID() == 4321)
        #expect(try RequestDispatcher.perform(.attachSession, daemon: daemon).asAttachedSessions() == 2)
        #expect(try RequestDispatcher.perform(.detachSession, daemon: daemon).asAttachedSessions() == 1)
        #expect(try RequestDispatcher.perform(.renewalState, daemon: daemon).asRenewalState().worker.queued == 7)
        #expect(try RequestDispatcher.perform(.status, daemon: daemon).asDaemonStatus().ownerUID == 1000)
    }

    @Test("only STOP and the DETACH that leaves no session stop the daemon once answered")
    func stopReasons() {
        #expect(DaemonOperation.stop.stopReason(after: .stopping(pid: 1)) == .stopAsked)
        #expect(DaemonOperation.detachSession.stopReason(after: .attachedSessions(0)) == .lastSessionDetached)
        #expect(DaemonOperation.detachSession.stopReason(after: .attachedSessions(1)) == nil)
        #expect(DaemonOperation.attachSession.stopReason(after: .attachedSessions(0)) == nil)
        #expect(DaemonOperation.status.stopReason(after: .empty) == nil)
    }

    @Test("only WATCH and RENEW wait; an unsupported opcode is refused when routed")
    func routes() throws {
        guard case .waiting(.watch) = try RequestRoute(.watch(KCMWatch.Request(timeoutMilliseconds: 1))) else {
            Issue.record("WATCH does not wait")
            return
        }
        guard case .waiting(.renew) = try RequestRoute(.renew(KCMRenew.Request())) else {
            Issue.record("RENEW does not wait")
            return
        }
        guard case .daemon(.detachSession) = try RequestRoute(.detachSession) else {
            Issue.record("DETACH is not the daemon's")
            return
        }
        guard case .store = try RequestRoute(.getDefaultCache) else {
            Issue.record("GET_DEFAULT_CACHE is not the store's")
            return
        }
        #expect(throws: RequestFailure.unsupportedOpcode(13)) { try RequestRoute(.unsupported(opcode: 13)) }
    }
}
