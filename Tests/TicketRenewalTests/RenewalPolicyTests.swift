import KCM
import Testing

@testable import TicketRenewal

/// A generator that returns a fixed sequence, so a jittered delay is known exactly.
struct ScriptedRandom: RandomNumberGenerator {
    var values: [UInt64]
    var index = 0
    init(_ values: [UInt64]) { self.values = values }
    mutating func next() -> UInt64 {
        defer { index += 1 }
        return values[index % values.count]
    }
}

/// A renewable TGT that started at `start`, lives `lifetime` seconds and may be renewed until `renewTill`.
func tgtTimes(start: UInt32 = 1_000_000, lifetime: UInt32 = 36_000, renewTill: UInt32? = nil, flags: UInt32? = nil)
    -> RenewalTimes
{
    RenewalTimes(
        times: KCMTicketTimes(
            authtime: start, starttime: start, endtime: start + lifetime, renewTill: renewTill ?? start + 7 * 86_400),
        ticketFlags: flags ?? (RenewalTimes.renewableFlag | 0x0040_0000), isTicketGrantingTicket: true)
}

@Suite("RenewalPolicy")
struct RenewalPolicyTests {
    let policy = try! RenewalPolicy()

    @Test("a 10-hour TGT is due when a third of its lifetime remains")
    func thresholdOfLongTicket() {
        let times = tgtTimes(lifetime: 36_000)
        #expect(policy.decide(times, now: 1_000_000) == .due(at: 1_000_000 + 24_000))
        // Still the same answer later on: the due time does not move with the clock.
        #expect(policy.decide(times, now: 1_030_000) == .due(at: 1_024_000))
    }

    @Test("a custom threshold fraction moves the due time")
    func customThreshold() throws {
        let half = try RenewalPolicy(thresholdFraction: 0.5)
        #expect(half.decide(tgtTimes(lifetime: 36_000), now: 1_000_000) == .due(at: 1_018_000))
        let tenth = try RenewalPolicy(thresholdFraction: 0.1)
        #expect(tenth.decide(tgtTimes(lifetime: 36_000), now: 1_000_000) == .due(at: 1_032_400))
    }

    @Test("the margin wins when it is larger than the threshold's remainder")
    func marginWins() throws {
        // 1 hour: a third is 1200 s; a 30-minute margin asks for 1800 s remaining.
        let policy = try RenewalPolicy(margin: 1800)
        #expect(policy.decide(tgtTimes(lifetime: 3600), now: 1_000_000) == .due(at: 1_000_000 + 1800))
        // A 5-minute margin leaves the threshold in charge.
        let small = try RenewalPolicy(margin: 300)
        #expect(small.decide(tgtTimes(lifetime: 3600), now: 1_000_000) == .due(at: 1_000_000 + 2400))
    }

    @Test("a ticket shorter than the margin is renewed at half-life, never immediately")
    func shortTicketNoBusyLoop() {
        // kinit -l 20s: the 300 s margin would make it due at once; half-life is the floor.
        let times = tgtTimes(lifetime: 20)
        #expect(policy.decide(times, now: 1_000_000) == .due(at: 1_000_010))
        // A 3-minute ticket: the one-minute minimum interval applies (half-life would be 90 s).
        #expect(policy.decide(tgtTimes(lifetime: 180), now: 1_000_000) == .due(at: 1_000_060))
        // A 1-second ticket: still at least one second after its start.
        #expect(policy.decide(tgtTimes(lifetime: 1), now: 1_000_000) == .due(at: 1_000_001))
    }

    @Test("a ticket without a start time starts at its authtime")
    func authtimeAsStart() {
        var times = tgtTimes(lifetime: 36_000)
        times.times.starttime = 0
        #expect(times.times.start == 1_000_000)
        #expect(policy.decide(times, now: 1_000_000) == .due(at: 1_024_000))
    }

    @Test("not renewable: no RENEWABLE flag, or no renew-till")
    func notRenewable() {
        #expect(policy.decide(tgtTimes(flags: 0x0040_0000), now: 1_000_000) == .never(.notRenewable))
        var noTill = tgtTimes()
        noTill.times.renewTill = 0
        #expect(policy.decide(noTill, now: 1_000_000) == .never(.notRenewable))
    }

