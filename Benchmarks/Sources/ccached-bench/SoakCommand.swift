import ArgumentParser
import Glibc
import KCM
import SystemCalls

/// `ccached-bench soak --socket PATH --pid PID`: the soak benchmark's load (`scripts/soak.sh` starts
/// the daemon). Several client processes (this program again, as `soak-client`) send mixed KCM
/// requests to one ccached. The run is cut into phases; after each, every client has destroyed its
/// caches and the daemon is idle, and its memory is sampled: equal logical state at every sample,
/// so growth between samples is what the daemon failed to give back.
///
/// Prints one line per phase (phase, requests so far, VmRSS KiB, Private_Dirty KiB), then a summary.
struct SoakCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak", abstract: "Mixed KCM requests from several clients; the daemon's memory between phases.")

    @OptionGroup var target: KCMSocketOption

    @Option(help: "The daemon's pid (its memory is read from /proc).")
    var pid: Int32

    @Option(help: "Requests in all.")
    var requests: Int = 1_000_000

    @Option(help: "Client processes per phase.")
    var clients: Int = 4

    @Option(help: "Phases (memory is sampled after each).")
    var phases: Int = 20

    @Option(help: "Phases before the baseline sample.")
    var warmupPhases: Int = 2

    func validate() throws {
        try requirePositive(["--clients": clients, "--phases": phases])
        guard requests >= clients * phases else {
            throw ValidationError("--requests takes at least one per client and phase")
        }
        guard (0...phases).contains(warmupPhases) else {
            throw ValidationError("--warmup-phases is between 0 and --phases")
        }
    }

    struct Sample {
        let phase: Int
        let requests: Int
        let rssKiB: Int
        let dirtyKiB: Int
    }

    func sample(phase: Int, requests: Int) throws -> Sample {
        guard let memory = ProcessMemory.of(pid) else { throw ValidationError("ccached (pid \(pid)) is gone") }
        return Sample(
            phase: phase, requests: requests, rssKiB: memory.residentBytes / 1024,
            dirtyKiB: memory.privateDirtyBytes / 1024)
    }

    func run() throws {
        let perClient = requests / (clients * phases)
        var total = 0
        var errors = 0
        var samples = [try sample(phase: 0, requests: 0)]
        func show(_ sample: Sample) {
            print(
                NumberFormat.pad("\(sample.phase)", 5) + "  " + NumberFormat.pad("\(sample.requests)", 8) + "  "
                    + NumberFormat.pad("\(sample.rssKiB)", 7) + "  " + NumberFormat.pad("\(sample.dirtyKiB)", 17))
            fflush(nil)
        }
        print("phase  requests  rss_kib  private_dirty_kib")
        show(samples[0])
        for phase in 1...phases {
            let finished = try ChildProcess.runSubcommands(
                (0..<clients).map { client in
                    [
                        "soak-client", "--socket", target.socket, "--client", "\(client)", "--phase", "\(phase)",
                        "--count", "\(perClient)",
                    ]
                })
            for client in finished {
                let fields = client.output.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
                guard client.status == 0, fields.count == 2 else {
                    throw ValidationError("soak: a client failed (wait status \(client.status)): \(client.output)")
                }
                total += fields[0]
                errors += fields[1]
            }
            samples.append(try sample(phase: phase, requests: total))
            show(samples[phase])
        }
        let warm = samples[warmupPhases]
        let last = samples[phases]
        let peak = samples[warmupPhases...].map(\.rssKiB).max() ?? 0
        func signed(_ value: Int) -> String { value >= 0 ? "+\(value)" : "\(value)" }
        print(
            "summary: \(total) requests (\(errors) answered with an error status) from \(clients) clients; "
                + "after warm-up (phase \(warmupPhases), \(warm.requests) requests): RSS \(warm.rssKiB) -> \(last.rssKiB) KiB "
                + "(\(signed(last.rssKiB - warm.rssKiB))), Private_Dirty \(warm.dirtyKiB) -> \(last.dirtyKiB) KiB "
                + "(\(signed(last.dirtyKiB - warm.dirtyKiB))); peak RSS after warm-up \(peak) KiB")
    }
}

