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
                "Latencies: client, echo server and ccached pinned to CPU \($0); concurrency: all CPUs."
            } ?? "Latencies: unpinned.")
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
        for n in results.credentialCounts {
            out.append("")
            out.append("N = \(NumberFormat.grouped(n)) credentials   (each cell: p50 µs / p99 µs / ops per s)")
            var header = NumberFormat.pad("phase", 24, right: false)
            for kind in kinds { header += NumberFormat.pad(kind.title, 28) }
            out.append(header)
            for phase in Phase.allCases {
                var line = NumberFormat.pad(phase.title, 24, right: false)
                for kind in kinds {
                    guard let result = results.phase(kind, n, phase) else {
                        if phase == .rawCredentialList {
                            line += NumberFormat.pad("", 28)
                            continue
                        }
                        line += NumberFormat.pad("–", 28)
                        continue
                    }
                    if result.samples.isEmpty {
                        line += NumberFormat.pad(result.note?.hasPrefix("n/a") == true ? "n/a (NOSUPP)" : "–", 28)
                        continue
                    }
                    if phase == .rawCredentialList, result.note?.hasPrefix("KRB5_CC_NOSUPP") == true {
                        line += NumberFormat.pad("NOSUPP (> 10 MiB)", 28)
                        continue
                    }
                    let s = result.samples
                    let rate = s.operationsPerSecond * Double(result.itemsPerSample)
                    line += NumberFormat.pad(
                        "\(NumberFormat.microseconds(s.p50)) / \(NumberFormat.microseconds(s.p99)) / \(NumberFormat.rate(rate))",
                        28)
                }
                out.append(line)
            }
            if let raw = results.phase(.kcm, n, .rawCredentialList), let bulk = raw.floor {
                out.append(
                    NumberFormat.pad("  bulk echo, same size", 24, right: false)
                        + NumberFormat.pad(
                            "\(NumberFormat.microseconds(bulk.p50)) / \(NumberFormat.microseconds(bulk.p99))    ", 28))
            }
            let floors = [Phase.store, .retrieve, .retrieveNameOnly].compactMap {
                results.phase(.kcm, n, $0)?.floor?.p50
            }
            if !floors.isEmpty {
                out.append(
                    "floor p50 alternating with ccached's store / retrieve / name-only: "
                        + floors.map { NumberFormat.microseconds($0) }.joined(separator: " / ") + " µs")
            }
        }
        out.append("")
        out.append("(iterate: a sample is one whole iteration; its ops/s counts credentials.)")
        out.append("")
        out.append("Ratios of p50 latencies (KCM = ccached; x/floor uses the floor sampled alternately with x)")
        var header = NumberFormat.pad("N", 8)
        let columns = [
            "retr/floor", "nameonly/floor", "store/floor", "retr KCM/FILE", "retr KCM/KEYRING", "iter KCM/MEMORY",
            "iter KCM/FILE", "MIT client/MEM",
        ]
        for column in columns { header += NumberFormat.pad(column, 17) }
        out.append(header)
        for n in results.credentialCounts {
            var line = NumberFormat.pad(NumberFormat.grouped(n), 8)
            for value in ratios(n: n) { line += NumberFormat.pad(NumberFormat.ratio(value.1), 17) }
            out.append(line)
        }
        out.append(
            "(MIT client/MEM: the part of a KCM iteration spent in libkrb5 itself — iterate minus raw GET_CRED_LIST"
                + " minus one floor round trip for GET_KDC_OFFSET — over the whole MEMORY iteration.)")
        if !results.throughput.isEmpty {
            out.append("")
            out.append(
                "Concurrent client processes, each on its own cache of 100 (retrieve, flags 0; echo for the floor)")
            out.append("('pinned': one client on the pinned CPU with its server; the others may use every CPU)")
            var header = NumberFormat.pad("type", 16, right: false)
            for p in [1, 2, 4] { header += NumberFormat.pad("P=\(p) ops/s (p50 µs)", 24) }
            header += NumberFormat.pad("P=2 / P=1", 12)
            out.append(header)
            for label in ["floor pinned", "floor", "KCM pinned"] + CacheKind.allCases.map(\.rawValue) {
                guard results.throughput(label, processes: 1) != nil else { continue }
                var line = NumberFormat.pad(label, 16, right: false)
                for p in [1, 2, 4] {
                    let cell = results.throughput(label, processes: p).map {
                        "\(NumberFormat.rate($0.operationsPerSecond)) (\(NumberFormat.microseconds($0.p50)))"
                            + ($0.late ? "!" : "")
                    }
                    line += NumberFormat.pad(cell ?? "–", 24)
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
            out.append("ccached memory (fresh daemon per N; private = Private_Clean + Private_Dirty)")
            out.append(
                NumberFormat.pad("N", 8) + NumberFormat.pad("idle RSS", 12) + NumberFormat.pad("idle private", 14)
                    + NumberFormat.pad("loaded RSS", 12) + NumberFormat.pad("loaded priv.", 14)
                    + NumberFormat.pad("B/ticket", 10) + NumberFormat.pad("cred bytes", 12))
            for memory in results.daemonMemory {
                out.append(
                    NumberFormat.pad(NumberFormat.grouped(memory.n), 8)
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
        lines.append(machine)

        var floor = JSONLine(record: "floor")
        floor.add("samples", results.floor.count)
        floor.add("p50_us", results.floor.p50 / 1000)
        floor.add("p99_us", results.floor.p99 / 1000)
        floor.add("ops_per_s", results.floor.operationsPerSecond)
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
            line.add("samples", result.samples.count)
            line.add("p50_us", result.samples.isEmpty ? nil : result.samples.p50 / 1000)
            line.add("p99_us", result.samples.isEmpty ? nil : result.samples.p99 / 1000)
            line.add(
                "ops_per_s",
                result.samples.isEmpty ? nil : result.samples.operationsPerSecond * Double(result.itemsPerSample))
            line.add("items_per_sample", result.itemsPerSample)
            line.add("floor_p50_us", result.floor.map { $0.p50 / 1000 })
            if result.phase == .iterate {
                line.add("verified", results.verified["\(result.kind.rawValue)/\(result.n)"])
            }
            line.add("note", result.note)
            lines.append(line)
        }
        for n in results.credentialCounts {
            for (name, value) in ratios(n: n) {
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
