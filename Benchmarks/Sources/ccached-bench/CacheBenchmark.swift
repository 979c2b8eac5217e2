import CKrb5
import KCM

/// What one phase measured on one cache: latencies, or why it could not run.
struct PhaseResult {
    let kind: CacheKind
    let n: Int
    let phase: Phase
    let samples: LatencySamples
    /// Items handled per sample (credentials per iteration), for throughput of items.
    var itemsPerSample = 1
    /// Set when the cache type does not support the operation, or a check failed.
    var note: String?
    /// Raw echo round trips taken alternately with this phase's operations (KCM only), so that the
    /// ratio to the floor compares latencies measured under the same machine conditions.
    var floor: LatencySamples?
    /// Which round of the run measured this (0-based).
    var round = 0
}

/// The phases on one cache of one type with N credentials, in order: initialize, store N, retrieve
/// K at random (flags 0, then SRV_NAMEONLY), full iterations, remove some, destroy.
struct CacheBenchmark {
    let context: Krb5Context
    let kind: CacheKind
    let credentials: SyntheticCredentials
    let profile: BenchProfile
    let cacheName: String

    /// Called once the cache is initialized and once all N are stored (for daemon memory).
    var afterInitialize: () -> Void = {}
    var afterStore: () -> Void = {}
    /// For KCM: the daemon's socket, to time GET_CRED_LIST without libkrb5.
    var rawSocketPath: String?
    /// For KCM: a connection to the echo server, for a floor sample before each operation.
    var floorProbe: EchoClient?

    struct Outcome {
        var phases: [PhaseResult] = []
        /// Whether an untimed iteration returned each of the N credentials exactly once.
        var iterationVerified = false
        var problems: [String] = []
    }

    func run() throws(Krb5Failure) -> Outcome {
        let n = credentials.count
        var outcome = Outcome()
        let cache = try context.resolve(cacheName)

        var initialize = LatencySamples(capacity: profile.initializations)
        for _ in 0..<profile.initializations {
            let code = initialize.measure { cache.initialize(principal: credentials.client) }
            try context.check(code, "krb5_cc_initialize \(cacheName)")
        }
        outcome.phases.append(PhaseResult(kind: kind, n: n, phase: .initialize, samples: initialize))
        afterInitialize()

        var store = LatencySamples(capacity: n)
        var storeFloor = LatencySamples(capacity: n)
        for index in 0..<n {
            probeFloor(into: &storeFloor)
            let code = store.measure { cache.store(credentials.credentials + index) }
            try context.check(code, "krb5_cc_store_cred \(cacheName) #\(index)")
        }
        outcome.phases.append(
            PhaseResult(kind: kind, n: n, phase: .store, samples: store, floor: floorOrNil(storeFloor)))
        afterStore()

        var random = SplitMix64(seed: 0x00cc_ac4e_d000 &+ UInt64(n))
        // sssd-kcm takes milliseconds per request: fewer samples keep its cells to seconds.
        let k = kind == .sssd ? min(profile.retrievals(n: n), 100) : profile.retrievals(n: n)
        for (phase, flags) in [
            (Phase.retrieve, krb5_flags(0)), (.retrieveNameOnly, krb5_flags(KRB5_TC_MATCH_SRV_NAMEONLY)),
        ] {
            var samples = LatencySamples(capacity: k)
            var floor = LatencySamples(capacity: k)
            var misses = 0
            // A few untimed warm-up calls: the first touches code and connection state.
            for _ in 0..<min(10, k) {
                _ = cache.retrieve(
                    flags: flags, template: credentials.templates + Int.random(in: 0..<n, using: &random))
            }
            for _ in 0..<k {
                let template = credentials.templates + Int.random(in: 0..<n, using: &random)
                probeFloor(into: &floor)
                if samples.measure({ cache.retrieve(flags: flags, template: template) }) != 0 { misses += 1 }
            }
            var result = PhaseResult(kind: kind, n: n, phase: phase, samples: samples, floor: floorOrNil(floor))
            if misses > 0 {
                result.note = "\(misses) of \(k) not found"
                outcome.problems.append("\(kind.rawValue) N=\(n) \(phase.rawValue): \(misses) of \(k) not found")
            }
            outcome.phases.append(result)
        }

        var iterate = LatencySamples(capacity: profile.iterations(n: n))
        for _ in 0..<profile.iterations(n: n) {
            let count = try iterate.measure { () throws(Krb5Failure) in try cache.iterate() }
            if count != n { outcome.problems.append("\(kind.rawValue) N=\(n): an iteration returned \(count)") }
        }
        var iterateResult = PhaseResult(kind: kind, n: n, phase: .iterate, samples: iterate)
        iterateResult.itemsPerSample = n
        outcome.iterationVerified = try verifyIteration(cache)
        if !outcome.iterationVerified {
            iterateResult.note = "iteration did not return each credential exactly once"
            outcome.problems.append("\(kind.rawValue) N=\(n): iteration did not return each credential exactly once")
        }
        outcome.phases.append(iterateResult)
        if let rawSocketPath, let raw = RawKCMClient(socketPath: rawSocketPath) {
            outcome.phases.append(measureRawCredentialList(raw))
        }

        let removals = min(n / 2, 100)
        var remove = LatencySamples(capacity: removals)
        var removeNote: String?
        var indices = Array(0..<n)
        indices.shuffle(using: &random)
        for index in indices.prefix(removals) {
            let code = remove.measure { cache.remove(flags: 0, template: credentials.templates + index) }
            if code == Krb5Code.notSupported {
                removeNote = "n/a: \(kind.rawValue) returns KRB5_CC_NOSUPP"
                remove = LatencySamples()
                break
            }
            // KCM's answer to an opcode the server does not implement (sssd-kcm 2.8: REMOVE_CRED).
            if code == Krb5Code.internalError && kind.isServer && remove.count == 1 {
                removeNote = "n/a: \(kind.rawValue) does not implement REMOVE_CRED (KRB5_FCC_INTERNAL)"
                remove = LatencySamples()
                break
            }
            try context.check(code, "krb5_cc_remove_cred \(cacheName)")
        }
        if removeNote == nil, let gone = indices.first,
            cache.retrieve(flags: 0, template: credentials.templates + gone) == 0
        {
            outcome.problems.append("\(kind.rawValue) N=\(n): a removed credential is still retrievable")
        }
        outcome.phases.append(PhaseResult(kind: kind, n: n, phase: .remove, samples: remove, note: removeNote))

        var destroy = LatencySamples(capacity: 1)
        try context.check(destroy.measure { cache.destroy() }, "krb5_cc_destroy \(cacheName)")
        outcome.phases.append(PhaseResult(kind: kind, n: n, phase: .destroy, samples: destroy))
        return outcome
    }

