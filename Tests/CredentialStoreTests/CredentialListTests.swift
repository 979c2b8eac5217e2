import CredentialStore
import KCM
import TestSupport
import Testing

/// ``CredentialList`` keeps storage order through appends and removals, returns the first match in
/// storage order whether it searches its server index or scans, removes every match, and keeps its
/// UUID and server indexes, count and byte count exact across many removals and compactions.
@Suite("CredentialList")
struct CredentialListTests {
    static func servers(_ list: CredentialList) -> [String] {
        entries(of: list).map { entry in
            String(decoding: (try? entry.credential.decodeFields())?.server.components.last ?? [], as: UTF8.self)
        }
    }

    static func client(_ n: Int) -> KCMPrincipal { n.isMultiple(of: 2) ? Fixture.alice : Fixture.bob }
    static func server(_ n: Int, servers: Int) -> KCMPrincipal {
        principal("host/s\(n % servers)@KCMTEST.LOCAL", nameType: 3)
    }

    /// Ticket `n`: server `host/s<n % servers>@KCMTEST.LOCAL`, client alice or bob by parity, endtime n.
    static func numbered(_ n: Int, servers: Int = 10) -> KCMCredential {
        ticket(
            client: client(n), server: server(n, servers: servers), endtime: UInt32(n),
            ticket: Array("ticket-\(n)".utf8))
    }

    /// Tickets 0..<count built once, so that checking a large list stays fast.
    struct Pool {
        let servers: Int
        let credentials: [KCMCredential]
        init(count: Int, servers: Int) {
            self.servers = servers
            credentials = (0..<count).map { numbered($0, servers: servers) }
        }
    }

    static func number(of credential: KCMCredential) -> Int { Int(credential.times.endtime) }

    static func bytes(of list: CredentialList) -> Int {
        entries(of: list).reduce(0) { $0 + $1.credential.bytes.count }
    }

    @Test("an empty list")
    func empty() {
        let list = CredentialList()
        #expect(list.isEmpty)
        #expect(list.count == 0)
        #expect(list.byteCount == 0)
        #expect(list.uuids.isEmpty)
        #expect(list.entry(uuid: uuid(1)) == nil)
        #expect(list.first(matching: serverMatcher(Fixture.host)) == nil)
        #expect(list.first(matching: CredentialMatcher(flags: [], template: KCMMatchTemplate())) == nil)
    }

    @Test("appends keep storage order; count and byteCount track them")
    func appendOrder() throws {
        var list = CredentialList()
        var bytes = 0
        for n in 0..<5 {
            let credential = Self.numbered(n)
            list.append(credential, uuid: uuid(UInt64(n)))
            bytes += credential.bytes.count
            #expect(list.count == n + 1)
            #expect(list.byteCount == bytes)
        }
        #expect(!list.isEmpty)
        #expect(list.uuids == (0..<5).map { uuid(UInt64($0)) })
        #expect(try #require(list.entry(uuid: uuid(3))).credential.bytes == Self.numbered(3).bytes)
    }

    @Test("removing from the middle keeps the order of the rest, and appends go after them")
    func removeKeepsOrder() {
        var list = CredentialList()
        for n in 0..<6 { list.append(Self.numbered(n, servers: 6), uuid: uuid(UInt64(n))) }
        #expect(list.removeAll(matching: serverMatcher(principal("host/s2@KCMTEST.LOCAL"))) == 1)
        #expect(list.removeAll(matching: serverMatcher(principal("host/s4@KCMTEST.LOCAL"))) == 1)
        list.append(Self.numbered(2, servers: 6), uuid: uuid(20))
        #expect(list.uuids == [uuid(0), uuid(1), uuid(3), uuid(5), uuid(20)])
        #expect(Self.servers(list) == ["s0", "s1", "s3", "s5", "s2"])
        #expect(list.entry(uuid: uuid(2)) == nil)
        #expect(list.entry(uuid: uuid(20))?.credential.bytes == Self.numbered(2, servers: 6).bytes)
        #expect(list.count == 5)
        #expect(list.byteCount == Self.bytes(of: list))
    }

