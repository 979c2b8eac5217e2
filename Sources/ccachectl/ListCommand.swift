import ArgumentParser
import CCacheClient
import Glibc
import KCM
import Krb5Caches

/// One cache as `list` shows it.
struct CacheSummary {
    var name: KCMCacheName
    var principal: KCMPrincipal
    var isDefault: Bool
    var tickets: [TicketSummary]
    /// Its renewal state (CCACHED_RENEWAL_STATE); nil when the daemon reports none for it.
    var renewal: KCMRenewalState.Cache? = nil
    var earliestExpiry: UInt32? { tickets.map(\.times.endtime).filter { $0 != 0 }.min() }

    static func load(_ context: CCacheContext) throws -> [CacheSummary] {
        let primary = try context.defaultCacheName()
        // For the ticket's own server name (klist's "Ticket server:"); without libkrb5 it is left out.
        let library = try? Krb5Library()
        var result: [CacheSummary] = []
        // An older daemon answers the opcode with an error: no renewal column then.
        let renewals = (try? context.renewalState())?.caches ?? []
        for name in try context.cacheNames() {
            guard let (principal, credentials) = try contents(of: context.cache(named: name)) else {
                continue  // destroyed while we were listing
            }
            let tickets = try credentials.filter { !$0.isConfigEntry }.map {
                try TicketSummary(credential: $0, library: library)
            }
            result.append(
                CacheSummary(
                    name: name, principal: principal, isDefault: name == primary, tickets: tickets,
                    renewal: renewals.first { $0.cacheName == name }))
        }
        // The primary first, as klist -l does.
        return result.filter(\.isDefault) + result.filter { !$0.isDefault }
    }

    /// The principal and credentials of a cache, or nil if it no longer exists. One GET_PRINCIPAL
    /// answers both "does it exist" and "whose is it" (the daemon's reply carries the principal).
    private static func contents(of cache: CCache) throws(CCacheClientError) -> (KCMPrincipal, [KCMCredential])? {
        let operation = "read the principal of \(cache.name)"
        let (status, reply) = try cache.context.answer(.getPrincipal(name: cache.name), operation: operation)
        if status == .fccNoFile { return nil }
        guard let reply else { throw .daemon(status, operation: operation) }
        let principal: KCMPrincipal
        do {
            principal = try reply.asPrincipal()
        } catch {
            throw .malformedReply(operation: operation)
        }
        return (principal, try cache.credentials())
    }
}

extension CCacheCtl {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List every cache: principal, default marker, tickets, earliest expiry (the default command).",
            discussion: "Exit status 0 when at least one cache exists, 1 when there is none.")

        @Flag(name: .shortAndLong, help: "Show each ticket: server, times, flags, enctype, renew-till.")
        var verbose = false

        @Flag(name: .long, help: "Print JSON for scripts.")
        var json = false

        func run() throws {
            let context = try openContext()
            let caches = try reporting { try CacheSummary.load(context) }
            let now = UInt32(truncatingIfNeeded: time(nil))
            if json {
                print(Self.json(caches, now: now))
            } else if caches.isEmpty {
                print("No credential caches (sign in with kinit).")
            } else {
                print(Self.table(caches, now: now, verbose: verbose), terminator: "")
            }
            if caches.isEmpty { throw ExitCode(1) }
        }

        static func expiry(_ value: UInt32?, now: UInt32) -> String {
            guard let value else { return "-" }
            return Display.time(value) + (value <= now ? " (expired)" : "")
        }

        static func table(_ caches: [CacheSummary], now: UInt32, verbose: Bool) -> String {
            let rows = caches.map { cache in
                [
                    cache.isDefault ? "*" : " ", "KCM:\(cache.name)", cache.principal.description,
                    "\(cache.tickets.count)", expiry(cache.earliestExpiry, now: now),
                ]
            }
            let header = [" ", "CACHE", "PRINCIPAL", "TICKETS", "EARLIEST EXPIRY"]
            var widths = header.map(\.count)
            for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { Display.pad($0.element, widths[$0.offset]) }.joined(separator: "  ")
                    .trimmingTrailingSpaces() + "\n"
            }
            var out = line(header)
            for (index, row) in rows.enumerated() {
                out += line(row)
                if verbose {
                    if let renewal = caches[index].renewal { out += "      \(RenewalDisplay.line(renewal))\n" }
                    for ticket in caches[index].tickets {
                        let times = ticket.times
                        let state = times.endtime != 0 && times.endtime <= now ? "  EXPIRED" : ""
                        out += "      \(ticket.server)\(state)\n"
                        if let real = ticket.ticketServer { out += "        ticket server \(real)\n" }
                        out += "        valid \(Display.time(times.start)) until \(Display.time(times.endtime))"
                        if times.renewTill != 0 { out += ", renew until \(Display.time(times.renewTill))" }
                        out +=
                            "\n        flags \(Display.flags(ticket.ticketFlags).isEmpty ? "-" : Display.flags(ticket.ticketFlags))"
                        out += ", \(Display.enctype(ticket.enctype))\n"
                    }
                }
            }
            return out
        }

        static func json(_ caches: [CacheSummary], now: UInt32) -> String {
            JSONOutput.line(["caches": caches.map { CacheJSON($0, now: now) }])
        }
    }
}

/// One cache in `list --json`.
private struct CacheJSON: Encodable {
    var cache: String
    var principal: String
    var isDefault: Bool
    var tickets: Int
    @NullWhenAbsent var earliestExpiry: String?
    @NullWhenAbsent var renewal: RenewalJSON?
    var credentials: [TicketJSON]

    enum CodingKeys: String, CodingKey {
        case cache, principal, tickets, renewal, credentials
        case isDefault = "default", earliestExpiry = "earliest_expiry"
    }

    init(_ summary: CacheSummary, now: UInt32) {
        cache = "KCM:\(summary.name)"
        principal = summary.principal.description
        isDefault = summary.isDefault
        tickets = summary.tickets.count
        earliestExpiry = summary.earliestExpiry.flatMap(Display.isoTime)
        renewal = summary.renewal.map(RenewalJSON.init)
        credentials = summary.tickets.map { TicketJSON($0, now: now) }
    }
}

/// One ticket in `list --json`: times in ISO 8601 UTC, flags and enctype as `list -v` shows them.
private struct TicketJSON: Encodable {
    var server: String
    @NullWhenAbsent var ticketServer: String?
    var client: String
    @NullWhenAbsent var start: String?
    @NullWhenAbsent var end: String?
    @NullWhenAbsent var renewTill: String?
    var expired: Bool
    var flags: String
    var enctype: String

    enum CodingKeys: String, CodingKey {
        case server, client, start, end, expired, flags, enctype
        case ticketServer = "ticket_server", renewTill = "renew_till"
    }

    init(_ ticket: TicketSummary, now: UInt32) {
        server = ticket.server.description
        ticketServer = ticket.ticketServer?.description
        client = ticket.client.description
        let times = ticket.times
        start = Display.isoTime(times.start)
        end = Display.isoTime(times.endtime)
        renewTill = Display.isoTime(times.renewTill)
        expired = times.endtime != 0 && times.endtime <= now
        flags = Display.flags(ticket.ticketFlags)
        enctype = Display.enctype(ticket.enctype)
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
