import ArgumentParser
import CKrb5
import Glibc
import SystemCalls

/// `ccached-bench worker`: one client process of a concurrency measurement. It fills its own cache
/// (or connects to the echo server), waits for the shared start instant, then retrieves random
/// credentials (or echoes) until the end instant, and prints `ops=<count> p50=<ns> late=<0|1>`.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Internal: one concurrent client process.", shouldDisplay: false)

    @Option(help: "A ccache name to fill and read (KCM:…, FILE:…, KEYRING:…, MEMORY:…).")
    var cache: String?

    @Option(help: "Instead of a cache: the echo server's socket.")
    var echo: String?

    @Option(help: "Credentials to store.")
    var count: Int = 100

    @Option(help: "Start instant, CLOCK_MONOTONIC nanoseconds.")
    var start: UInt64

    @Option(help: "How long to run, in milliseconds.")
    var durationMs: Int

    @Option(help: "Seed for the random picks.")
    var seed: UInt64 = 1

    func validate() throws {
        guard (cache == nil) != (echo == nil) else { throw ValidationError("give exactly one of --cache and --echo") }
    }

    func run() throws {
        let end = start + UInt64(durationMs) * 1_000_000
        var samples = LatencySamples(capacity: 1 << 16)
        var late = false
        if let echo {
            guard let client = EchoClient(socketPath: echo) else { throw ValidationError("cannot connect to \(echo)") }
            late = MonotonicClock.nanoseconds() > start
            MonotonicClock.sleep(until: start)
            while MonotonicClock.nanoseconds() < end {
                guard samples.measure({ client.roundTrip() }) else { throw ValidationError("echo connection broke") }
            }
        } else if let cache {
            let context = try Krb5Context()
            let credentials = try SyntheticCredentials(context: context, count: count)
            let handle = try context.resolve(cache)
            try context.check(handle.initialize(principal: credentials.client), "krb5_cc_initialize \(cache)")
            for index in 0..<count {
                try context.check(handle.store(credentials.credentials + index), "krb5_cc_store_cred \(cache)")
            }
            var random = SplitMix64(seed: seed)
            late = MonotonicClock.nanoseconds() > start
            MonotonicClock.sleep(until: start)
            while MonotonicClock.nanoseconds() < end {
                let template = credentials.templates + Int.random(in: 0..<count, using: &random)
                let code = samples.measure { handle.retrieve(flags: 0, template: template) }
                try context.check(code, "krb5_cc_retrieve_cred \(cache)")
            }
            _ = handle.destroy()
        }
        // No sample at all (the fill took past the end instant) reports p50 0 and late.
        let p50 = samples.isEmpty ? 0 : Int(samples.p50)
        print("ops=\(samples.count) p50=\(p50) late=\(late || samples.isEmpty ? 1 : 0)")
    }
}

/// Runs P worker processes at once and adds up what they did.
struct ThroughputRun {
    struct Result {
        let label: String
        let processes: Int
        let operationsPerSecond: Double
        /// The median of the workers' p50 latencies, in nanoseconds.
        let p50: Double
        let late: Bool
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `arguments(i)` gives worker i's target arguments (`--cache NAME` or `--echo PATH`).
    static func run(
        label: String, processes: Int, durationMilliseconds: Int, leadMilliseconds: Int = 400,
        arguments: (Int) -> [String]
    ) throws -> Result {
        let start = MonotonicClock.nanoseconds() + UInt64(leadMilliseconds) * 1_000_000
        let finished = try ChildProcess.runSubcommands(
            (0..<processes).map { index in
                ["worker"] + arguments(index) + [
                    "--start", "\(start)", "--duration-ms", "\(durationMilliseconds)", "--seed", "\(index + 1)",
                ]
            })
        var operations = 0
        var medians: [Double] = []
        var late = false
        var failures: [String] = []
        for worker in finished {
            var fields: [String: String] = [:]
            for pair in worker.output.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            guard worker.status == 0, let ops = fields["ops"].flatMap({ Int($0) }),
                let p50 = fields["p50"].flatMap({ Double($0) })
            else {
                failures.append("worker \(worker.pid) exited with status \(worker.status): \(worker.output)")
                continue
            }
            operations += ops
            medians.append(p50)
            if fields["late"] == "1" { late = true }
        }
        guard failures.isEmpty else { throw Failure(description: failures.joined(separator: "; ")) }
        medians.sort()
        return Result(
            label: label, processes: processes,
            operationsPerSecond: Double(operations) * 1000 / Double(durationMilliseconds),
            p50: medians.isEmpty ? .nan : medians[medians.count / 2], late: late)
    }
}
