import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 22, item 3: on SIGUSR2 (what the package's postinst sends on upgrade) a daemon
/// re-executes the binary installed at its path, handing over its sockets, its connections and its
/// state file; when it cannot, it keeps serving as it was.
@Suite("re-exec")
final class ReexecTests: TestbedSuite {
    /// Restarts the testbed's daemon from a copy of the ccached under test in the testbed's
    /// directory, which a test can replace or remove as an upgrade would; returns the copy's path.
    func startFromInstalledCopy() throws -> String {
        let directory = bed.directory.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("ccached").path
        try install(ccachedBinary, at: path)
        bed.stopDaemon()
        try bed.startDaemon(binary: path)
        return path
    }

    /// Puts a copy of `source` at `path` as dpkg does: written beside it, then renamed over it (the
    /// running file stays, deleted).
    func install(_ source: String, at path: String) throws {
        let temporary = path + ".dpkg-new"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.copyItem(atPath: source, toPath: temporary)
        #expect(chmod(temporary, 0o755) == 0)
        #expect(rename(temporary, path) == 0)
    }

    func executable(of pid: pid_t) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "?"
    }

    func cacheUUIDs(over connection: RawKCMConnection) throws -> [KCMUUID] {
        let reply = try connection.call(.getCacheUUIDList)
        guard case .uuids(let caches) = try KCMReply(payload: reply.payload, for: .getCacheUUIDList) else {
            throw TestbedError.setup("GET_CACHE_UUID_LIST: \(reply.status)")
        }
        return caches
    }

    @Test(
        "a daemon sent SIGUSR2 after its binary was replaced runs the new file under the same pid, with the same caches, credentials and UUIDs, and a connection opened before still answers"
    )
    func reexecutesTheInstalledBinary() throws {
        let path = try startFromInstalledCopy()
        let uid = getuid()
        try bed.kinit("alice", "-r", "5m")
        try bed.expectSuccess("kvno", "host/localhost")
        #expect(try bed.run(["kinit", "bob"], input: "pw-bob\n", extra: ["KRB5CCNAME": "KCM:\(uid):bob"]).succeeded)
        let klistBefore = try bed.run("klist", "-A", "-C").stdout
        let kept = try RawKCMConnection(path: bed.socketPath)
        let uuidsBefore = try cacheUUIDs(over: kept)
        #expect(uuidsBefore.count == 2)

        let pid = try #require(bed.daemon?.processIdentifier)
        try install(ccachedBinary, at: path)
        #expect(executable(of: pid) == path + " (deleted)")
        #expect(kill(pid, SIGUSR2) == 0)
        #expect(
            eventually(10) { bed.daemonLogText.contains("re-executed: serving") },
            "no re-exec:\n\(bed.daemonLogText)")
        #expect(executable(of: pid) == path, "the new binary runs: \(executable(of: pid))")
        #expect(bed.daemon?.isRunning == true)
        #expect(bed.daemonLogText.contains("restored 2 cache(s)"), "\(bed.daemonLogText)")

        // The connection opened before the exec is served by the new code.
        #expect(try cacheUUIDs(over: kept) == uuidsBefore)
        #expect(try bed.run("klist", "-A", "-C").stdout == klistBefore)
        try bed.expectSuccess("kvno", "host/localhost")
        try bed.expectSuccess("kinit", "-R")
        #expect(bed.stopDaemon() == 0)
        #expect(!FileManager.default.fileExists(atPath: bed.socketPath), "a normal stop still removes the socket")
    }

    @Test(
        "a daemon whose installed binary is gone, or does not read its state layout, or that has no state file, does not re-execute: it says why and keeps serving its tickets"
    )
    func keepsServingWhenItCannot() throws {
        let path = try startFromInstalledCopy()
        try bed.kinit("alice")
        let pid = try #require(bed.daemon?.processIdentifier)

        #expect(unlink(path) == 0)
        #expect(kill(pid, SIGUSR2) == 0)
        #expect(
            eventually(10) { bed.daemonLogText.contains("not re-executing: \(path): ") },
            "\(bed.daemonLogText)")
        try bed.expectSuccess("klist")

        // A binary that refuses layout version 1 (as an older ccached refuses a newer layout).
        try "#!/bin/sh\nexit 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(chmod(path, 0o755) == 0)
        #expect(kill(pid, SIGUSR2) == 0)
        #expect(
            eventually(10) { bed.daemonLogText.contains("does not read state files of layout version 1") },
            "\(bed.daemonLogText)")
        #expect(bed.daemonLogText.contains("this daemon keeps serving"))
        #expect(executable(of: pid).hasSuffix(" (deleted)"))
        try bed.expectSuccess("klist")
        try bed.expectSuccess("kvno", "host/localhost")

        // A daemon without a state file: the new code would start empty.
        try install(ccachedBinary, at: path)
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--no-state"], binary: path)
        try bed.kinit("alice")
        let stateless = try #require(bed.daemon?.processIdentifier)
        #expect(kill(stateless, SIGUSR2) == 0)
        #expect(
            eventually(10) {
                bed.daemonLogText.contains("there is no state file (--no-state, --secret-memory, or it stopped)")
            },
            "\(bed.daemonLogText)")
        try bed.expectSuccess("klist")
    }
}

/// The check a daemon makes of the installed binary before it re-executes it (no daemon needed).
@Suite("re-exec: state layout check")
struct StateLayoutCheckTests {
    @Test("ccached --check-state-layout accepts the layouts it reads and refuses a newer one")
    func checkStateLayout() throws {
        func status(_ version: String) throws -> Int32 {
            let process = try SpawnedProcess(
                path: ccachedBinary, arguments: [ccachedBinary, "--check-state-layout", version], environment: [:])
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(try status("1") == 0)
        #expect(try status("2") == 2)
        #expect(try status("0") == 2)
    }
}
