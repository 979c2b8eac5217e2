import KCM
import Logging
import Synchronization
import Testing

@testable import CCacheDaemon
@testable import TicketRenewal

/// A renewal's log line names a cache and a ticket's server that a client chose: neither may
/// forge a second log line.
@Suite("renewal log lines")
struct RenewalLogTests {
    /// The level and the text a result reaches the log with: RenewalDuty's line, through the
    /// handler ccached logs through.
    static func logged(_ result: RenewalResult) -> (level: Logger.Level, message: String)? {
        guard let (level, line) = RenewalDuty.logged(result) else { return nil }
        // What reaches the handler behind EscapingLogHandler, at every level.
        let collected = RequestLogLevelTests.Collected()
        let logger = Logger(label: "ccached") {
            _ in EscapingLogHandler(RequestLogLevelTests.CollectingHandler(collected: collected, logLevel: .trace))
        }
        logger.log(level: level, "\(line)")
        return collected.lines.withLock { $0.last }.map { (level, $0.1) }
    }

    static func candidate(cache: String, server: String) -> RenewalCandidate {
        let now: UInt32 = 1_700_000_000
        let credential = KCMCredentialFields(
            client: KCMPrincipal("alice@CCACHED.TEST"), server: KCMPrincipal(server, nameType: 2),
            key: [UInt8](repeating: 7, count: 32),
            times: KCMTicketTimes(authtime: now, starttime: now, endtime: now + 600, renewTill: now + 86_400),
            ticketFlags: 0x0080_0000, ticket: [1, 2, 3]
        ).credential()
        return RenewalCandidate(
            cacheName: KCMCacheName(cache), cacheUUID: KCMUUID(high: 1, low: 1),
            credentialUUID: KCMUUID(high: 2, low: 1), credential: credential)
    }

    @Test("a cache name and a server principal with newlines and escapes are logged escaped")
    func escaped() throws {
        let forged = Self.candidate(
            cache: "1000:x\nccached[1]: renewed everything", server: "krbtgt/\u{1B}[31mX@CCACHED.TEST")
        let error = RenewalError(message: "Cannot contact any KDC for realm 'CCACHED.TEST'")
        let failed = RenewalResult(candidate: forged, outcome: .failed(error, firstOfCause: true, retryAt: nil))
        let (level, message) = try #require(Self.logged(failed))
        #expect(level == .warning)
        #expect(!message.contains("\n") && !message.contains("\u{1B}"), "\(message)")
        #expect(message.contains("in 1000:x\\nccached[1]: renewed everything failed"), "\(message)")
        #expect(message.contains("krbtgt/\\u{1b}[31mX@CCACHED.TEST"), "\(message)")

        let stopped = RenewalResult(candidate: forged, outcome: .stopped(.renewTillReached))
        #expect(Self.logged(stopped)?.level == .notice)
        #expect(Self.logged(stopped)?.message.contains("\n") == false)
    }

    @Test("an ordinary line is logged as the renewal engine wrote it")
    func plain() throws {
        let ticket = Self.candidate(cache: "1000", server: "krbtgt/CCACHED.TEST@CCACHED.TEST")
        let result = RenewalResult(candidate: ticket, outcome: .stopped(.renewTillReached))
        #expect(Self.logged(result)?.message == result.logLine)
    }
}
