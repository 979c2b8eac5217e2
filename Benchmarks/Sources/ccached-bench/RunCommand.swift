import ArgumentParser
import CKrb5
import Glibc
import SystemCalls

/// The benchmark itself: starts its own ccached, its peers (Heimdal kcm, sssd-kcm), the replay bound
/// and an echo server, measures every cache type in alternating rounds, prints the table and writes
/// JSON lines.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the benchmark (the default sub-command).")

    @OptionGroup var build: CCachedBuildOption

    @Option(help: "quick (N = 10, 100, 1,000; about a minute) or full (adds 10,000 and more samples).")
    var profile: BenchProfile = .quick

    @Option(help: "Where to write the results as JSON lines.")
    var json: String = "bench-results/latest.jsonl"

    @Option(help: "Cache types to measure, comma-separated (default: all).")
    var types: String = CacheKind.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Credential counts instead of the profile's, comma-separated.")
    var counts: String?

    @Flag(help: "Skip the concurrency measurement.")
    var noConcurrency = false

    @Option(
        help: """
            The CPU that the latency measurements (the bench, its echo server and every server) share, \
            'last', or 'none' (the default: unpinned, as users run). The concurrency measurement always \
            uses every CPU.
            """)
    var pinCpu: String = "none"

    @Option(help: "Rounds per cell; the cache types take turns in a rotating order, each round.")
    var rounds: Int = 3

    @Option(help: "Where scripts/bench-deps.sh unpacked heimdal-kcm and sssd-kcm (the directory holding usr/).")
    var peers: String?

    @Option(help: ArgumentHelp("ccached's --log-level (debug logs every request: slow).", visibility: .hidden))
    var daemonLogLevel: String = "info"

    @Option(
        help: ArgumentHelp(
            "A command to run ccached under, e.g. 'valgrind --tool=callgrind' (profiling).", visibility: .hidden))
    var daemonWrapper: String?

    @Flag(help: ArgumentHelp("Keep the temporary directory (ccached.log) and print its path.", visibility: .hidden))
    var keepWorkspace = false

    /// The CPU to pin latency measurements to, or nil.
    var pinnedCPU: Int? {
        if pinCpu == "none" { return nil }
        if pinCpu == "last" { return CPUAffinity.allCPUs.last }
        return Int(pinCpu)
    }

    func validate() throws {
        if pinCpu != "none", pinCpu != "last", Int(pinCpu) == nil {
            throw ValidationError("--pin-cpu takes a CPU number, 'last' or 'none'")
        }
        try requirePositive(["--rounds": rounds])
        for name in types.split(separator: ",") where CacheKind(rawValue: name.uppercased()) == nil {
            throw ValidationError(
                "unknown cache type '\(name)' (\(CacheKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let workspace = try Workspace.create()
        defer { keepWorkspace ? print("workspace kept: \(workspace.path)") : workspace.remove() }
        // libkrb5 reads KRB5_CONFIG when a context is made; workers inherit it.
        setenv("KRB5_CONFIG", workspace.krb5ConfigPath, 1)
        unsetenv("KRB5CCNAME")

        var results = BenchResults(profile: profile, machine: .current())
        if let cpu = pinnedCPU {
            if CPUAffinity.restrict(to: [cpu]) {
                results.pinnedCPU = cpu
            } else {
                results.problems.append("could not pin to CPU \(cpu); latencies are unpinned")
            }
        }
        let kinds = CacheKind.allCases.filter { kind in
            types.split(separator: ",").contains { $0.uppercased() == kind.rawValue }
        }
        let ns = counts.map { $0.split(separator: ",").compactMap { Int($0) } } ?? profile.credentialCounts

        progress("cold start of ccached")
        try measureColdStart(workspace, into: &results)
        measureCcachectl(workspace, into: &results)

        progress("floor: raw Unix-socket echo")
        let echo = try DaemonProcess.start(
            ChildProcess.currentExecutable, ["echo-server", "--socket", workspace.echoSocketPath],
            socketPath: workspace.echoSocketPath)
        defer { echo.stop() }
        guard let client = EchoClient(socketPath: workspace.echoSocketPath) else {
            throw ValidationError("cannot connect to the echo server")
        }
        for _ in 0..<500 { _ = client.roundTrip() }
        for _ in 0..<profile.echoRoundTrips { _ = results.floor.measure { client.roundTrip() } }

        let context = try Krb5Context()
        if kinds.contains(.keyring), let reason = keyringRefusal(context) {
            results.skipped[.keyring] = reason
            print("skipped KEYRING: \(reason)")
        }
        for kind in [CacheKind.heimdal, .sssd] where kinds.contains(kind) {
            if let reason = PeerDaemon(kind: kind, unpackedRoot: peers).unavailableReason {
                results.skipped[kind] = reason
                print("skipped \(kind.rawValue) (\(kind.title)): \(reason)")
            }
        }
        results.rounds = rounds
        let credentialSets = try ns.map { try SyntheticCredentials(context: context, count: $0) }
        for round in 0..<rounds {
            for credentials in credentialSets {
                let n = credentials.count
                // A rotating order, so that no type always runs first (cold) or right after another.
                let active = kinds.filter { results.skipped[$0] == nil }
                let order = active.indices.map { active[($0 + round) % active.count] }
                for kind in order {
                    if kind == .sssd && n > sssdLimit {
                        if round == 0 {
                            results.problems.append(
                                "SSSD N=\(n) not run: sssd-kcm takes tens of ms per request at N = 1,000"
                                    + " (this profile stops it at N = \(sssdLimit))")
                        }
                        continue
                    }
                    progress("round \(round + 1)/\(rounds): \(kind.rawValue), N = \(n)")
                    try measure(
                        kind, credentials: credentials, context: context, workspace: workspace, round: round,
                        into: &results)
                }
            }
        }

        if !noConcurrency {
            try measureConcurrency(kinds, workspace: workspace, into: &results)
        }

        let report = BenchReport(results: results)
        print("")
        print(report.table)
        try writeLines(report.jsonLines, to: json)
        print("\nresults: \(json)")
    }

    private func progress(_ text: String) {
        let seconds = NumberFormat.fixed(Double(MonotonicClock.nanoseconds()) / 1e9, 1)
        let line = "… [\(seconds) s] \(text)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }

    // MARK: - Cache phases

    /// sssd-kcm is not run past this N (its per-request cost grows with the cache: tens of ms per
    /// store at 1,000, so three rounds of N = 1,000 alone take many minutes).
    var sssdLimit: Int { profile == .quick ? 100 : 1000 }

    private func measure(
        _ kind: CacheKind, credentials: SyntheticCredentials, context: Krb5Context, workspace: Workspace, round: Int,
        into results: inout BenchResults
    ) throws {
        let n = credentials.count
        // A fresh server per N and round, so that its memory growth is this N's credentials alone.
        let servers = try startServers(kind, workspace: workspace, tag: "\(n)-\(round)")
        defer { for server in servers.processes.reversed() { server.stop() } }
        let kindContext = try servers.configPath.map { path throws in try Self.context(configPath: path) } ?? context
        var benchmark = CacheBenchmark(
            context: kindContext, kind: kind, credentials: credentials, profile: profile,
            cacheName: kind.cacheName(tag: "\(n)", directory: workspace.path))
        var idle: ProcessMemory?
        var before: ProcessMemory?
        var after: ProcessMemory?
        if let daemon = servers.measured {
            // Every KCM server gets the same echo round trip before each timed store and retrieve,
            // so that none of them runs warmer than another (the probe displaces the server's thread
            // on a shared CPU). ccached's floor ratios use it; the others' probes are not reported.
            benchmark.floorProbe = EchoClient(socketPath: workspace.echoSocketPath)
            if kind == .kcm || kind == .bound { benchmark.rawSocketPath = daemon.socketPath }
            idle = daemon.memory
            benchmark.afterInitialize = { before = daemon.memory }
            benchmark.afterStore = { after = daemon.memory }
        }
        var outcome = try benchmark.run()
        for index in outcome.phases.indices { outcome.phases[index].round = round }
        results.phases += outcome.phases
        let key = "\(kind.rawValue)/\(n)"
        results.verified[key] = (results.verified[key] ?? true) && outcome.iterationVerified
        results.problems += outcome.problems.map { rounds > 1 ? "round \(round + 1): \($0)" : $0 }
        if round == 0, kind != .bound, let idle, let before, let after {
            results.daemonMemory.append(.init(kind: kind, n: n, idle: idle, beforeLoad: before, afterLoad: after))
        }
    }

    /// The processes behind one KCM-server cache type, the one whose memory is reported, and the
    /// krb5.conf that points libkrb5 at it (nil: the workspace's, which names ccached's socket).
    private struct Servers {
        var processes: [DaemonProcess] = []
        var measured: DaemonProcess?
        var configPath: String?
    }

    private func startServers(_ kind: CacheKind, workspace: Workspace, tag: String) throws -> Servers {
        var servers = Servers()
        switch kind {
        case .kcm:
            let daemon = try startDaemon(workspace)
            servers.processes = [daemon]
            servers.measured = daemon
        case .heimdal, .sssd:
            let directory = workspace.path + "/\(kind.rawValue.lowercased())-\(tag)"
            let daemon = try PeerDaemon(kind: kind, unpackedRoot: peers).start(
                in: directory, logPath: workspace.path + "/\(kind.rawValue.lowercased()).log")
            servers.processes = [daemon]
            servers.measured = daemon
            servers.configPath = try workspace.writeKCMConfig(
                name: "krb5-\(kind.rawValue)-\(tag).conf", socket: daemon.socketPath)
        case .bound:
            // ccached behind the replay stand-in: ccached answers each request the first time.
            try Workspace.makeDirectories(workspace.path + "/bound-\(tag)")
            let upstream = workspace.path + "/bound-\(tag)/ccached/socket"
            let daemon = try startDaemon(workspace, socket: upstream)
            servers.processes = [daemon]
            let socket = workspace.path + "/bound-\(tag)/replay.socket"
            let replay = try DaemonProcess.start(
                ChildProcess.currentExecutable, ["replay-server", "--socket", socket, "--upstream", upstream],
                socketPath: socket)
            servers.processes.append(replay)
            servers.measured = replay
            servers.configPath = try workspace.writeKCMConfig(name: "krb5-BOUND-\(tag).conf", socket: socket)
        default:
            break
        }
        return servers
    }

    /// A context whose profile is `configPath` (libkrb5 reads KRB5_CONFIG when a context is made).
    private static func context(configPath: String) throws -> Krb5Context {
        let saved = getenv("KRB5_CONFIG").map { String(cString: $0) }
        setenv("KRB5_CONFIG", configPath, 1)
        defer { if let saved { setenv("KRB5_CONFIG", saved, 1) } else { unsetenv("KRB5_CONFIG") } }
        return try Krb5Context()
    }

    private func startDaemon(_ workspace: Workspace, socket: String? = nil) throws -> DaemonProcess {
        let socket = socket ?? workspace.kcmSocketPath
        if let daemonWrapper {
            let words = daemonWrapper.split(separator: " ").map(String.init)
            return try DaemonProcess.start(
                words[0], Array(words.dropFirst()) + [build.ccachedPath, "--socket", socket],
                socketPath: socket, logPath: workspace.path + "/ccached.log", timeoutSeconds: 60)
        }
        return try DaemonProcess.start(
            build.ccachedPath, ["--socket", socket, "--log-level", daemonLogLevel], socketPath: socket,
            logPath: workspace.path + "/ccached.log")
    }

    /// Why the kernel refuses a keyring ccache, or nil if it works.
    private func keyringRefusal(_ context: Krb5Context) -> String? {
        do {
            let probe = try context.resolve("KEYRING:process:bench-probe")
            let client = try context.principal(SyntheticCredentials.clientName)
            defer { krb5_free_principal(context.raw, client) }
            try context.check(probe.initialize(principal: client), "krb5_cc_initialize KEYRING:process:bench-probe")
            _ = probe.destroy()
            return nil
        } catch {
            return error.description
        }
    }

    // MARK: - Start-up

    /// Starts `coldStarts` daemons one after another and keeps them all running, then reads each
    /// one's private memory: the idle cost per daemon with that many sessions on the machine.
    private func measureColdStart(_ workspace: Workspace, into results: inout BenchResults) throws {
        var daemons: [DaemonProcess] = []
        defer { for daemon in daemons { daemon.stop() } }
        for index in 0..<profile.coldStarts {
            let socket = workspace.path + "/cold-\(index)/socket"
            let daemon = try DaemonProcess.start(
                build.ccachedPath, ["--socket", socket], socketPath: socket, logPath: workspace.path + "/ccached.log")
            daemons.append(daemon)
            results.coldStart.add(daemon.startupNanoseconds)
        }
        // Each daemon once touched by a client (the socket probe), none holding credentials.
        results.idlePrivateBytes = daemons.compactMap { $0.memory?.privateBytes }
    }

    /// `ccachectl status` with no daemon running: it spawns one (CCACHED_SOCKET names the socket).
    private func measureCcachectl(_ workspace: Workspace, into results: inout BenchResults) {
        let ccachectl = build.bin + "/ccachectl"
        guard access(ccachectl, X_OK) == 0 else {
            results.ccachectlNote = "skipped: ccachectl not built"
            return
        }
        progress("cold start of ccachectl status")
        let runs = 10
        for index in 0..<runs {
            let socket = workspace.path + "/ctl-\(index)/socket"
            setenv("CCACHED_SOCKET", socket, 1)
            defer { unsetenv("CCACHED_SOCKET") }
            let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
            defer { close(null) }
            let started = MonotonicClock.nanoseconds()
            guard let child = try? ChildProcess.spawn(ccachectl, ["status"], standardOutput: null, standardError: null)
            else {
                results.ccachectlNote = "failed: cannot start \(ccachectl)"
                return
            }
            let status = child.wait()
            let elapsed = MonotonicClock.nanoseconds() - started
            // The daemon it spawned is not our child: find it by the socket's peer and stop it.
            let daemonPID = UnixSocketClient.listenerPID(socket)
            if let daemonPID, daemonPID > 0 {
                kill(daemonPID, SIGTERM)
                let deadline = MonotonicClock.nanoseconds() + 5_000_000_000
                while kill(daemonPID, 0) == 0 && MonotonicClock.nanoseconds() < deadline {
                    MonotonicClock.sleep(microseconds: 200)
                }
            }
            guard status == 0 else {
                results.ccachectlNote = "failed: ccachectl status exited with status \(status)"
                return
            }
            results.ccachectlStatus.add(elapsed)
        }
    }

    // MARK: - Concurrency

    private func measureConcurrency(_ kinds: [CacheKind], workspace: Workspace, into results: inout BenchResults)
        throws
    {
        let duration = profile.throughputMilliseconds
        for round in 0..<rounds {
            if results.pinnedCPU != nil {
                // One client sharing the pinned CPU with its server: the single-client reference
                // without cross-CPU wake-ups, so that P=2 / P=1 cannot flatter the daemon.
                progress("round \(round + 1)/\(rounds): concurrency: floor and KCM, P = 1 on the pinned CPU")
                results.throughput.append(
                    try ThroughputRun.run(label: "floor pinned", processes: 1, durationMilliseconds: duration) { _ in
                        ["--echo", workspace.echoSocketPath]
                    })
                if kinds.contains(.kcm) {
                    let daemon = try startDaemon(workspace)
                    defer { daemon.stop() }
                    results.throughput.append(
                        try ThroughputRun.run(label: "KCM pinned", processes: 1, durationMilliseconds: duration) {
                            ["--cache", CacheKind.kcm.cacheName(tag: "worker-pinned-\($0)", directory: workspace.path)]
                        })
                }
            }
            // Every CPU from here on, for the processes started below; pinned again afterwards.
            CPUAffinity.restrict(to: CPUAffinity.allCPUs)
            defer { if let cpu = results.pinnedCPU { CPUAffinity.restrict(to: [cpu]) } }
            let echoSocket = workspace.path + "/echo-concurrent-\(round).socket"
            let echo = try DaemonProcess.start(
                ChildProcess.currentExecutable, ["echo-server", "--socket", echoSocket], socketPath: echoSocket)
            defer { echo.stop() }
            for processes in [1, 2, 4] {
                progress("round \(round + 1)/\(rounds): concurrency: floor, P = \(processes)")
                results.throughput.append(
                    try ThroughputRun.run(label: "floor", processes: processes, durationMilliseconds: duration) { _ in
                        ["--echo", echoSocket]
                    })
            }
            // Not the replay bound: it is single-threaded by design, a bound for one client only.
            let active = kinds.filter { results.skipped[$0] == nil && $0 != .bound }
            for offset in active.indices {
                let kind = active[(offset + round) % active.count]
                let servers = try startServers(kind, workspace: workspace, tag: "concurrent-\(round)")
                defer { for server in servers.processes.reversed() { server.stop() } }
                // Workers inherit the environment: point their libkrb5 at this server.
                let saved = getenv("KRB5_CONFIG").map { String(cString: $0) }
                if let path = servers.configPath { setenv("KRB5_CONFIG", path, 1) }
                defer { if let saved { setenv("KRB5_CONFIG", saved, 1) } }
                for processes in [1, 2, 4] {
                    progress("round \(round + 1)/\(rounds): concurrency: \(kind.rawValue), P = \(processes)")
                    // Each worker fills its 100 credentials before the start instant: sssd-kcm
                    // stores take tens of ms each, one request at a time, so it gets a longer lead.
                    let lead = kind == .sssd ? 400 + processes * 100 * 60 : 400
                    results.throughput.append(
                        try ThroughputRun.run(
                            label: kind.rawValue, processes: processes, durationMilliseconds: duration,
                            leadMilliseconds: lead
                        ) {
                            ["--cache", kind.cacheName(tag: "worker-\(processes)-\($0)", directory: workspace.path)]
                        })
                }
            }
        }
    }

    // MARK: - Output

    private func writeLines(_ lines: [String], to path: String) throws {
        if let slash = path.lastIndex(of: "/") {
            try Workspace.makeDirectories(String(path[..<slash]))
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot write \(path): \(Errno.current.message)") }
        defer { close(fd) }
        let text = lines.joined(separator: "\n") + "\n"
        let ok = text.withCString { UnixSocketClient.writeAll(fd, $0, strlen($0)) }
        guard ok else { throw ValidationError("cannot write \(path): \(Errno.current.message)") }
    }
}
