import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// ccached's cold start (issue 14) no longer maps libsystemd and libkrb5 at exec: they are loaded
/// on first real use (CSupport's LazySystemd.c, CKrb5Loader). Seen from outside, in a real
/// daemon: what /proc/PID/maps holds once it listens and has served a request.
@Suite("cold start")
struct ColdStartTests {
    /// The paths of the files mapped into `pid`, from /proc/PID/maps read to its end (procfs reports
    /// a size of 0, and a single read returns only the first page of lines).
    func mappedFiles(_ pid: pid_t) throws -> [String] {
        let fd = open("/proc/\(pid)/maps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        let maps = String(decoding: bytes, as: UTF8.self)
        return maps.split(separator: "\n").compactMap { line in
            line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first.map(String.init)
        }
    }

    @Test(
        "ccached serves without libkrb5 mapped, and without libsystemd unless a login session needs it",
        .requiresRoot("needs root: ccached is non-dumpable, so only root may read its /proc/PID/maps"))
    func librariesLoadedOnFirstUse() throws {
        let scratch = try ScratchDirectory.make("ccached-cold")
        defer { ScratchDirectory.remove(scratch) }
        let socket = scratch.path + "/socket"
        let ready = try ReadinessPipe()
        // No LISTEN_*, NOTIFY_SOCKET, WATCHDOG_USEC or JOURNAL_STREAM; standard error to a file, so
        // the log goes there and not to the journal.
        let daemon = try SpawnedProcess(
            path: ccachedBinary, arguments: [ccachedBinary, "--socket", socket, "--ready-fd", "3"],
            environment: ["PATH": "/usr/bin:/bin"], stderr: scratch.path + "/ccached.log", descriptor3: ready.writeEnd)
        defer {
            kill(daemon.processIdentifier, SIGTERM)
            daemon.waitUntilExit()
        }
        let word = ready.readLine()
        let log = { (try? String(contentsOfFile: scratch.path + "/ccached.log", encoding: .utf8)) ?? "" }
        try #require(word == "READY", "ccached did not start: \(word ?? "nothing")\n\(log())")

        // A request answered: whatever a client needs is in place by now.
        let status = try RawKCMConnection(path: socket).daemonStatus()
        #expect(status.pid == UInt32(daemon.processIdentifier))

        let files = try mappedFiles(daemon.processIdentifier)
        // The evidence was read: every process maps libc.
        try #require(files.contains { $0.hasSuffix("/libc.so.6") }, "no libc in the maps: \(files)")
        #expect(!files.contains { $0.contains("/libkrb5.so") }, "libkrb5 is mapped before any renewal: \(files)")
        // The daemon inherits this test's cgroup: inside a logind session it watches that session,
        // which takes libsystemd; outside one (CI, containers) nothing needs it.
        let cgroup = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        let libsystemdMapped = files.contains { $0.contains("/libsystemd.so") }
        if cgroup.contains("/session-") {
            print("cold start test: inside a logind session, so the daemon must load libsystemd to watch it")
            #expect(libsystemdMapped, "the daemon watches a login session without libsystemd? \(files)\n\(log())")
        } else {
            #expect(!libsystemdMapped, "libsystemd is mapped though nothing needs it: \(files)")
        }
    }
}
