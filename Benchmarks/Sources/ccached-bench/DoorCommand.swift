import ArgumentParser
import Glibc
import KCM
import SystemCalls

/// `ccached-bench door --direct PATH --door PATH`: connect-plus-first-reply through ccached-door
/// against a direct connection to the same daemon, and the per-request latency on a connection once
/// it is handed off (it must be the direct one). `scripts/bench-door.sh` sets up the door and runs
/// it. The client does blocking connect / NOOP / close, identically for both paths: its own cost is
/// in both figures, so the ratio understates the door's share slightly.
///
/// Prints medians and p90 in microseconds and the ratios; the last line is machine-readable:
/// `door-bench connect_direct_us=… connect_door_us=… connect_ratio=… request_direct_us=…
/// request_door_us=… request_ratio=…`.
struct DoorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "door", abstract: "Time connections and requests through ccached-door against direct ones.")

    @Option(help: "The daemon's own socket.")
    var direct: String

    @Option(help: "The door's socket.")
    var door: String

    @Option(help: "Connections to time on each path, alternating.")
    var connects: Int = 2000

    @Option(help: "NOOPs to time on one open connection of each kind.")
    var requests: Int = 20000

    func validate() throws { try requirePositive(["--connects": connects, "--requests": requests]) }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private static let noop = KCMRequest.noop.encodedFrame()

    /// A connection to `path`, or a failure that says why there is none.
    private static func connect(_ path: String) throws -> RawKCMClient {
        guard let client = RawKCMClient(socketPath: path) else {
            throw Failure(description: "cannot connect to \(path): \(Errno.current.message)")
        }
        return client
    }

    /// Connect, NOOP, its reply, close: microseconds until the reply was read.
    private func connectOnce(_ path: String) throws -> Double {
        let start = MonotonicClock.nanoseconds()
        let client = try Self.connect(path)
        try Self.noop(client)
        let elapsed = Double(MonotonicClock.nanoseconds() - start) / 1000
        client.close()
        return elapsed
    }

    private static func noop(_ client: RawKCMClient) throws {
        guard let reply = client.call(frame: noop) else { throw Failure(description: "the connection broke") }
        guard reply.effectiveStatus == .success else {
            throw Failure(description: "NOOP failed: \(reply.effectiveStatus)")
        }
    }

    /// `count` NOOPs on one connection, after the first (the hand-off happens before it is answered).
    private func requestsOn(_ path: String, _ count: Int) throws -> ProbeSamples {
        let client = try Self.connect(path)
        try Self.noop(client)
        return try ProbeSamples(timing: count) { try Self.noop(client) }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        _ = try connectOnce(door)  // starts root's daemon through the door
        for _ in 0..<50 {  // warm up
            _ = try connectOnce(door)
            _ = try connectOnce(direct)
        }
        var directTimes: [Double] = []
        var doorTimes: [Double] = []
        for _ in 0..<connects {  // interleaved, so machine noise hits both alike
            directTimes.append(try connectOnce(direct))
            doorTimes.append(try connectOnce(door))
        }
        let directRequests = try requestsOn(direct, requests)
        let doorRequests = try requestsOn(door, requests)
        let directConnects = ProbeSamples(directTimes)
        let doorConnects = ProbeSamples(doorTimes)
        func show(_ name: String, _ samples: ProbeSamples) {
            print(
                NumberFormat.pad(name, 42, right: false) + " median "
                    + NumberFormat.pad(NumberFormat.plain(samples.median, 1), 8) + " us   p90 "
                    + NumberFormat.pad(NumberFormat.plain(samples.lowerRank(0.9), 1), 8) + " us")
        }
        show("connect + first NOOP reply, direct (n=\(connects))", directConnects)
        show("connect + first NOOP reply, via the door", doorConnects)
        show("NOOP on an open connection, direct (n=\(requests))", directRequests)
        show("NOOP on a handed-off connection", doorRequests)
        let (cd, cr) = (directConnects.median, doorConnects.median)
        let (qd, qr) = (directRequests.median, doorRequests.median)
        func f(_ value: Double, _ digits: Int = 1) -> String { NumberFormat.plain(value, digits) }
        print("connect ratio door/direct \(f(cr / cd, 2)); per-request ratio after the hand-off \(f(qr / qd, 2))")
        print(
            "door-bench connect_direct_us=\(f(cd)) connect_door_us=\(f(cr)) connect_ratio=\(f(cr / cd, 2)) "
                + "request_direct_us=\(f(qd)) request_door_us=\(f(qr)) request_ratio=\(f(qr / qd, 2))")
    }
}
