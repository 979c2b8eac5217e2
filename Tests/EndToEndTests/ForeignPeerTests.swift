import CSupport
import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A process of another uid reaching the socket (here by opening up the file modes, as a
/// misconfiguration or a future hand-off would) is refused every request by SO_PEERCRED, and learns
/// nothing of the owner's caches. Needs root to switch to `nobody`.
@Suite("peers of another uid")
final class ForeignPeerTests: TestbedSuite {
    @Test(
        "a peer of another uid gets KRB5_FCC_PERM for everything; the owner's caches are untouched",
        .requiresRoot("needs root to run a client as the user nobody"))
    func foreignPeerRefused() throws {
        try bed.kinit("alice")
        try bed.expectSuccess("kvno", "host/localhost")
        let before = try bed.expectSuccess("klist").stdout

        // Open the way through the file system so that only the peer check stands in between.
        chmod(bed.directory.path, 0o755)
        chmod(bed.directory.appendingPathComponent("run").path, 0o755)
        chmod(bed.socketPath, 0o666)
        let kdc = bed.directory.appendingPathComponent("kdc")
        chmod(kdc.path, 0o755)
        chmod(kdc.appendingPathComponent("krb5.conf").path, 0o644)
        chmod(bed.directory.appendingPathComponent("ccached-krb5.conf").path, 0o644)

        let asNobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        let klist = try bed.run(asNobody + ["klist"], extra: ["HOME": "/"])
        #expect(klist.status != 0, "\(klist)")
        #expect(klist.stderr.contains("permissions incorrect"), "\(klist)")
        let klistAll = try bed.run(asNobody + ["klist", "-l"], extra: ["HOME": "/"])
        #expect(klistAll.status != 0, "\(klistAll)")
        #expect(!klistAll.stdout.contains("alice"), "\(klistAll)")
        let kdestroy = try bed.run(asNobody + ["kdestroy", "-A"], extra: ["HOME": "/"])
        #expect(kdestroy.status != 0 || kdestroy.stderr.contains("permissions incorrect"), "\(kdestroy)")

        // Byte level: every opcode, even ones that reveal nothing, gets FCC_PERM and an empty payload.
        let probe = """
            import socket, struct, sys
            s = socket.socket(socket.AF_UNIX)
            s.connect(sys.argv[1])
            for op in (20, 18, 8, 5, 3, 13001, 999):
                body = struct.pack('>BBH', 2, 0, op) + b'0\\0'
                s.sendall(struct.pack('>I', len(body)) + body)
                length, transport, status = struct.unpack('>IIi', s.recv(12))
                print(op, length, transport, status)
            """
        let raw = try bed.run(asNobody + ["/usr/bin/python3", "-c", probe, bed.socketPath], extra: ["HOME": "/"])
        #expect(raw.succeeded, "\(raw)")
        let lines = raw.stdout.split(separator: "\n")
        #expect(lines.count == 7, "\(raw)")
        for line in lines {
            let fields = line.split(separator: " ")
            #expect(
                fields.count == 4 && fields[1] == "4" && fields[2] == "0"
                    && fields[3] == "\(KCMStatus.fccPerm.rawValue)", "\(line)")
        }

        let after = try bed.expectSuccess("klist").stdout
        #expect(after == before)
        // The replies above are the refusal (no status counter counts foreign peers); this warning is
        // what tells the owner, in the journal, why a client of another uid gets nothing.
        #expect(bed.daemonLogText.contains("every request will be refused with KRB5_FCC_PERM"))
    }
}