/// `ccached-bench soak-client`: one client of one soak phase. Sends `--count` mixed requests over one
/// connection (a new connection every 200 cycles: accept and teardown are part of the soak), then
/// destroys its caches; prints `SENT ERRORS`.
struct SoakClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak-client", abstract: "Internal: one client of a soak phase.", shouldDisplay: false)

    @OptionGroup var target: KCMSocketOption

    @Option(help: "This client's number (names its caches and principals).")
    var client: Int

    @Option(help: "The phase (seeds the random bytes).")
    var phase: Int

    @Option(help: "Requests to send.")
    var count: Int

    static let realm = Array("SOAK.TEST".utf8)

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        var random = SplitMix64(seed: UInt64(client) &* 1_000_003 &+ UInt64(phase))
        func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) } }
        var connection = try target.connect()
        var sent = 0
        var errors = 0
        func call(_ request: KCMRequest) throws -> (status: KCMStatus, payload: [UInt8]) {
            guard let reply = connection.call(request) else { throw ValidationError("ccached closed the connection") }
            return (reply.header.effectiveStatus, reply.payload)
        }
        let names = (0..<4).map { KCMCacheName("\(getuid()):soak\(client)-\($0)") }
        let me = KCMPrincipal(nameType: 1, realm: Self.realm, components: [Array("user\(client)".utf8)])
        let now: UInt32 = 1_900_000_000
        var cycle = 0
        while sent < count {
            let name = names[cycle % names.count]
            let servers = (0..<3).map {
                KCMPrincipal(
                    nameType: 3, realm: Self.realm,
                    components: [Array("host".utf8), Array("h\(client)-\(cycle % 50)-\($0).soak.test".utf8)])
            }
            var steps: [KCMRequest] = [.initialize(name: name, principal: me)]
            for server in servers {
                let fields = KCMCredentialFields(
                    client: me, server: server, enctype: 18, key: bytes(32),
                    times: KCMTicketTimes(authtime: now, starttime: now, endtime: now + 36000, renewTill: now + 86400),
                    ticketFlags: 0x0081_0000,
                    addresses: [.init(type: 2, data: [0x7F, 0, 0, 1])],
                    ticket: bytes([200, 1000, 4000][Int(random.next() % 3)]))
                steps.append(.store(name: name, credential: fields.credential()))
            }
            steps += [
                .getPrincipal(name: name),
                .getCredUUIDList(name: name),
                .retrieve(name: name, flags: [], template: KCMMatchTemplate(client: me, server: servers[0])),
                .removeCred(name: name, flags: [], template: KCMMatchTemplate(client: me, server: servers[1])),
                .getCredList(name: name),
                .setKDCOffset(name: name, offset: Int32(cycle % 7)),
                .getKDCOffset(name: name),
                .getCacheUUIDList,
                .getDefaultCache,
                .genNew,
                .daemonStatus,
            ]
            if cycle % 3 == 2 { steps.append(.destroy(name: name)) }
            for request in steps {
                let reply = try call(request)
                sent += 1
                if reply.status != .success { errors += 1 }
                if case .getCredUUIDList = request, reply.status == .success, reply.payload.count >= 16 {
                    var reader = KCMReader(reply.payload)
                    _ = try call(.getCredByUUID(name: name, uuid: try reader.readUUID()))
                    sent += 1
                }
            }
            cycle += 1
            if cycle % 200 == 0 {
                connection.close()
                connection = try target.connect()
            }
        }
        for name in names { _ = try call(.destroy(name: name)) }  // KRB5_FCC_NOFILE for one already gone: fine
        connection.close()
        print("\(sent) \(errors)")
    }
}
