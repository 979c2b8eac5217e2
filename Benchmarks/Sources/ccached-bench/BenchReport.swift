/// Renders a run as the table on standard output and as JSON lines.
struct BenchReport {
    let results: BenchResults

    // MARK: - Table

    var table: String {
        var out: [String] = []
        let m = results.machine
        out.append(
            "ccached-bench, profile \(results.profile.rawValue): \(m.processors) CPUs, \(m.cpuModel), \(m.kernel)")
        out.append(
            results.pinnedCPU.map {
                "Latencies: client, echo server and every server pinned to CPU \($0); concurrency: all CPUs."
            } ?? "Latencies: unpinned (client and servers placed by the kernel, as users run).")
        out.append(
            "Each cell: the median over \(results.rounds) rounds of each round's p50, in µs, and (low–high) the"
                + " lowest and highest round p50; types take turns in a rotating order.")
        out.append("")
        let floor = results.floor
        out.append(
            "Floor (raw Unix-socket echo, 64-byte messages, 1 client): p50 \(NumberFormat.microseconds(floor.p50)) µs, "
                + "p99 \(NumberFormat.microseconds(floor.p99)) µs, \(NumberFormat.rate(floor.operationsPerSecond)) round trips/s"
        )
        for (kind, reason) in results.skipped.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            out.append("skipped \(kind.rawValue): \(reason)")
        }
        let kinds = CacheKind.allCases.filter { kind in results.phases.contains { $0.kind == kind } }
        let width = 24
        for n in results.credentialCounts {
            out.append("")
            out.append("N = \(NumberFormat.grouped(n)) credentials   (p50 µs, median of rounds (low–high))")
            var header = NumberFormat.pad("phase", 24, right: false)
            for kind in kinds { header += NumberFormat.pad(kind.title, width) }
            out.append(header)
            for phase in Phase.allCases {
                var line = NumberFormat.pad(phase.title, 24, right: false)
                for kind in kinds {
                    guard let result = results.phase(kind, n, phase) else {
                        line += NumberFormat.pad(phase == .rawCredentialList ? "" : "–", width)
                        continue
                    }
                    if result.samples.isEmpty {
                        line += NumberFormat.pad(result.note?.hasPrefix("n/a") == true ? "n/a (NOSUPP)" : "–", width)
                        continue
                    }
                    if phase == .rawCredentialList, result.note?.hasPrefix("KRB5_CC_NOSUPP") == true {
                        line += NumberFormat.pad("NOSUPP (> 10 MiB)", width)
                        continue
                    }
                    line += NumberFormat.pad(cell(kind, n, phase), width)
                }
                out.append(line)
            }
            if let raw = results.phase(.kcm, n, .rawCredentialList), let bulk = raw.floor {
                out.append(
                    NumberFormat.pad("  bulk echo, same size", 24, right: false)
                        + NumberFormat.pad("\(NumberFormat.microseconds(bulk.p50))", width))
            }
            let floors = [Phase.store, .retrieve, .retrieveNameOnly].compactMap {
                results.phase(.kcm, n, $0)?.floor?.p50
            }
            if !floors.isEmpty {
                out.append(
                    "floor p50 alternating with ccached's store / retrieve / name-only (round 1): "
                        + floors.map { NumberFormat.microseconds($0) }.joined(separator: " / ") + " µs")
            }
        }
        if kinds.contains(.bound) {
            out.append(
                "(bound: a stand-in that replays ccached's recorded reply to a repeated read-only request; only"
                    + " rows made of repeats — iterate, GET_CRED_LIST, retrieve at small N — are a bound.)")
        }
        out.append("")
        out.append(
            "ccached against its peers: ratios of the median p50s (x /Heimdal, /bound: ccached over it, < 1 is"
                + " faster; sssd/KCM: how many times faster ccached is)")
        out += ratioTable(
            columns: [
                "retr /Heimdal", "store /Heimdal", "remove /Heimdal", "iter /Heimdal", "retr sssd/KCM",
                "store sssd/KCM", "iter sssd/KCM", "iter /bound",
            ], peerRatios)
        out.append("")
        out.append("(iterate: a sample is one whole iteration; its ops/s counts credentials.)")
        out.append("")
        out.append("Ratios of median p50s (KCM = ccached; x/floor uses the floor sampled alternately with x)")
        out += ratioTable(
            columns: [
                "retr/floor", "nameonly/floor", "store/floor", "retr KCM/FILE", "retr KCM/KEYRING", "iter KCM/MEMORY",
                "iter KCM/FILE", "MIT client/MEM",
            ], ratios)
        out.append(
            "(MIT client/MEM: the part of a KCM iteration spent in libkrb5 itself — iterate minus raw GET_CRED_LIST"
                + " minus one floor round trip for GET_KDC_OFFSET — over the whole MEMORY iteration.)")
        if !results.throughput.isEmpty {
            out.append("")
            out.append(
                "Concurrent client processes, each on its own cache of 100 (retrieve, flags 0; echo for the floor)")
            out.append("('pinned': one client on the pinned CPU with its server; the others may use every CPU)")
            out.append("(each cell: the median round's aggregate ops/s, (its p50 µs), [lowest–highest round ops/s])")
            var header = NumberFormat.pad("type", 16, right: false)
            for p in [1, 2, 4] { header += NumberFormat.pad("P=\(p) ops/s (p50 µs) [range]", 34) }
            header += NumberFormat.pad("P=2 / P=1", 12)
            out.append(header)
            for label in ["floor pinned", "floor", "KCM pinned"] + CacheKind.allCases.map(\.rawValue) {
                guard results.throughput(label, processes: 1) != nil else { continue }
                var line = NumberFormat.pad(label, 16, right: false)
                for p in [1, 2, 4] {
                    let all = results.throughputRounds(label, processes: p).map(\.operationsPerSecond)
                    let cell = results.throughput(label, processes: p).map {
                        "\(NumberFormat.rate($0.operationsPerSecond)) (\(NumberFormat.microseconds($0.p50)))"
                            + ($0.late ? "!" : "")
                            + " [\(NumberFormat.rate(all.min() ?? .nan))–\(NumberFormat.rate(all.max() ?? .nan))]"
                    }
                    line += NumberFormat.pad(cell ?? "–", 34)
                }
                if !label.hasSuffix("pinned"), let one = results.throughput(label, processes: 1),
                    let two = results.throughput(label, processes: 2)
                {
                    line += NumberFormat.pad(NumberFormat.ratio(two.operationsPerSecond / one.operationsPerSecond), 12)
                }
                out.append(line)
            }
        }
        if !results.daemonMemory.isEmpty {
            out.append("")
            out.append("Server memory (fresh daemon per N, round 1; private = Private_Clean + Private_Dirty)")
            out.append(
                NumberFormat.pad("server", 16, right: false) + NumberFormat.pad("N", 8)
                    + NumberFormat.pad("idle RSS", 12) + NumberFormat.pad("idle private", 14)
                    + NumberFormat.pad("loaded RSS", 12) + NumberFormat.pad("loaded priv.", 14)
                    + NumberFormat.pad("B/ticket", 10) + NumberFormat.pad("cred bytes", 12))
            for memory in results.daemonMemory {
                out.append(
                    NumberFormat.pad(memory.kind.title, 16, right: false)
                        + NumberFormat.pad(NumberFormat.grouped(memory.n), 8)
                        + NumberFormat.pad(NumberFormat.mebibytes(memory.idle.residentBytes), 12)
                        + NumberFormat.pad(NumberFormat.mebibytes(memory.idle.privateBytes), 14)
                        + NumberFormat.pad(NumberFormat.mebibytes(memory.afterLoad.residentBytes), 12)
                        + NumberFormat.pad(NumberFormat.mebibytes(memory.afterLoad.privateBytes), 14)
                        + NumberFormat.pad(NumberFormat.fixed(memory.privateBytesPerCredential, 0), 10)
                        + NumberFormat.pad(
                            NumberFormat.fixed(BenchResults.meanEncodedCredentialBytes(n: memory.n), 0), 12))
            }
        }
        out.append("")
        if !results.coldStart.isEmpty {
            out.append(
                "ccached cold start (exec → socket connectable), \(results.coldStart.count) runs: median "
                    + NumberFormat.fixed(results.coldStart.p50 / 1e6, 2) + " ms, p99 "
                    + NumberFormat.fixed(results.coldStart.p99 / 1e6, 2) + " ms")
        }
        if let note = results.ccachectlNote {
            out.append("ccachectl status with no daemon: \(note)")
        } else if !results.ccachectlStatus.isEmpty {
            out.append(
                "ccachectl status with no daemon (spawn included), \(results.ccachectlStatus.count) runs: median "
                    + NumberFormat.fixed(results.ccachectlStatus.p50 / 1e6, 2) + " ms")
        }
        out.append("")
        out.append("Targets")
        for check in targets {
            let verdict = check.holds.map { $0 ? "holds" : "MISSED" } ?? "n/a"
            out.append(
                "  [\(NumberFormat.pad(verdict, 6, right: false))] \(check.name): \(check.measured) (limit \(check.limit))"
            )
        }
        if !results.problems.isEmpty {
            out.append("")
            out.append("Problems")
            for problem in results.problems { out.append("  " + problem) }
        }
        return out.joined(separator: "\n")
    }

    private var targets: [TargetCheck] { results.targets }

    /// "median (low–high)" for one cell, in µs.
    private func cell(_ kind: CacheKind, _ n: Int, _ phase: Phase) -> String {
        let median = NumberFormat.microseconds(results.p50(kind, n, phase))
        guard let spread = results.spread(kind, n, phase), results.rounds(kind, n, phase).count > 1 else {
            return median
        }
        return "\(median) (\(NumberFormat.microseconds(spread.low))–\(NumberFormat.microseconds(spread.high)))"
    }

    /// A header of `columns` after `N`, then one line per credential count of `values(n)`.
    private func ratioTable(columns: [String], _ values: (_ n: Int) -> [(String, Double)]) -> [String] {
        var header = NumberFormat.pad("N", 8)
        for column in columns { header += NumberFormat.pad(column, 17) }
        return [header]
            + results.credentialCounts.map { n in
                var line = NumberFormat.pad(NumberFormat.grouped(n), 8)
                for value in values(n) { line += NumberFormat.pad(NumberFormat.ratio(value.1), 17) }
                return line
            }
    }

    private func peerRatios(n: Int) -> [(String, Double)] {
        let r = results
        return [
            ("retrieve_kcm_over_heimdal", r.ratio(.kcm, over: .heimdal, n, .retrieve)),
            ("store_kcm_over_heimdal", r.ratio(.kcm, over: .heimdal, n, .store)),
            ("remove_kcm_over_heimdal", r.ratio(.kcm, over: .heimdal, n, .remove)),
            ("iterate_kcm_over_heimdal", r.ratio(.kcm, over: .heimdal, n, .iterate)),
            ("retrieve_sssd_over_kcm", r.ratio(.sssd, over: .kcm, n, .retrieve)),
            ("store_sssd_over_kcm", r.ratio(.sssd, over: .kcm, n, .store)),
            ("iterate_sssd_over_kcm", r.ratio(.sssd, over: .kcm, n, .iterate)),
            ("iterate_kcm_over_bound", r.ratio(.kcm, over: .bound, n, .iterate)),
        ]
    }

    private func ratios(n: Int) -> [(String, Double)] {
        let r = results
        return [
            ("retrieve_over_floor", r.floorRatio(n, .retrieve)),
            ("retrieve_nameonly_over_floor", r.floorRatio(n, .retrieveNameOnly)),
            ("store_over_floor", r.floorRatio(n, .store)),
            ("retrieve_kcm_over_file", r.p50(.kcm, n, .retrieve) / r.p50(.file, n, .retrieve)),
            ("retrieve_kcm_over_keyring", r.p50(.kcm, n, .retrieve) / r.p50(.keyring, n, .retrieve)),
            ("iterate_kcm_over_memory", r.p50(.kcm, n, .iterate) / r.p50(.memory, n, .iterate)),
            ("iterate_kcm_over_file", r.p50(.kcm, n, .iterate) / r.p50(.file, n, .iterate)),
            ("iterate_mit_client_share_over_memory", r.clientShareOfIteration(n) / r.p50(.memory, n, .iterate)),
        ]
    }

    // MARK: - JSON lines

    var jsonLines: [String] {
        var lines: [JSONLine] = []
        var machine = JSONLine(record: "machine")
        machine.add("profile", results.profile.rawValue)
        machine.add("processors", results.machine.processors)
        machine.add("cpu_model", results.machine.cpuModel)
        machine.add("kernel", results.machine.kernel)
        machine.add("pinned_cpu", results.pinnedCPU)
        machine.add("rounds", results.rounds)
        lines.append(machine)

        var floor = JSONLine(record: "floor")
        floor.add(results.floor)
        lines.append(floor)

        for (kind, reason) in results.skipped {
            var line = JSONLine(record: "skipped")
            line.add("type", kind.rawValue)
            line.add("reason", reason)
            lines.append(line)
        }
        for result in results.phases {
            var line = JSONLine(record: "phase")
            line.add("type", result.kind.rawValue)
            line.add("n", result.n)
            line.add("phase", result.phase.rawValue)
            line.add("round", result.round)
            line.add(result.samples, itemsPerSample: result.itemsPerSample)
            line.add("items_per_sample", result.itemsPerSample)
            line.add("floor_p50_us", result.floor.map { $0.p50 / 1000 })
            if result.phase == .iterate {
                line.add("verified", results.verified["\(result.kind.rawValue)/\(result.n)"])
            }
            line.add("note", result.note)
            lines.append(line)
        }
        // One line per cell: the figures the table shows (median of the round p50s and its range).
        for n in results.credentialCounts {
            for kind in CacheKind.allCases {
                for phase in Phase.allCases {
                    guard let spread = results.spread(kind, n, phase) else { continue }
                    var line = JSONLine(record: "cell")
                    line.add("type", kind.rawValue)
                    line.add("n", n)
                    line.add("phase", phase.rawValue)
                    line.add("rounds", results.rounds(kind, n, phase).count)
                    line.add("median_p50_us", results.p50(kind, n, phase) / 1000)
                    line.add("low_p50_us", spread.low / 1000)
                    line.add("high_p50_us", spread.high / 1000)
                    lines.append(line)
                }
            }
        }
        if !results.idlePrivateBytes.isEmpty {
            var line = JSONLine(record: "idle_memory")
            line.add("daemons", results.idlePrivateBytes.count)
            line.add("median_private_bytes", Int(BenchResults.median(results.idlePrivateBytes.map(Double.init))))
            line.add("max_private_bytes", results.idlePrivateBytes.max())
            lines.append(line)
        }
        for n in results.credentialCounts {
            for (name, value) in ratios(n: n) + peerRatios(n: n) {
                var line = JSONLine(record: "ratio")
                line.add("name", name)
                line.add("n", n)
                line.add("value", value)
                lines.append(line)
            }
        }
        for result in results.throughput {
            var line = JSONLine(record: "throughput")
            line.add("type", result.label)
            line.add("processes", result.processes)
            line.add("ops_per_s", result.operationsPerSecond)
            line.add("p50_us", result.p50 / 1000)
            line.add("late_start", result.late)
            lines.append(line)
        }
        for memory in results.daemonMemory {
            var line = JSONLine(record: "daemon_memory")
            line.add("type", memory.kind.rawValue)
            line.add("n", memory.n)
            line.add("idle_rss_bytes", memory.idle.residentBytes)
            line.add("idle_private_bytes", memory.idle.privateBytes)
            line.add("before_rss_bytes", memory.beforeLoad.residentBytes)
            line.add("before_private_bytes", memory.beforeLoad.privateBytes)
            line.add("after_rss_bytes", memory.afterLoad.residentBytes)
            line.add("after_private_bytes", memory.afterLoad.privateBytes)
            line.add("private_bytes_per_credential", memory.privateBytesPerCredential)
            line.add("encoded_credential_bytes", BenchResults.meanEncodedCredentialBytes(n: memory.n))
            line.add("ticket_bytes", SyntheticCredentials.ticketSize)
            lines.append(line)
        }
        if !results.coldStart.isEmpty {
            var line = JSONLine(record: "cold_start")
            line.add("program", "ccached")
            line.add("samples", results.coldStart.count)
            line.add("p50_ms", results.coldStart.p50 / 1e6)
            line.add("p99_ms", results.coldStart.p99 / 1e6)
            lines.append(line)
        }
        var ctl = JSONLine(record: "cold_start")
        ctl.add("program", "ccachectl status")
        ctl.add("samples", results.ccachectlStatus.count)
        ctl.add("p50_ms", results.ccachectlStatus.isEmpty ? nil : results.ccachectlStatus.p50 / 1e6)
        ctl.add("note", results.ccachectlNote)
        lines.append(ctl)
        for check in targets {
            var line = JSONLine(record: "target")
            line.add("name", check.name)
            line.add("measured", check.measured)
            line.add("limit", check.limit)
            line.add("holds", check.holds)
            lines.append(line)
        }
        for problem in results.problems {
            var line = JSONLine(record: "problem")
            line.add("text", problem)
            lines.append(line)
        }
        return lines.map(\.text)
    }
}

extension JSONLine {
    /// A phase's or the floor's latencies as the results file keeps them: how many, p50 and p99 in
    /// µs, operations per second (`itemsPerSample` operations in each sample). With no samples the
    /// figures are not finite, so they are written as null.
    fileprivate mutating func add(_ samples: LatencySamples, itemsPerSample: Int = 1) {
        add("samples", samples.count)
        add("p50_us", samples.p50 / 1000)
        add("p99_us", samples.p99 / 1000)
        add("ops_per_s", samples.operationsPerSecond * Double(itemsPerSample))
    }
}