    @Test("first(matching:) returns the first of several matches, through the server index")
    func firstViaIndex() throws {
        var list = CredentialList()
        list.append(ticket(server: principal("host/x@R"), endtime: 1), uuid: uuid(1))
        list.append(ticket(server: Fixture.host, endtime: 2), uuid: uuid(2))
        list.append(ticket(server: principal("host/x@R"), endtime: 3), uuid: uuid(3))
        list.append(ticket(server: Fixture.host, endtime: 4), uuid: uuid(4))
        list.append(ticket(server: Fixture.host, endtime: 5), uuid: uuid(5))
        let matcher = serverMatcher(Fixture.host)
        #expect(matcher.serverIndexKey != nil)
        #expect(list.first(matching: matcher)?.uuid == uuid(2))
        list.removeAll(
            matching: CredentialMatcher(
                flags: .matchTimesExact,
                template: KCMMatchTemplate(
                    times: KCMTicketTimes(authtime: Fixture.now, starttime: Fixture.now, endtime: 2))))
        #expect(list.first(matching: matcher)?.uuid == uuid(4))
        let later = CredentialMatcher(
            flags: .matchTimes, template: KCMMatchTemplate(server: Fixture.host, times: KCMTicketTimes(endtime: 5)))
        #expect(list.first(matching: later)?.uuid == uuid(5))
    }

    @Test("first(matching:) returns the first of several matches when scanning (no server in the template)")
    func firstViaScan() {
        var list = CredentialList()
        list.append(ticket(client: Fixture.bob, server: principal("a@R")), uuid: uuid(1))
        list.append(ticket(client: Fixture.alice, server: principal("b@R")), uuid: uuid(2))
        list.append(ticket(client: Fixture.alice, server: principal("c@R")), uuid: uuid(3))
        list.append(ticket(client: Fixture.alice, server: principal("a@R")), uuid: uuid(4))
        let matcher = CredentialMatcher(flags: [], template: KCMMatchTemplate(client: Fixture.alice))
        #expect(matcher.serverIndexKey == nil)
        #expect(list.first(matching: matcher)?.uuid == uuid(2))
        list.removeAll(matching: serverMatcher(principal("b@R")))
        #expect(list.first(matching: matcher)?.uuid == uuid(3))
    }

