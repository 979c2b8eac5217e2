import ArgumentParser
import CSupport
import Glibc
import KCM
import SystemCalls

/// `ccached-bench coldstart --bin DIR`: ccached's cold start as `run` measures it (issue 14), alone:
/// from the exec of `ccached --socket PATH` until PATH accepts a connection, polling every 50 µs;
/// then, on that first connection, until the daemon has answered a NOOP (the kernel accepts as soon
/// as the socket listens; the answer needs the daemon's main loop).
///
/// Each run starts a fresh daemon on a new socket and keeps it running, as `run` does (40 daemons
/// up together); all are stopped with SIGTERM at the end. Prints the median and p99 in
/// milliseconds and the load average, so that a figure is never quoted without the load it was
/// taken under.
struct ColdStartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coldstart", abstract: "Time ccached from exec to a connectable socket and to its first reply.")

    @OptionGroup var build: CCachedBuildOption

    @Option(help: "Daemons to start.")
    var runs: Int = 40

    @Option(help: "A CPU to pin this process and the daemons to.")
    var pin: Int?

    @Option(help: "Seconds one start may take.")
    var timeout: Double = 10

    func validate() throws { try requirePositive(["--runs": runs]) }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        // Inherited by every daemon started below, as `run --pin-cpu` does.
        if let pin, !CPUAffinity.restrict(to: [pin]) { throw ValidationError("cannot pin to CPU \(pin)") }
        let workspace = try Workspace.create()
        defer { workspace.remove() }
        let log = open(workspace.path + "/ccached.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer {
            close(log)
            close(null)
        }
        var daemons: [ChildProcess] = []
        defer {
            for daemon in daemons { kill(daemon.pid, SIGTERM) }
            for daemon in daemons { daemon.wait() }
        }
        let noop = KCMRequest.noop.encodedFrame()
        let limit = UInt64(timeout * 1e9)
        var connectable: [Double] = []
        var answered: [Double] = []
        for index in 0..<runs {
            let path = workspace.path + "/cold-\(index)/socket"
            let started = MonotonicClock.nanoseconds()
            let daemon = try ChildProcess.spawn(
                build.ccachedPath, ["--socket", path], standardOutput: null, standardError: log)
            daemons.append(daemon)
            while true {
                if let fd = UnixSocketClient.connect(path) {
                    connectable.append(Double(MonotonicClock.nanoseconds() - started))
                    _ = ccached_socket_timeouts(fd, Int32(timeout * 1000))
                    let client = RawKCMClient(connected: fd)
                    guard let reply = client.call(frame: noop), reply.effectiveStatus == .success else {
                        throw ValidationError("ccached accepted on \(path) but did not answer NOOP")
                    }
                    client.close()
                    answered.append(Double(MonotonicClock.nanoseconds() - started))
                    break
                }
                if daemon.hasExited() {
                    throw ValidationError(
                        "ccached exited before \(path) accepted connections; see \(workspace.path)/ccached.log")
                }
                if MonotonicClock.nanoseconds() - started > limit {
                    throw ValidationError("\(path) did not accept connections within \(timeout) s")
                }
                MonotonicClock.sleep(microseconds: 50)
            }
        }
        let start = ProbeSamples(connectable)
        let reply = ProbeSamples(answered)
        func ms(_ nanoseconds: Double) -> String { NumberFormat.plain(nanoseconds / 1e6, 2) }
        let load = (ProcessMemory.readText("/proc/loadavg") ?? "").split(separator: " ").prefix(3).joined(
            separator: " ")
        let placement = pin.map { "pinned to CPU \($0)" } ?? "unpinned"
        print(
            "cold start, \(start.count) runs, \(placement): median \(ms(start.nearestRank(0.5))) ms, "
                + "p99 \(ms(start.nearestRank(0.99))) ms, min \(ms(start.sorted[0])) ms; first reply median "
                + "\(ms(reply.nearestRank(0.5))) ms, p99 \(ms(reply.nearestRank(0.99))) ms (load average \(load))")
    }
}