    private func probeFloor(into samples: inout LatencySamples) {
        guard let floorProbe else { return }
        _ = samples.measure { floorProbe.roundTrip() }
    }

    private func floorOrNil(_ samples: LatencySamples) -> LatencySamples? {
        samples.isEmpty ? nil : samples
    }

    private func measureRawCredentialList(_ raw: RawKCMClient) -> PhaseResult {
        let n = credentials.count
        let residual = String(cacheName.dropFirst("KCM:".count))
        var samples = LatencySamples(capacity: profile.iterations(n: n))
        var floor = LatencySamples(capacity: profile.iterations(n: n))
        var note: String?
        var replyLength = 0
        let frame = RawKCMClient.credentialListFrame(cache: residual)
        for _ in 0..<profile.iterations(n: n) {
            if let floorProbe, replyLength > 0 {
                _ = floor.measure { floorProbe.bulkRoundTrip(replyLength: replyLength) }
            }
            let answer = samples.measure { raw.call(frame: frame) }
            guard let answer else {
                note = "connection broke"
                break
            }
            // The KCM reply after its length word: transport status, status, payload.
            replyLength = KCMReplyHeader.length - 4 + answer.payloadLength
            if answer.effectiveStatus == .ccNoSupp {
                note = "KRB5_CC_NOSUPP: reply over MIT's 10 MiB limit, clients fall back to GET_CRED_BY_UUID"
            } else if answer.effectiveStatus != .success {
                note = "status \(answer.effectiveStatus.rawValue)"
            }
        }
        var result = PhaseResult(
            kind: kind, n: n, phase: .rawCredentialList, samples: samples, note: note, floor: floorOrNil(floor))
        result.itemsPerSample = note == nil ? n : 1
        return result
    }

    /// An untimed iteration that checks every service index 0..<N comes back exactly once (at
    /// 10,000 credentials this exercises KCM's fallback from GET_CRED_LIST to the UUID opcodes).
    private func verifyIteration(_ cache: Krb5CCache) throws(Krb5Failure) -> Bool {
        let n = credentials.count
        var seen = [Bool](repeating: false, count: n)
        var valid = true
        let count = try cache.iterate { creds in
            guard let index = SyntheticCredentials.serviceIndex(of: creds), index < n, !seen[index],
                creds.ticket.length == UInt32(SyntheticCredentials.ticketSize)
            else {
                valid = false
                return
            }
            seen[index] = true
        }
        return valid && count == n && !seen.contains(false)
    }
}
