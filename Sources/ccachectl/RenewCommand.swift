import ArgumentParser
import CCacheClient
import Glibc
import KCM

extension CCacheCtl {
    struct Renew: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "renew",
            abstract: "Renew the renewable tickets of a cache (every cache without one) now.",
            discussion: """
                The daemon renews in the background by itself (see ccached --renew-threshold); this is for \
                not waiting. Prints one line per cache: '1000: renewed 1 ticket, valid until ...', \
                '1000:1: failed: <the KDC's error>', '1000:2: nothing to renew (not renewable)'. Waits for \
                the KDC. Exit status 1 when a renewal failed or the cache does not exist.
                """)

        @Argument(help: "The cache (a name such as 1000:1, KCM:1000:1, or a principal).")
        var cache: String?

        func run() throws {
            let context = try openContext()
            let results = try reporting {
                try context.renew(cache: try cache.map { try resolveCache($0, in: context) })
            }
            for result in results { print(Self.line(result)) }
            if results.contains(where: { $0.outcome == .failed }) { throw ExitCode(1) }
        }

        static func line(_ result: KCMRenew.CacheResult) -> String {
            let name = "\(result.cacheName):"
            switch result.outcome {
            case .renewed:
                let tickets = result.renewedCount == 1 ? "1 ticket" : "\(result.renewedCount) tickets"
                return "\(name) renewed \(tickets), valid until \(Display.time(result.endtime))"
            case .failed:
                let renewed = result.renewedCount > 0 ? " (\(result.renewedCount) renewed)" : ""
                return "\(name) failed\(renewed): \(result.message)"
            default:
                return "\(name) nothing to renew" + (result.message.isEmpty ? "" : " (\(result.message))")
            }
        }
    }
}
