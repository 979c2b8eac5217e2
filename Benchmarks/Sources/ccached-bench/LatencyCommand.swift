import ArgumentParser
import KCM

/// `ccached-bench latency --socket PATH`: `--requests` GET_DEFAULT_CACHE on one connection, each
/// answered before the next; prints `P50 P99` in microseconds on one line, for a script to read
/// (`scripts/bench-renewal.sh` times requests beside a renewal with it).
struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency", abstract: "Time requests on one open connection; print p50 and p99 in µs.")

    @OptionGroup var target: KCMSocketOption

    @Option(help: "Requests to time.")
    var requests: Int = 5000

    func validate() throws { try requirePositive(["--requests": requests]) }

    func run() throws {
        let client = try target.connect()
        let frame = KCMRequest.getDefaultCache.encodedFrame()
        let figures = try ProbeSamples(timing: requests) {
            guard client.call(frame: frame) != nil else { throw ValidationError("the connection broke") }
        }
        print(
            "\(NumberFormat.plain(figures.index(percent: 50), 1)) \(NumberFormat.plain(figures.index(percent: 99), 1))")
    }
}
