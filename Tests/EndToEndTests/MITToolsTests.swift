import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The stock MIT tools (Debian's krb5-user) against a real KDC, keeping every ticket in ccached.
/// Expected outputs follow MIT's own collection test (`t_ccache.py`) and kcm-protocol.md §12.
@Suite("MIT tools through ccached")
final class MITToolsTests: TestbedSuite {
    @Test("an empty daemon: klist and klist -s fail, klist -l lists nothing")
    func emptyCollection() throws {
        let klist = try bed.run("klist")
        #expect(klist.status == 1, "\(klist)")
        #expect(klist.stderr.contains("Credentials cache '\(bed.primaryName)' not found"), "\(klist)")
        #expect(try bed.run("klist", "-s").status == 1)
        let listing = try bed.run("klist", "-l")
        #expect(listing.status == 1, "\(listing)")
        #expect(collectionListing(listing.stdout).isEmpty, "\(listing)")
    }

    @Test("kinit stores a TGT that klist shows; klist -s succeeds")
    func kinitAndKlist() throws {
        try bed.kinit("alice")
        let klist = try bed.expectSuccess("klist")
        #expect(klist.stdout.contains("Ticket cache: \(bed.primaryName)"), "\(klist)")
        #expect(klist.stdout.contains("Default principal: alice@CCACHED.TEST"), "\(klist)")
        #expect(klist.stdout.contains("krbtgt/CCACHED.TEST@CCACHED.TEST"), "\(klist)")
        #expect(try bed.run("klist", "-s").status == 0)
    }

    @Test("kinit of two principals: the newest is primary and listed first")
    func twoPrincipalsOrdering() throws {
        try bed.kinit("alice")
        try bed.kinit("bob")
        let listing = collectionListing(try bed.expectSuccess("klist", "-l").stdout)
        #expect(listing.map(\.principal) == ["bob@CCACHED.TEST", "alice@CCACHED.TEST"])
        #expect(listing.last?.cache == bed.primaryName)
        #expect(listing.first?.cache == "\(bed.primaryName):1")
        let klist = try bed.expectSuccess("klist")
        #expect(klist.stdout.contains("Default principal: bob@CCACHED.TEST"), "\(klist)")
    }

    @Test("re-kinit of the first principal makes its cache primary again without a new cache")
    func reKinitReusesCache() throws {
        try bed.kinit("alice")
        try bed.kinit("bob")
        try bed.kinit("alice")
        let listing = collectionListing(try bed.expectSuccess("klist", "-l").stdout)
        #expect(listing.count == 2, "\(listing)")
        #expect(listing.first?.principal == "alice@CCACHED.TEST")
        #expect(listing.first?.cache == bed.primaryName)
    }

    @Test("kvno twice stores exactly one service ticket")
    func kvnoTwiceStoresOneTicket() throws {
        try bed.kinit("alice")
        try bed.expectSuccess("kvno", "host/localhost")
        try bed.expectSuccess("kvno", "host/localhost")
        let klist = try bed.expectSuccess("klist")
        let serviceLines = klist.stdout.split(separator: "\n").filter { $0.hasSuffix("host/localhost@CCACHED.TEST") }
        #expect(serviceLines.count == 1, "\(klist)")
        // The second kvno must have been answered from the cache: one STORE of the service ticket.
        let stores = bed.daemonLogText.split(separator: "\n").filter { $0.contains("STORE -> OK") }
        #expect(stores.count == 1, "\(bed.daemonLogText)")
    }

    @Test("kswitch -p and kswitch -c change the primary cache")
    func kswitch() throws {
        try bed.kinit("alice")
        try bed.kinit("bob")
        try bed.expectSuccess("kswitch", "-p", "alice")
        #expect(try bed.expectSuccess("klist").stdout.contains("Default principal: alice@CCACHED.TEST"))
        try bed.expectSuccess("kswitch", "-c", "\(bed.primaryName):1")
        #expect(try bed.expectSuccess("klist").stdout.contains("Default principal: bob@CCACHED.TEST"))
    }

    @Test("kdestroy removes the primary and leaves the others listed")
    func kdestroyLeavesOthers() throws {
        try bed.kinit("alice")
        try bed.kinit("bob")
        let destroy = try bed.expectSuccess("kdestroy")
        #expect(destroy.stderr.contains("Other credential caches present"), "\(destroy)")
        let listing = try bed.expectSuccess("klist", "-l")
        #expect(collectionListing(listing.stdout).map(\.principal) == ["alice@CCACHED.TEST"], "\(listing)")
        // The primary falls back to the cache that remains (sssd-kcm and Heimdal do the same).
        #expect(try bed.run("klist", "-s").status == 0)
    }

    @Test(
        "three caches, kdestroy of the primary: klist and kvno work at once on the most recently used cache left"
    )
    func kdestroyFallsBackToMostRecentlyUsed() throws {
        let uid = getuid()
        try bed.kinit("alice")  // KCM:uid
        try bed.kinit("bob")  // KCM:uid:1, now the primary
        try bed.kinit("carol")  // KCM:uid:2, now the primary
        // alice's cache, the oldest, is the one used last: kvno stores a service ticket in it.
        try bed.expectSuccess("kvno", "-c", "KCM:\(uid)", "host/localhost")
        #expect(try bed.expectSuccess("klist").stdout.contains("Default principal: carol@CCACHED.TEST"))
        try bed.expectSuccess("kdestroy")
        let klist = try bed.expectSuccess("klist")
        #expect(klist.stdout.contains("Ticket cache: KCM:\(uid)\n"), "\(klist)")
        #expect(klist.stdout.contains("Default principal: alice@CCACHED.TEST"), "\(klist)")
        try bed.expectSuccess("kvno", "HTTP/localhost")
        // kswitch to bob, then destroy it: back to alice, the one left.
        try bed.expectSuccess("kswitch", "-c", "KCM:\(uid):1")
        try bed.expectSuccess("kdestroy")
        #expect(try bed.expectSuccess("klist").stdout.contains("Default principal: alice@CCACHED.TEST"))
        // The last cache: kdestroy leaves no primary to fall back to.
        try bed.expectSuccess("kdestroy")
        #expect(try bed.run("klist", "-s").status == 1)
    }

    @Test("kdestroy -A empties the whole collection")
    func kdestroyAll() throws {
        try bed.kinit("alice")
        try bed.kinit("bob")
        try bed.kinit("carol")
        try bed.expectSuccess("kdestroy", "-A")
        let listing = try bed.run("klist", "-l")
        #expect(listing.status == 1, "\(listing)")
        #expect(collectionListing(listing.stdout).isEmpty, "\(listing)")
        #expect(try bed.run("klist", "-A").stdout.isEmpty)
    }

    @Test("kinit -R renews the TGT in place; kinit -c KCM:name uses a named cache")
    func renewAndNamedCache() throws {
        try bed.kinit("alice", "-r", "2d")
        try bed.expectSuccess("kvno", "host/localhost")
        try bed.expectSuccess("kinit", "-R")
        let klist = try bed.expectSuccess("klist")
        #expect(klist.stdout.contains("krbtgt/CCACHED.TEST@CCACHED.TEST"), "\(klist)")
        try bed.kinit("bob", "-c", "KCM:\(getuid()):named")
        let named = try bed.run(["klist", "-c", "KCM:\(getuid()):named"])
        #expect(named.stdout.contains("Default principal: bob@CCACHED.TEST"), "\(named)")
        #expect(collectionListing(try bed.expectSuccess("klist", "-l").stdout).count == 2)
    }

    @Test("a GSSAPI initiator gets a service ticket through the cache, and finds it the second time")
    func gssapiInitiator() throws {
        try bed.kinit("alice")
        let script = """
            import gssapi
            name = gssapi.Name('host@localhost', gssapi.NameType.hostbased_service)
            ctx = gssapi.SecurityContext(name=name, usage='initiate')
            token = ctx.step()
            print('token', len(token))
            """
        for _ in 0..<2 {
            let result = try bed.run(["/usr/bin/python3", "-c", script])
            #expect(result.succeeded, "\(result)\n\(bed.daemonLogText)")
            #expect(result.stdout.hasPrefix("token "), "\(result)")
        }
        let klist = try bed.expectSuccess("klist")
        let serviceLines = klist.stdout.split(separator: "\n").filter { $0.hasSuffix("host/localhost@CCACHED.TEST") }
        #expect(serviceLines.count == 1, "\(klist)")
    }

}
