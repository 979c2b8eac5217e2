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
struct ForeignPeerTests {
    @Test(
        "a peer of another uid gets KRB5_FCC_PERM for everything; the owner's caches are untouched",
        .enabled(if: getuid() == 0, "needs root to run a client as the user nobody; CI runs as root"))
    func foreignPeerRefused() throws {
        let bed = try KerberosTestbed()
        defer { bed.stop() }
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
            #expect(fields.count == 4 && fields[1] == "4" && fields[2] == "0"
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
        .enabled(if: getuid() == 0, "needs root to run the daemon as the user nobody; CI runs as root"))
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
        #expect(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"], "\(core)")
    }
}
