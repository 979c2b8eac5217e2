import TestSupport
import Testing

@testable import CCacheDaemon

/// The daemon's background duties, driven by their `tick` with no clock, socket or thread.
@Suite("background duties")
struct BackgroundDutiesTests {
    @Test("idle exit fires after the whole limit of idle ticks, and any busy tick starts it over")
    func idleExit() {
        var exit = IdleExit(limit: 300)
        let steps: [(now: UInt64, idle: Bool, fires: Bool)] = [
            (1000, true, false), (1299, true, false), (1299, false, false), (1300, true, false),
            (1599, true, false), (1600, true, true),
        ]
        for step in steps {
            let fired = exit.tick(now: step.now, idle: step.idle)
            #expect(fired == step.fires, "at \(step.now), idle \(step.idle)")
        }
    }

    @Test("an idle limit of 0 never exits")
    func idleNever() {
        var exit = IdleExit(limit: 0)
        #expect(!exit.isEnabled)
        for now in stride(from: UInt64(0), to: 100_000, by: 997) {
            let fired = exit.tick(now: now, idle: true)
            #expect(!fired)
        }
    }

    @Test("the purge runs once per interval, and never with a grace of 0")
    func purge() {
        var schedule = PurgeSchedule(grace: 3600, interval: 60, now: 100)
        let steps: [(now: UInt64, due: Bool)] = [
            (159, false), (160, true), (161, false), (219, false), (250, true), (309, false), (310, true),
        ]
        for step in steps {
            let due = schedule.tick(now: step.now)
            #expect(due == step.due, "at \(step.now)")
        }
        var off = PurgeSchedule(grace: 0, interval: 60, now: 0)
        #expect(!off.isEnabled)
        let due = off.tick(now: 1_000_000)
        #expect(!due)
    }

    @Test("a purge interval of 0 is taken as one second, not a busy loop")
    func purgeIntervalZero() {
        var schedule = PurgeSchedule(grace: 10, interval: 0, now: 5)
        let steps: [(now: UInt64, due: Bool)] = [(5, false), (6, true), (6, false), (7, true)]
        for step in steps {
            let due = schedule.tick(now: step.now)
            #expect(due == step.due, "at \(step.now)")
        }
    }
}
