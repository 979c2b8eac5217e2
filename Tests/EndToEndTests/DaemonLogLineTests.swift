import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The lines a real daemon writes where the line itself is the behaviour under test.
@Suite("daemon log lines")
final class DaemonLogLineTests: TestbedSuite {
    override class var services: Int { 0 }

    @Test("the last login session's DETACH stops the daemon with its own reason, not as a CCACHED_STOP")
    func detachLogsItsReason() throws {
        let daemon = try #require(bed.daemon)
        let connection = try RawKCMConnection(path: bed.socketPath)
        #expect(try connection.call(.attachSession).status == .success)
        #expect(try connection.call(.detachSession).status == .success)
        #expect(eventually(10) { !daemon.isRunning }, "the daemon did not stop:\n\(bed.daemonLogText)")
        let log = bed.daemonLogText
        #expect(log.contains("stopping: the last login session detached (CCACHED_DETACH)"), "\(log)")
        #expect(!log.contains("CCACHED_STOP"), "\(log)")
    }
}