    @Test("a server that differs only in realm is found by a name-only lookup, not by an exact one")
    func nameOnlyFindsOtherRealm() {
        var list = CredentialList()
        list.append(ticket(server: principal("host/a@OTHER.REALM")), uuid: uuid(1))
        #expect(list.first(matching: serverMatcher(principal("host/a@KCMTEST.LOCAL"))) == nil)
        #expect(
            list.first(matching: serverMatcher(principal("host/a@KCMTEST.LOCAL"), flags: .matchServerNameOnly))?.uuid
                == uuid(1))
        #expect(list.first(matching: serverMatcher(principal("host/a@"), flags: .matchServerNameOnly))?.uuid == uuid(1))
        #expect(list.first(matching: serverMatcher(principal("host/a@X"), flags: .dontMatchRealm))?.uuid == uuid(1))
        #expect(list.removeAll(matching: serverMatcher(principal("host/a@X"), flags: .matchServerNameOnly)) == 1)
        #expect(list.isEmpty)
    }

    @Test("removeAll(matching:) removes every match and returns how many; no match removes nothing")
    func removeAllCounts() {
        var list = CredentialList()
        for n in 0..<30 { list.append(Self.numbered(n, servers: 3), uuid: uuid(UInt64(n))) }
        let before = list.byteCount
        #expect(list.removeAll(matching: serverMatcher(principal("host/nothing@KCMTEST.LOCAL"))) == 0)
        #expect(
            list.removeAll(
                matching: CredentialMatcher(flags: [], template: KCMMatchTemplate(client: principal("carol@X")))) == 0)
        #expect(list.count == 30)
        #expect(list.byteCount == before)
        // Through the index: every ticket for s1 (n = 1, 4, 7, …).
        #expect(list.removeAll(matching: serverMatcher(principal("host/s1@KCMTEST.LOCAL", nameType: 1))) == 10)
        // By scan: every bob ticket left (odd n not ≡ 1 mod 3).
        #expect(
            list.removeAll(matching: CredentialMatcher(flags: [], template: KCMMatchTemplate(client: Fixture.bob)))
                == 10)
        let expected = (0..<30).filter { $0 % 3 != 1 && $0.isMultiple(of: 2) }
        #expect(list.uuids == expected.map { uuid(UInt64($0)) })
        #expect(list.count == 10)
        #expect(list.byteCount == Self.bytes(of: list))
    }

    @Test("removeSuperseded removes same client, server, is_skey and second ticket only")
    func removeSuperseded() {
        var list = CredentialList()
        list.append(ticket(endtime: 1), uuid: uuid(1))
        list.append(ticket(client: Fixture.bob, endtime: 2), uuid: uuid(2))
        list.append(
            ticket(server: principal("host/server.kcmtest.local@OTHER", nameType: 3), endtime: 3), uuid: uuid(3))
        list.append(ticket(endtime: 4, isSKey: 1, secondTicket: [0x61]), uuid: uuid(4))
        list.append(ticket(endtime: 5, isSKey: 1, secondTicket: [0x62]), uuid: uuid(5))
        list.append(ticket(endtime: 6), uuid: uuid(6))
        list.append(ticket(endtime: 7, isSKey: 1), uuid: uuid(7))
        #expect(list.removeSuperseded(by: ticket(endtime: 8)) == 2)
        #expect(list.uuids == [uuid(2), uuid(3), uuid(4), uuid(5), uuid(7)])
        #expect(list.removeSuperseded(by: ticket(endtime: 9, isSKey: 1)) == 1)
        #expect(list.uuids == [uuid(2), uuid(3), uuid(4), uuid(5)])
        #expect(list.removeSuperseded(by: ticket(endtime: 8, isSKey: 1, secondTicket: [0x62])) == 1)
        #expect(list.uuids == [uuid(2), uuid(3), uuid(4)])
        // The name type does not make a different principal.
        #expect(list.removeSuperseded(by: ticket(client: principal("bob@KCMTEST.LOCAL", nameType: 10))) == 1)
        #expect(list.uuids == [uuid(3), uuid(4)])
    }

    @Test("removeAll() empties the list")
    func removeAllEntries() {
        var list = CredentialList()
        for n in 0..<5 { list.append(Self.numbered(n), uuid: uuid(UInt64(n))) }
        list.removeAll()
        #expect(list.isEmpty)
        #expect(list.byteCount == 0)
        #expect(list.entry(uuid: uuid(1)) == nil)
        #expect(list.first(matching: serverMatcher(principal("host/s1@KCMTEST.LOCAL"))) == nil)
    }

    /// Checks every index of `list` against the model: the numbers still present, in storage order.
    /// Every entry is looked up by UUID; by template (which costs a scan of its server's bucket in a
    /// debug build) every entry when `sampled` is false, else about 50 spread over the list.
    static func expectConsistent(
        _ list: CredentialList, model: [Int], pool: Pool, removed: [Int] = [], sampled: Bool = false,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(list.count == model.count, sourceLocation: sourceLocation)
        #expect(list.uuids == model.map { uuid(UInt64($0)) }, sourceLocation: sourceLocation)
        let order = entries(of: list).map { number(of: $0.credential) }
        #expect(order == model, sourceLocation: sourceLocation)
        #expect(
            list.byteCount == model.reduce(0) { $0 + pool.credentials[$1].bytes.count }, sourceLocation: sourceLocation)
        var wrong = 0
        let step = sampled ? max(1, model.count / 50) : 1
        for (index, n) in model.enumerated() {
            if list.entry(uuid: uuid(UInt64(n)))?.credential.bytes != pool.credentials[n].bytes { wrong += 1 }
            guard index % step == 0 || index == model.count - 1 else { continue }
            // Unique by client, server (through the index) and exact times.
            let exact = CredentialMatcher(
                flags: .matchTimesExact,
                template: KCMMatchTemplate(
                    client: client(n), server: server(n, servers: pool.servers),
                    times: KCMTicketTimes(authtime: Fixture.now, starttime: Fixture.now, endtime: UInt32(n))))
            if list.first(matching: exact)?.uuid != uuid(UInt64(n)) { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) lookups failed", sourceLocation: sourceLocation)
        for n in removed where list.entry(uuid: uuid(UInt64(n))) != nil {
            Issue.record("removed ticket \(n) is still found by UUID", sourceLocation: sourceLocation)
        }
        // For each server, the index returns the first remaining ticket in storage order.
        for s in 0..<pool.servers {
            let firstForServer = model.first { $0 % pool.servers == s }.map { uuid(UInt64($0)) }
            let found = list.first(matching: serverMatcher(principal("host/s\(s)@KCMTEST.LOCAL")))?.uuid
            #expect(found == firstForServer, "server s\(s)", sourceLocation: sourceLocation)
        }
    }

    @Test("1000 appends, 900 removals by various templates: order, UUIDs and both indexes stay exact")
    func manyRemovals() {
        let pool = Pool(count: 1010, servers: 10)
        var list = CredentialList()
        var model = Array(0..<1000)
        for n in model { list.append(pool.credentials[n], uuid: uuid(UInt64(n))) }
        Self.expectConsistent(list, model: model, pool: pool, sampled: true)
        var removed: [Int] = []

        func remove(
            _ matcher: CredentialMatcher, where predicate: (Int) -> Bool,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let gone = model.filter(predicate)
            #expect(list.removeAll(matching: matcher) == gone.count, sourceLocation: sourceLocation)
            model.removeAll(where: predicate)
            removed += gone
            Self.expectConsistent(
                list, model: model, pool: pool, removed: removed, sampled: true, sourceLocation: sourceLocation)
        }

        // Exact server (index): all of s0.
        remove(serverMatcher(principal("host/s0@KCMTEST.LOCAL")), where: { $0 % 10 == 0 })
        // Name-only, other realm (index): s1.
        remove(serverMatcher(principal("host/s1@ELSEWHERE"), flags: .matchServerNameOnly), where: { $0 % 10 == 1 })
        // Realm-blind client and server (index): s3 holds only bob's tickets, so alice's template removes none.
        remove(
            CredentialMatcher(
                flags: .dontMatchRealm,
                template: KCMMatchTemplate(client: principal("alice@"), server: principal("host/s3@"))),
            where: { _ in false })
        remove(
            CredentialMatcher(
                flags: .dontMatchRealm,
                template: KCMMatchTemplate(client: principal("bob@"), server: principal("host/s3@"))),
            where: { $0 % 10 == 3 })
        // One by one (index + exact times): the first 20 of s2.
        for n in stride(from: 2, to: 200, by: 10) {
            let one = CredentialMatcher(
                flags: .matchTimesExact,
                template: KCMMatchTemplate(
                    server: principal("host/s2@KCMTEST.LOCAL"),
                    times: KCMTicketTimes(authtime: Fixture.now, starttime: Fixture.now, endtime: UInt32(n))))
            #expect(list.removeAll(matching: one) == 1)
            model.removeAll { $0 == n }
            removed.append(n)
        }
        Self.expectConsistent(list, model: model, pool: pool, removed: removed, sampled: true)
        // Scan by client: every bob ticket left.
        remove(
            CredentialMatcher(flags: [], template: KCMMatchTemplate(client: Fixture.bob)),
            where: { !$0.isMultiple(of: 2) })
        // Scan by time: everything that ends at or after 600.
        remove(
            CredentialMatcher(flags: .matchTimes, template: KCMMatchTemplate(times: KCMTicketTimes(endtime: 600))),
            where: { $0 >= 600 })
        // Scan by time again: everything that ends at or after 300.
        remove(
            CredentialMatcher(flags: .matchTimes, template: KCMMatchTemplate(times: KCMTicketTimes(endtime: 300))),
            where: { $0 >= 300 })

        #expect(list.count == 100)
        #expect(removed.count == 900)
        #expect(Set(removed).count == 900)

        // Appends after all of that go to the end and are found.
        for n in 1000..<1010 { list.append(pool.credentials[n], uuid: uuid(UInt64(n))) }
        model += 1000..<1010
        Self.expectConsistent(list, model: model, pool: pool, removed: removed)
    }

    @Test("removing one at a time from the front, with appends in between, never loses the order")
    func slidingWindow() {
        let servers = 7
        let pool = Pool(count: 300, servers: servers)
        var list = CredentialList()
        var model: [Int] = []
        var next = 0
        for round in 0..<300 {
            list.append(pool.credentials[next], uuid: uuid(UInt64(next)))
            model.append(next)
            next += 1
            if round % 3 != 0, let oldest = model.first {
                let matcher = CredentialMatcher(
                    flags: .matchTimesExact,
                    template: KCMMatchTemplate(
                        server: principal("host/s\(oldest % servers)@KCMTEST.LOCAL"),
                        times: KCMTicketTimes(authtime: Fixture.now, starttime: Fixture.now, endtime: UInt32(oldest))))
                #expect(list.removeAll(matching: matcher) == 1)
                model.removeFirst()
            }
        }
        Self.expectConsistent(list, model: model, pool: pool)
    }
}

/// The removals as the tests count them: the UUIDs removed are dropped.
extension CredentialList {
    @discardableResult
    fileprivate mutating func removeAll(matching matcher: CredentialMatcher) -> Int {
        var released: [KCMUUID] = []
        return removeAll(matching: matcher, released: &released)
    }

    fileprivate mutating func removeSuperseded(by credential: KCMCredential) -> Int {
        var released: [KCMUUID] = []
        return removeSuperseded(by: credential, released: &released)
    }
}
