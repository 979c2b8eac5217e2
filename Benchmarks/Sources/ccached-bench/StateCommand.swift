import ArgumentParser
import CredentialStore
import Glibc
import KCM
import StoreState
import SystemCalls

/// `ccached-bench state`: what keeping the store in its state file (issue 22, Docs/state.md) costs
/// per request, in process and without I/O: each STORE and REMOVE_CRED applied to a store at N
/// credentials as the daemon applies it, with and without the journal's record of it, and how long
/// a restore of N tickets takes. The per-request figure is to be read against the daemon's whole
/// round trip (28–40 µs for a store, Docs/performance.md).
struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Time the state journal per STORE / REMOVE_CRED and a restore.")

    @Option(help: "Requests timed per figure.")
    var requests: Int = 2000

    @Option(help: "Bytes of each ticket.")
    var ticketSize: Int = 1200

    func run() throws {
        print("N      op      without (ns)  with (ns)  added (ns)")
        for n in [10, 1000] {
            for operation in ["store", "remove"] {
                let without = try time(n: n, operation: operation, journaled: false)
                let with = try time(n: n, operation: operation, journaled: true)
                print(
                    "\(n)".padding(7) + operation.padding(8) + "\(without)".padding(14, left: true)
                        + "\(with)".padding(11, left: true) + "\(with - without)".padding(12, left: true))
            }
        }
        for n in [1000] {
            let (load, restore) = try restoreTime(n: n)
            print("restore of \(n) tickets: load \(load / 1000) µs, load and new generation \(restore / 1000) µs")
        }
    }

    static let client = KCMPrincipal("bench@BENCH.TEST")

    func credential(_ index: Int) -> KCMCredential {
        KCMCredentialFields(
            client: Self.client, server: KCMPrincipal("svc\(index)/host.bench@BENCH.TEST"), enctype: 18,
            key: (0..<32).map { UInt8(truncatingIfNeeded: index &+ $0) },
            times: KCMTicketTimes(authtime: 1, starttime: 1, endtime: 0x7000_0000),
            ticket: [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: ticketSize)
        ).credential()
    }

    /// A store with cache "1000" holding `n` credentials, and its journal if `journaled`.
    func filled(_ n: Int, journaled: Bool) throws -> (CredentialStore, StateJournal?) {
        let store = CredentialStore(ownerUID: 1000)
        let journal: StateJournal?
        if journaled {
            journal = StateJournal(file: try StateMemoryFile.create(reservation: 256 << 20), ownerUID: 1000)
            try journal?.restore(into: store)
        } else {
            journal = nil
        }
        let name = KCMCacheName("1000")
        try store.initialize(name, principal: Self.client)
        journal?.record(.initialize(name: name, principal: Self.client), in: store)
        for index in 0..<n {
            let request = KCMRequest.store(name: name, credential: credential(index))
            try store.store(credential(index), in: name)
            journal?.record(request, in: store)
        }
        return (store, journal)
    }

    /// Median ns per request of `requests` STOREs (each of a new server, then removed untimed, so
    /// the cache stays at N) or REMOVE_CREDs (each of one credential, stored again untimed).
    func time(n: Int, operation: String, journaled: Bool) throws -> Int {
        let (store, journal) = try filled(n, journaled: journaled)
        let name = KCMCacheName("1000")
        var samples: [UInt64] = []
        samples.reserveCapacity(requests)
        for round in 0..<requests {
            let fresh = credential(n + round)
            let template = KCMMatchTemplate(
                client: Self.client, server: KCMPrincipal("svc\(n + round)/host.bench@BENCH.TEST"))
            let remove = KCMRequest.removeCred(name: name, flags: [], template: template)
            let store1 = KCMRequest.store(name: name, credential: fresh)
            if operation == "store" {
                let start = MonotonicClock.nanoseconds()
                try store.store(fresh, in: name)
                journal?.record(store1, in: store)
                samples.append(MonotonicClock.nanoseconds() - start)
                try store.removeCredentials(from: name, matching: CredentialMatcher(flags: [], template: template))
                journal?.record(remove, in: store)
            } else {
                try store.store(fresh, in: name)
                journal?.record(store1, in: store)
                let start = MonotonicClock.nanoseconds()
                try store.removeCredentials(from: name, matching: CredentialMatcher(flags: [], template: template))
                journal?.record(remove, in: store)
                samples.append(MonotonicClock.nanoseconds() - start)
            }
        }
        samples.sort()
        return Int(samples[samples.count / 2])
    }

    /// ns to load a state file of `n` tickets, and to restore it (load and write a new generation).
    func restoreTime(n: Int) throws -> (Int, Int) {
        let (_, journal) = try filled(n, journaled: true)
        guard let journal else { return (0, 0) }
        let start = MonotonicClock.nanoseconds()
        let loaded = CredentialStore(ownerUID: 1000)
        _ = try StateLoader.load(journal.file.bytes, into: loaded)
        let load = Int(MonotonicClock.nanoseconds() - start)
        let restoreStart = MonotonicClock.nanoseconds()
        let restored = CredentialStore(ownerUID: 1000)
        try journal.restore(into: restored)
        let restore = Int(MonotonicClock.nanoseconds() - restoreStart)
        guard restored.credentialCount == n else { throw ValidationError("restored \(restored.credentialCount)") }
        return (load, restore)
    }
}

extension String {
    fileprivate func padding(_ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - count))
        return left ? fill + self : self + fill
    }
}
