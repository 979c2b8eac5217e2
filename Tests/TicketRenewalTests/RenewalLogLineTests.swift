import KCM
import Testing
import TicketRenewal

/// One log line per renewal, failure cause and stop; never a repeated cause.
@Suite("RenewalResult.logLine")
struct RenewalLogLineTests {
    let ticket = candidate(lifetime: 600, renewTill: start + 86_400)

    @Test("renewed, failed (first of its cause only), stopped")
    func lines() throws {
        var fields = try ticket.credential.decodeFields()
        fields.times.endtime = start + 1200
        let renewed = RenewalResult(candidate: ticket, outcome: .renewed(fields.credential()))
        let line = try #require(renewed.logLine)
        #expect(line.hasPrefix("renewed krbtgt/CCACHED.TEST@CCACHED.TEST in 1000: valid until 20"))
        #expect(line.contains(", renewable until 20"))

        let error = RenewalError(code: -1_765_328_228, message: "Cannot contact any KDC for realm 'CCACHED.TEST'")
        let first = RenewalResult(candidate: ticket, outcome: .failed(error, firstOfCause: true, retryAt: start + 10))
        #expect(
            first.logLine?.hasPrefix("renewal of krbtgt/CCACHED.TEST@CCACHED.TEST in 1000 failed, next attempt at 20")
                == true)
        #expect(first.logLine?.hasSuffix(": Cannot contact any KDC for realm 'CCACHED.TEST'") == true)
        let again = RenewalResult(candidate: ticket, outcome: .failed(error, firstOfCause: false, retryAt: start + 30))
        #expect(again.logLine == nil)
        let permanent = RenewalResult(candidate: ticket, outcome: .failed(error, firstOfCause: true, retryAt: nil))
        #expect(permanent.logLine?.contains("failed, not retried:") == true)

        let stopped = RenewalResult(candidate: ticket, outcome: .stopped(.renewTillReached))
        #expect(
            stopped.logLine?.hasPrefix(
                "renewal of krbtgt/CCACHED.TEST@CCACHED.TEST in 1000 stops: renewable lifetime reached (expires 20")
                == true)
    }
}
