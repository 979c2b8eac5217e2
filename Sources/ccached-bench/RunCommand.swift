import ArgumentParser
import CKrb5
import Glibc

/// The benchmark itself: starts its own ccached and echo server, measures every cache type, prints
/// the table and writes JSON lines.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the benchmark (the default sub-command).")

    @Option(help: "The directory holding the ccached binary (and ccachectl, when built).")
    var bin: String

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
            The CPU that the latency measurements (the bench, its echo server and ccached) share, or \
            'none'. Default: the last CPU. The concurrency measurement always uses every CPU.
            """)
    var pinCpu: String?

    @Option(help: ArgumentHelp("ccached's --log-level (debug logs every request: slow).", visibility: .hidden))
    var daemonLogLevel: String = "info"

    @Option(
        help: ArgumentHelp(
            "A command to run ccached under, e.g. 'valgrind --tool=callgrind' (profiling).", visibility: .hidden))
    var daemonWrapper: String?

    @Flag(help: ArgumentHelp("Keep the temporary directory (ccached.log) and print its path.", visibility: .hidden))
    var keepWorkspace = false

    var ccachedPath: String { bin + "/ccached" }

    /// The CPU to pin latency measurements to, or nil.
    var pinnedCPU: Int? {
        if pinCpu == "none" { return nil }
        if let pinCpu { return Int(pinCpu) }
        return CPUAffinity.allCPUs.last
    }

    func validate() throws {
        if let pinCpu, pinCpu != "none", Int(pinCpu) == nil {
            throw ValidationError("--pin-cpu takes a CPU number or 'none'")
        }
        guard access(ccachedPath, X_OK) == 0 else {
            throw ValidationError("no executable ccached in \(bin) (build it with: swift build -c release)")
        }
        for name in types.split(separator: ",") where CacheKind(rawValue: name.uppercased()) == nil {
            throw ValidationError("unknown cache type '\(name)' (KCM, FILE, KEYRING, MEMORY)")
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
        for n in ns {
            let credentials = try SyntheticCredentials(context: context, count: n)
            for kind in kinds where results.skipped[kind] == nil {
                progress("\(kind.rawValue), N = \(n)")
                try measure(kind, credentials: credentials, context: context, workspace: workspace, into: &results)
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
        let line = "… \(text)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }

    // MARK: - Cache phases

    private func measure(
        _ kind: CacheKind, credentials: SyntheticCredentials, context: Krb5Context, workspace: Workspace,
        into results: inout BenchResults
    ) throws {
        let n = credentials.count
        var benchmark = CacheBenchmark(
            context: context, kind: kind, credentials: credentials, profile: profile,
            cacheName: kind.cacheName(tag: "\(n)", directory: workspace.path))
        var daemon: DaemonProcess?
        // A fresh daemon per N, so that its memory growth is this N's credentials alone.
        if kind == .kcm {
            daemon = try startDaemon(workspace)
        }
        defer { daemon?.stop() }
        var idle: ProcessMemory?
        var before: ProcessMemory?
        var after: ProcessMemory?
        if let daemon {
            benchmark.rawSocketPath = daemon.socketPath
            benchmark.floorProbe = EchoClient(socketPath: workspace.echoSocketPath)
            idle = daemon.memory
            benchmark.afterInitialize = { before = daemon.memory }
            benchmark.afterStore = { after = daemon.memory }
        }
        let outcome = try benchmark.run()
        results.phases += outcome.phases
        results.verified["\(kind.rawValue)/\(n)"] = outcome.iterationVerified
        results.problems += outcome.problems
        if let idle, let before, let after {
            results.daemonMemory.append(.init(n: n, idle: idle, beforeLoad: before, afterLoad: after))
        }
    }

    private func startDaemon(_ workspace: Workspace) throws -> DaemonProcess {
        if let daemonWrapper {
            let words = daemonWrapper.split(separator: " ").map(String.init)
            return try DaemonProcess.start(
                words[0], Array(words.dropFirst()) + [ccachedPath, "--socket", workspace.kcmSocketPath],
                socketPath: workspace.kcmSocketPath, logPath: workspace.path + "/ccached.log", timeoutSeconds: 60)
        }
        return try DaemonProcess.start(
            ccachedPath, ["--socket", workspace.kcmSocketPath, "--log-level", daemonLogLevel],
            socketPath: workspace.kcmSocketPath,
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

    private func measureColdStart(_ workspace: Workspace, into results: inout BenchResults) throws {
        for index in 0..<profile.coldStarts {
            let socket = workspace.path + "/cold-\(index)/socket"
            let daemon = try DaemonProcess.start(
                ccachedPath, ["--socket", socket], socketPath: socket, logPath: workspace.path + "/ccached.log")
            results.coldStart.add(daemon.startupNanoseconds)
            daemon.stop()
        }
    }

    /// `ccachectl status` with no daemon running: it spawns one (CCACHED_SOCKET names the socket).
    private func measureCcachectl(_ workspace: Workspace, into results: inout BenchResults) {
        let ccachectl = bin + "/ccachectl"
        guard access(ccachectl, X_OK) == 0 else {
            results.ccachectlNote = "skipped: ccachectl not built"
            return
        }
        progress("cold start of ccachectl status")
        let runs = max(5, profile.coldStarts / 2)
        for index in 0..<runs {
            let socket = workspace.path + "/ctl-\(index)/socket"
            setenv("CCACHED_SOCKET", socket, 1)
            defer { unsetenv("CCACHED_SOCKET") }
            let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
            defer { close(null) }
            let started = MonotonicClock.now()
            guard let child = try? ChildProcess.spawn(ccachectl, ["status"], standardOutput: null, standardError: null)
            else {
                results.ccachectlNote = "failed: cannot start \(ccachectl)"
                return
            }
            let status = child.wait()
            let elapsed = MonotonicClock.now() - started
            // The daemon it spawned is not our child: find it by the socket's peer and stop it.
            let daemonPID = UnixSocketClient.listenerPID(socket)
            if let daemonPID, daemonPID > 0 {
                kill(daemonPID, SIGTERM)
                let deadline = MonotonicClock.now() + 5_000_000_000
                while kill(daemonPID, 0) == 0 && MonotonicClock.now() < deadline {
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
        if results.pinnedCPU != nil {
            // One client sharing the pinned CPU with its server: the single-client reference
            // without cross-CPU wake-ups, so that P=2 / P=1 cannot flatter the daemon.
            progress("concurrency: floor and KCM, P = 1 on the pinned CPU")
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
        let echoSocket = workspace.path + "/echo-concurrent.socket"
        let echo = try DaemonProcess.start(
            ChildProcess.currentExecutable, ["echo-server", "--socket", echoSocket], socketPath: echoSocket)
        defer { echo.stop() }
        for processes in [1, 2, 4] {
            progress("concurrency: floor, P = \(processes)")
            results.throughput.append(
                try ThroughputRun.run(label: "floor", processes: processes, durationMilliseconds: duration) { _ in
                    ["--echo", echoSocket]
                })
        }
        for kind in kinds where results.skipped[kind] == nil {
            let daemon = kind == .kcm ? try startDaemon(workspace) : nil
            defer { daemon?.stop() }
            for processes in [1, 2, 4] {
                progress("concurrency: \(kind.rawValue), P = \(processes)")
                results.throughput.append(
                    try ThroughputRun.run(label: kind.rawValue, processes: processes, durationMilliseconds: duration) {
                        ["--cache", kind.cacheName(tag: "worker-\(processes)-\($0)", directory: workspace.path)]
                    })
            }
        }
    }

    // MARK: - Output

    private func writeLines(_ lines: [String], to path: String) throws {
        if let slash = path.lastIndex(of: "/") {
            try Workspace.makeDirectories(String(path[..<slash]))
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let text = lines.joined(separator: "\n") + "\n"
        let ok = text.withCString { UnixSocketClient.writeAll(fd, $0, strlen($0)) }
        guard ok else { throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}
