import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Principals are bounded (issue 12, item 3): the request that took a daemon from 8 to 371 MiB.
@Suite("principal limits")
final class PrincipalLimitTests: TestbedSuite {
    @Test("8 INITIALIZEs with a 4 MiB principal of 838,860 components are refused; RSS stays flat; status counts names")
    func hugePrincipalsRefused() throws {
        try bed.kinit("alice")
        let pid = bed.daemon!.processIdentifier
        let huge = KCMPrincipal(realm: Array("CCACHED.TEST".utf8), components: Array(repeating: [0x61], count: 838_860))
        let connection = try RawKCMConnection(path: bed.socketPath)
        func sendEight(_ round: Int) throws {
            for index in 0..<8 {
                let frame = KCMRequest.initialize(
                    name: KCMCacheName("\(getuid()):big\(round)-\(index)"), principal: huge)
                #expect(frame.encodedFrame().count > 4 << 20)
                #expect(try connection.call(frame).status == .ccIO, "INITIALIZE \(round)-\(index) was not refused")
            }
        }
        let start = residentKiB(pid)
        try sendEight(0)
        let afterEight = residentKiB(pid)
        try sendEight(1)
        try sendEight(2)
        let afterTwentyFour = residentKiB(pid)
        print(
            "ccached RSS: \(start) KiB before, \(afterEight) KiB after 8 refused 4 MiB principals, "
                + "\(afterTwentyFour) KiB after 24")
        // The issue saw +363 MiB for 8. What the first 8 leave is the allocator keeping a few 4 MiB
        // request buffers (one per connection thread's malloc arena, so a few more can appear later);
        // 16 more must stay far below what storing them would cost: 45 MiB each, 720 MiB for 16.
        #expect(afterEight - start < 32 * 1024, "8 refused principals cost \(afterEight - start) KiB")
        #expect(
            afterTwentyFour - afterEight < 32 * 1024,
            "16 more refused principals cost \(afterTwentyFour - afterEight) KiB")
        #expect(
            bed.daemonLogText.contains("principal component count is 838860, more than the limit of 32"),
            "the log does not say why:\n\(bed.daemonLogText.suffix(2000))")

        // Nothing was stored; status still counts the one real cache, name and principal included.
        let status = try bed.run(
            [
                URL(fileURLWithPath: ccachedBinary).deletingLastPathComponent().appendingPathComponent("ccachectl")
                    .path,
                "status", "--json",
            ],
            extra: ["CCACHED_SOCKET": bed.socketPath])
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect(object?["caches"] as? Int == 1, "\(status)")
        let list = try bed.expectSuccess("klist", "-l")
        #expect(!list.stdout.contains("big"), "\(list)")
        // An empty cache is not free any more: destroy the tickets, keep the cache, see bytes > 0.
        let empty = try RawKCMConnection(path: bed.socketPath)
        #expect(
            try empty.call(
                .initialize(name: KCMCacheName("\(getuid()):empty"), principal: KCMPrincipal("e@CCACHED.TEST"))
            ).status == .success)
        let after2 = try bed.run(
            [
                URL(fileURLWithPath: ccachedBinary).deletingLastPathComponent().appendingPathComponent("ccachectl")
                    .path,
                "status", "--json",
            ],
            extra: ["CCACHED_SOCKET": bed.socketPath])
        let bytesBefore = object?["credential_bytes"] as? Int ?? 0
        let bytesAfter =
            (try JSONSerialization.jsonObject(with: Data(after2.stdout.utf8)) as? [String: Any])?["credential_bytes"]
            as? Int ?? 0
        #expect(
            bytesAfter > bytesBefore,
            "an empty cache's name and principal were not counted: \(bytesBefore) -> \(bytesAfter)")
    }

    func residentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
    }
}