    @Test("renew_till at or before the end time: a renewal would not extend it")
    func renewTillReached() {
        #expect(
            policy.decide(tgtTimes(lifetime: 600, renewTill: 1_000_600), now: 1_000_100) == .never(.renewTillReached))
        #expect(
            policy.decide(tgtTimes(lifetime: 600, renewTill: 1_000_500), now: 1_000_100) == .never(.renewTillReached))
        // One second beyond: still worth renewing.
        #expect(policy.decide(tgtTimes(lifetime: 600, renewTill: 1_000_601), now: 1_000_100) == .due(at: 1_000_300))
    }

    @Test("an expired ticket is never renewed (a KDC refuses it)")
    func expired() {
        #expect(policy.decide(tgtTimes(lifetime: 600), now: 1_000_600) == .never(.expired))
        #expect(policy.decide(tgtTimes(lifetime: 600), now: 2_000_000) == .never(.expired))
        #expect(policy.decide(tgtTimes(lifetime: 600), now: 1_000_599) == .due(at: 1_000_300))
    }

    @Test("a postdated ticket still marked invalid needs validation, not renewal")
    func invalid() {
        let flags = RenewalTimes.renewableFlag | RenewalTimes.invalidFlag
        #expect(policy.decide(tgtTimes(flags: flags), now: 1_000_000) == .never(.invalid))
    }

    @Test("service tickets are renewed unless switched off")
    func serviceTickets() throws {
        var times = tgtTimes()
        times.isTicketGrantingTicket = false
        #expect(policy.decide(times, now: 1_000_000) == .due(at: 1_024_000))
        let tgtOnly = try RenewalPolicy(renewsServiceTickets: false)
        #expect(tgtOnly.decide(times, now: 1_000_000) == .never(.excluded))
        #expect(tgtOnly.decide(tgtTimes(), now: 1_000_000) == .due(at: 1_024_000))
    }

    @Test("a failure's retry time holds the next attempt back; a retry before the due time changes nothing")
    func failureDelaysAttempt() {
        let times = tgtTimes(lifetime: 36_000)
        let later = RenewalFailureState(consecutiveFailures: 1, retryAt: 1_024_500, lastCause: "x")
        #expect(policy.decide(times, now: 1_024_100, failure: later) == .due(at: 1_024_500))
        let earlier = RenewalFailureState(consecutiveFailures: 1, retryAt: 1_000_050, lastCause: "x")
        #expect(policy.decide(times, now: 1_000_060, failure: earlier) == .due(at: 1_024_000))
    }

    @Test("back-off doubles from the first delay to the cap, each drawn between half and all of it")
    func backoffRanges() throws {
        let policy = try RenewalPolicy(initialBackoff: 10, maximumBackoff: 600)
        #expect(policy.backoffRange(afterFailures: 1) == 5...10)
        #expect(policy.backoffRange(afterFailures: 2) == 10...20)
        #expect(policy.backoffRange(afterFailures: 3) == 20...40)
        #expect(policy.backoffRange(afterFailures: 6) == 160...320)
        #expect(policy.backoffRange(afterFailures: 7) == 300...600)
        #expect(policy.backoffRange(afterFailures: 8) == 300...600)
        #expect(policy.backoffRange(afterFailures: 10_000) == 300...600)
        #expect(policy.backoffRange(afterFailures: .max) == 300...600)
        // Never zero, even with a one-second first delay.
        let tiny = try RenewalPolicy(initialBackoff: 1, maximumBackoff: 1)
        #expect(tiny.backoffRange(afterFailures: 1) == 1...1)
        #expect(tiny.backoffRange(afterFailures: 50) == 1...1)
    }

    @Test("a failure draws its delay from the injected generator and counts failures in a row")
    func failedUsesRandom() throws {
        let policy = try RenewalPolicy(initialBackoff: 10, maximumBackoff: 600)
        var low = ScriptedRandom([1])
        var high = ScriptedRandom([.max])
        let first = policy.failed(after: nil, cause: "Cannot contact any KDC", now: 5_000, using: &low)
        #expect(
            first == RenewalFailureState(consecutiveFailures: 1, retryAt: 5_005, lastCause: "Cannot contact any KDC"))
        let firstHigh = policy.failed(after: nil, cause: "c", now: 5_000, using: &high)
        #expect(firstHigh.retryAt == 5_010)
        let second = policy.failed(after: first, cause: "c", now: 5_005, using: &high)
        #expect(second.consecutiveFailures == 2)
        #expect(second.retryAt == 5_025)
        // Every draw of many stays inside the range, and the draws are not all the same (jitter).
        var system = SystemRandomNumberGenerator()
        var delays = Set<UInt32>()
        for _ in 0..<200 {
            let state = policy.failed(after: second, cause: "c", now: 10_000, using: &system)
            #expect((10_020...10_040).contains(state.retryAt))
            delays.insert(state.retryAt)
        }
        #expect(delays.count > 1)
    }

    @Test("repeated failures never make an attempt due sooner than the first delay's half")
    func noBusyLoopAfterFailures() throws {
        let policy = try RenewalPolicy(initialBackoff: 10, maximumBackoff: 600)
        let times = tgtTimes(lifetime: 36_000)
        var now: UInt32 = 1_024_000
        var failure: RenewalFailureState?
        var random = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            failure = policy.failed(after: failure, cause: "down", now: now, using: &random)
            guard case .due(let at) = policy.decide(times, now: now, failure: failure) else {
                Issue.record("expected a due time")
                return
            }
            #expect(at >= now + 5)
            now = at
        }
        #expect(failure!.consecutiveFailures == 20)
    }

    @Test("times near the end of the u32 range do not overflow")
    func overflow() throws {
        let times = RenewalTimes(
            times: KCMTicketTimes(authtime: .max - 10, starttime: .max - 10, endtime: .max - 1, renewTill: .max),
            ticketFlags: RenewalTimes.renewableFlag,
            isTicketGrantingTicket: true)
        #expect(policy.decide(times, now: .max - 9) == .due(at: .max - 6))
        var random = ScriptedRandom([.max])
        let failure = try RenewalPolicy(initialBackoff: 600).failed(
            after: nil, cause: "c", now: .max - 5, using: &random)
        #expect(failure.retryAt == .max)
    }

    @Test("options out of range are refused with a message naming the option")
    func invalidOptions() {
        #expect(throws: RenewalPolicyError.threshold(0)) { try RenewalPolicy(thresholdFraction: 0) }
        #expect(throws: RenewalPolicyError.threshold(1)) { try RenewalPolicy(thresholdFraction: 1) }
        #expect(throws: RenewalPolicyError.threshold(-0.5)) { try RenewalPolicy(thresholdFraction: -0.5) }
        #expect(throws: RenewalPolicyError.initialBackoff(0)) { try RenewalPolicy(initialBackoff: 0) }
        #expect(throws: RenewalPolicyError.maximumBackoff(5, initial: 10)) {
            try RenewalPolicy(initialBackoff: 10, maximumBackoff: 5)
        }
        #expect(RenewalPolicyError.threshold(2).description.contains("--renew-threshold"))
    }

    @Test("times are read from stored v4 bytes, and krbtgt servers are told from service tickets")
    func timesFromCredential() {
        let tgt = KCMCredentialFields(
            client: KCMPrincipal("alice@R"), server: KCMPrincipal("krbtgt/R@R", nameType: 2),
            times: KCMTicketTimes(authtime: 10, starttime: 11, endtime: 100, renewTill: 1000), ticketFlags: 0x0080_0000
        ).credential()
        #expect(
            RenewalTimes(tgt)
                == RenewalTimes(
                    times: KCMTicketTimes(authtime: 10, starttime: 11, endtime: 100, renewTill: 1000),
                    ticketFlags: 0x0080_0000,
                    isTicketGrantingTicket: true))
        let service = KCMCredentialFields(client: KCMPrincipal("alice@R"), server: KCMPrincipal("host/krbtgt@R"))
            .credential()
        #expect(!RenewalTimes(service).isTicketGrantingTicket)
        let oneComponent = KCMCredentialFields(client: KCMPrincipal("alice@R"), server: KCMPrincipal("krbtgt@R"))
            .credential()
        #expect(!RenewalTimes(oneComponent).isTicketGrantingTicket)
        let lookalike = KCMCredentialFields(client: KCMPrincipal("alice@R"), server: KCMPrincipal("krbtgtx/R@R"))
            .credential()
        #expect(!RenewalTimes(lookalike).isTicketGrantingTicket)
    }
}
