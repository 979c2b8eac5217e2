import ArgumentParser
import KCM

/// `ccached-bench connect SOCKET`: the cost of a short-lived KCM client, as MIT's kvno pays it per
/// cached lookup (one connection per cache handle). Connects, sends `--requests` GET_DEFAULT_CACHE
/// one after the other (each answered before the next), closes; `--connections` times. Prints the
/// p50, p90 and p99 of one whole connection in microseconds. `scripts/connect-probe.sh` runs it
/// against several builds and Heimdal's kcm.
struct ConnectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect", abstract: "Time whole short-lived connections: connect, N requests, close.")

    @Argument(help: "The KCM socket.")
    var socket: String

    @Option(help: "Connections to time.")
    var connections: Int = 2000

    @Option(help: "GET_DEFAULT_CACHE requests on each connection.")
    var requests: Int = 1

    func validate() throws { try requirePositive(["--connections": connections, "--requests": requests]) }

    func run() throws {
        let frame = KCMRequest.getDefaultCache.encodedFrame()
        let figures = try ProbeSamples(timing: connections) {
            let client = try RawKCMClient.connecting(to: socket)
            for _ in 0..<requests {
                guard client.call(frame: frame) != nil else {
                    throw ValidationError("the server closed the connection or sent a bad reply")
                }
            }
            client.close()
        }
        print(
            "p50 \(NumberFormat.plain(figures.index(percent: 50), 1))  p90 \(NumberFormat.plain(figures.index(percent: 90), 1))"
                + "  p99 \(NumberFormat.plain(figures.index(percent: 99), 1)) µs")
    }
}
