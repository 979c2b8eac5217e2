import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// MIT's `t_skew.py` with the default cache in KCM: a KDC whose clock is an hour behind. `kinit`
/// learns the offset (kdc_timesync) and stores it in the cache; MIT's client applies a cache's
/// offset only when it iterates the cache, so the daemon answers its RETRIEVE "not supported" for
/// such a cache (`RequestDispatcher.clientClockOffset`).
@Suite("clock skew")
final class ClockSkewTests: TestbedSuite {
    override class var services: Int { 0 }

    @Test("against a KDC one hour behind (krb5kdc -T -3600), kinit and then kvno succeed through ccached")
    func kvnoWithSkewedKDC() throws {
        // The testbed's KDC, restarted on its port with its clock an hour in the past.
        let kdcDirectory = bed.directory.appendingPathComponent("kdc")
        let pidFile = kdcDirectory.appendingPathComponent("kdc.pid")
        let kdcPID = try #require(
            pid_t((try String(contentsOf: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(kdcPID, SIGTERM)
        #expect(eventually(10) { kill(kdcPID, 0) != 0 })
        var environment = bed.environment
        environment["KRB5_KDC_PROFILE"] = kdcDirectory.appendingPathComponent("kdc.conf").path
        environment["KRB5_CONFIG"] = kdcDirectory.appendingPathComponent("krb5.conf").path
        let kdc = try SpawnedProcess(
            path: "/usr/sbin/krb5kdc", arguments: ["krb5kdc", "-n", "-T", "-3600", "-r", "CCACHED.TEST"],
            environment: environment, stderr: kdcDirectory.appendingPathComponent("kdc-skewed.stdout").path)
        defer {
            kill(kdc.processIdentifier, SIGTERM)
            kdc.waitUntilExit()
        }
        // kinit adjusts to the KDC's clock (kdc_timesync, on by default); the first may race the start.
        var kinit = CommandResult(arguments: [], status: 1, stdout: "", stderr: "")
        #expect(
            try eventually(10) {
                kinit = try bed.run(["kinit", "alice"], input: "pw-alice\n")
                return kinit.succeeded
            }, "\(kinit)\n\(bed.daemonLogText)")
        let offset = try RawKCMConnection(path: bed.socketPath).call(.getKDCOffset(name: KCMCacheName("\(getuid())")))
        #expect(offset.status == .success)
        var reader = KCMReader(offset.payload)
        let seconds = try reader.readInt32()
        #expect(abs(seconds + 3600) <= 5, "the cache holds the KDC's offset: \(seconds)")

        // kvno looks the TGT up with RETRIEVE: with the offset unapplied its TGS request is an hour
        // off, and the KDC answers "Clock skew too great".
        let kvno = try bed.run("kvno", "host/localhost")
        #expect(kvno.succeeded, "\(kvno)\n--- ccached log\n\(bed.daemonLogText)")
        // Again, with the service ticket now cached.
        let again = try bed.run("kvno", "host/localhost")
        #expect(again.succeeded, "\(again)")
        #expect(try bed.run("klist").stdout.contains("host/localhost@CCACHED.TEST"))
    }
}