/// The daemon is non-dumpable from the start: no core file, and its own uid can neither ptrace it
/// nor read its memory through /proc (which then belongs to root). Needs root to run it as nobody.
@Suite("core dumps and tracing")
struct NonDumpableTests {
    @Test(
        "a daemon running as nobody has its /proc/PID/mem owned by root and a core limit of 0",
        .requiresRoot("needs root to run the daemon as the user nobody"))
    func nonDumpable() throws {
        let daemon = try NobodyDaemon()
        let pid = daemon.pid
        #expect(daemon.uid == 65534)
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        #expect(status.contains("Uid:\t65534\t65534\t65534\t65534"), "\(status)")
        var info = stat()
        #expect(stat("/proc/\(pid)/mem", &info) == 0)
        #expect(info.st_uid == 0, "a dumpable process of nobody would have its /proc/PID/mem owned by nobody")
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let core = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") } ?? ""
        #expect(
            core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"], "\(core)")
    }
}

/// A refused peer costs the owner nothing: its connections do not count against the owner's
/// `--max-connections`, its half-sent bodies are never buffered, and its warnings are rate-limited.
@Suite("refused peers under load")
final class RefusedPeerLoadTests: TestbedSuite {
    static let flood = """
        import socket, struct, sys, time
        path, ready, count, partial = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        held = []
        for index in range(count):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
            except OSError:
                continue
            held.append(s)
            if index < partial:
                # A 16 MiB frame, all but its last byte.
                try:
                    s.sendall(struct.pack('>I', 16 << 20) + b'\\0' * ((16 << 20) - 1))
                except OSError:
                    pass
        open(ready, 'w').write(str(len(held)))
        time.sleep(60)
        """

    @Test(
        "200 connections and 8 nearly complete 16 MiB frames of another uid leave the owner served and the daemon small",
        .requiresRoot("needs root to run a client as the user nobody"))
    func floodOfRefusedPeers() throws {
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--max-connections", "16"])
        try bed.kinit("alice")
        chmod(bed.directory.path, 0o755)
        chmod(bed.directory.appendingPathComponent("run").path, 0o755)
        chmod(bed.socketPath, 0o666)
        let script = bed.directory.appendingPathComponent("flood.py")
        try Self.flood.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o644)
        // Somewhere nobody may write its "connected" note.
        let outbox = bed.directory.appendingPathComponent("outbox")
        try FileManager.default.createDirectory(at: outbox, withIntermediateDirectories: true)
        chmod(outbox.path, 0o777)
        let readyFile = outbox.appendingPathComponent("ready").path
        let flooder = try SpawnedProcess(
            path: "/usr/bin/setpriv",
            arguments: [
                "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "/usr/bin/python3",
                script.path, bed.socketPath, readyFile, "200", "8",
            ],
            environment: ["PATH": "/usr/bin:/bin", "HOME": "/"])
        defer {
            kill(flooder.processIdentifier, SIGKILL)
            flooder.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: readyFile) && Date() < deadline { usleep(50_000) }
        #expect(FileManager.default.fileExists(atPath: readyFile), "the flood never finished connecting")

        // The owner is still served, and more than --max-connections of its own at once would be
        // refused only for its own connections: the stranger's never counted.
        let klist = try bed.expectSuccess("klist")
        #expect(klist.stdout.contains("alice@"), "\(klist)")
        let status = try bed.run(
            [ccachectlBinary, "status", "--json", "--no-start"], extra: ["CCACHED_SOCKET": bed.socketPath])
        #expect(status.succeeded, "\(status)")
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let limits = object?["limits"] as? [String: Any]
        let connections = limits?["connections"] as? [String: Any]
        #expect(connections?["refused"] as? Int == 0, "\(status)")
        #expect((connections?["used"] as? Int ?? 99) <= 2, "\(status)")

        // Nothing of the 8 × 16 MiB was buffered: the daemon stays far below what buffering would cost.
        let pid = object?["pid"] as? Int ?? 0
        let proc = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let rss =
            proc.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[1]) } ?? -1
        #expect(rss > 0 && rss < 64 * 1024, "daemon RSS \(rss) KiB with 8 partial 16 MiB frames from a refused peer")

        // One warning for the flood, not one per connection.
        let warnings = bed.daemonLogText.components(separatedBy: "is neither the owner").count - 1
        #expect(warnings >= 1 && warnings <= 3, "\(warnings) warnings about the refused peer")
    }
}
