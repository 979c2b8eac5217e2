import CredentialStore
import KCM

/// What a purge may do, worked out from the store before it runs: remove exactly the tickets that
/// expired before the cutoff (never a config entry, never a ticket without an end time), and remove
/// only caches left without tickets — everything else stays as it was, in order.
struct PurgeExpectation {
    private struct Cache {
        var name: KCMCacheName
        var uuid: KCMUUID
        var kept: [KCMUUID] = []
        var expired = 0
        var keepsTickets = false
    }

    private let caches: [Cache]
    private let cutoff: UInt32

    init(_ store: CredentialStore, now: UInt32, grace: UInt32) {
        let cutoff = now > grace ? now - grace : 0
        self.cutoff = cutoff
        caches = store.cacheUUIDs.compactMap { uuid in
            guard let name = try? store.cacheName(uuid: uuid), let cache = try? store.cache(named: name) else {
                return nil
            }
            var expectation = Cache(name: name, uuid: uuid)
            cache.credentials.forEach { entry in
                let credential = entry.credential
                if !credential.isConfigEntry && credential.times.endtime != 0 && credential.times.endtime < cutoff {
                    expectation.expired += 1
                } else {
                    expectation.kept.append(entry.uuid)
                    expectation.keepsTickets = expectation.keepsTickets || !credential.isConfigEntry
                }
            }
            return expectation
        }
    }

    func check(after store: CredentialStore, result: CredentialStore.PurgeResult) {
        var removedCaches = 0
        for expected in caches {
            guard let cache = try? store.cache(named: expected.name), cache.uuid == expected.uuid else {
                guard !expected.keepsTickets else {
                    FuzzInvariants.fail(
                        "a purge (cutoff \(cutoff)) removed cache '\(expected.name)' that holds tickets")
                }
                removedCaches += 1
                continue
            }
            guard cache.credentials.uuids == expected.kept else {
                FuzzInvariants.fail(
                    "a purge (cutoff \(cutoff)) left \(cache.credentials.count) credentials in '\(expected.name)', expected \(expected.kept.count)"
                )
            }
        }
        let expired = caches.reduce(0) { $0 + $1.expired }
        guard store.cacheCount == caches.count - removedCaches, result.caches == removedCaches,
            result.credentials == expired
        else {
            FuzzInvariants.fail(
                "a purge (cutoff \(cutoff)) reported \(result), expected \(expired) credentials and \(removedCaches) caches"
            )
        }
    }
}
