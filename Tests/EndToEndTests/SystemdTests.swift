import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// ccached under systemd's protocols, without systemd as PID 1: socket activation through
/// `systemd-socket-activate`, `sd_notify` messages on a test NOTIFY_SOCKET, and the unit files
/// checked by `systemd-analyze verify`.
@Suite("systemd integration")
final class SystemdTests: TestbedSuite {
    /// A datagram socket standing in for systemd's notification socket.
    final class NotifyReceiver {
        let path: String
        let fd: Int32

        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        }

        deinit { close(fd) }

        /// Messages until one contains `needle` (or the deadline passes).
        func receive(until needle: String, seconds: Int32 = 10) -> [String] {
            var messages: [String] = []
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let deadline = Date().addingTimeInterval(Double(seconds))
            while Date() < deadline {
                guard poll(&descriptor, 1, 200) > 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { continue }
                let message = String(decoding: buffer[0..<count], as: UTF8.self)
                messages.append(message)
                if message.contains(needle) { break }
            }
            return messages
        }
    }

    @Test("Type=notify: READY=1, STATUS= with the caches held, WATCHDOG=1, STOPPING=1")
    func notifications() throws {
        bed.stopDaemon()
        let receiver = try NotifyReceiver(path: bed.directory.appendingPathComponent("notify").path)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: ccachedBinary)
        daemon.arguments = ["--socket", bed.socketPath]
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = receiver.path
        env["WATCHDOG_USEC"] = "2000000"
        daemon.environment = env
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer {
            if daemon.isRunning { daemon.terminate() }
            daemon.waitUntilExit()
        }
        let ready = receiver.receive(until: "READY=1")
        #expect(ready.contains { $0.contains("READY=1") }, "\(ready)")
        try bed.kinit("alice")
        let status = receiver.receive(until: "STATUS=1 cache, 2 credentials")
        #expect(status.contains { $0.contains("STATUS=1 cache, 2 credentials") }, "\(status)")
        let watchdog = receiver.receive(until: "WATCHDOG=1")
        #expect(watchdog.contains("WATCHDOG=1"), "\(watchdog)")
        kill(daemon.processIdentifier, SIGTERM)
        let stopping = receiver.receive(until: "STOPPING=1")
        #expect(stopping.contains("STOPPING=1"), "\(stopping)")
    }

    /// Starts `systemd-socket-activate` detached through a shell and returns its pid. Foundation's
    /// Process cannot run it directly: it tracks a child through a descriptor that
    /// systemd-socket-activate closes before exec, and then blocks waiting for a live process.
    func launchActivator(_ arguments: [String], log: String, bed: KerberosTestbed) throws -> Int32 {
        let quoted = arguments.map { "'" + $0 + "'" }.joined(separator: " ")
        let started = try bed.run([
            "sh", "-c", "systemd-socket-activate \(quoted) </dev/null >>'\(log)' 2>&1 & echo $!",
        ])
        guard let pid = Int32(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestbedError.setup("systemd-socket-activate did not start:\n\(started)")
        }
        return pid
    }

    func waitGone(_ pid: Int32, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if stat.isEmpty || stat.contains(") Z ") { return true }
            usleep(20_000)
        }
        return false
    }

    @Test("socket activation: the daemon adopts systemd's socket, serves MIT tools, and leaves the path alone")
    func socketActivation() throws {
        bed.stopDaemon()
        #expect(!FileManager.default.fileExists(atPath: bed.socketPath))
        let log = bed.directory.appendingPathComponent("activated.log").path
        let pid = try launchActivator(
            ["-l", bed.socketPath, ccachedBinary, "--socket", bed.socketPath, "--log-level", "debug"], log: log,
            bed: bed)
        defer { kill(pid, SIGKILL) }
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: bed.socketPath) && Date() < deadline { usleep(10_000) }
        try bed.kinit("alice")
        try bed.expectSuccess("kvno", "host/localhost")
        let klist = try bed.expectSuccess("klist")
        #expect(klist.stdout.contains("host/localhost@CCACHED.TEST"), "\(klist)")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("Execing"), "\(text)")
        #expect(text.contains("listening"), "\(text)")
        // systemd-socket-activate execs ccached in place: stop it; the socket file is systemd's and stays.
        kill(pid, SIGTERM)
        #expect(waitGone(pid))
        #expect(FileManager.default.fileExists(atPath: bed.socketPath))
        #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("stopping"))
    }

    @Test("socket activation with more than one socket is refused with a message")
    func tooManySockets() throws {
        bed.stopDaemon()
        let first = bed.directory.appendingPathComponent("first.sock").path
        let second = bed.directory.appendingPathComponent("second.sock").path
        let log = bed.directory.appendingPathComponent("two.log").path
        let pid = try launchActivator(["-l", first, "-l", second, ccachedBinary], log: log, bed: bed)
        defer { kill(pid, SIGKILL) }
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: second) && Date() < deadline { usleep(10_000) }
        // systemd-socket-activate execs ccached on the first connection.
        _ = try? RawKCMConnection(path: first)
        #expect(waitGone(pid))
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("systemd passed 2 sockets"), "\(text)")
    }
}

/// `ccachectl stop` against a daemon whose listening socket another process made, as systemd's
/// socket activation does: the process at the other end of the socket (SO_PEERCRED) is then the
/// activator, not the daemon. A stand-in activator binds and listens, forks, and execs ccached in the
/// child with the socket as descriptor 3 and `LISTEN_FDS=1` (systemd-socket-activate execs in its own
/// process, so it cannot tell the two apart).
@Suite("stop under an activator")
final class StopUnderActivatorTests: TestbedSuite {
    static let activator = """
        import os, socket, sys, time
        path, daemon, log = sys.argv[1], sys.argv[2], sys.argv[3]
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(16)
        child = os.fork()
        if child == 0:
            if listener.fileno() != 3:
                os.dup2(listener.fileno(), 3)
            os.set_inheritable(3, True)
            os.environ["LISTEN_FDS"] = "1"
            os.environ["LISTEN_PID"] = str(os.getpid())
            err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(err, 2)
            os.execv(daemon, [daemon, "--socket", path, "--idle-timeout", "0"])
        print(child, flush=True)
        # Stays alive, holding the listening socket, as a socket unit does.
        while True:
            time.sleep(1)
        """

    @Test("stop asks the daemon: the daemon exits and the activator lives")
    func stopAsksTheDaemon() throws {
        bed.stopDaemon()
        let socket = bed.directory.appendingPathComponent("activated/kcm.sock")
        try FileManager.default.createDirectory(
            at: socket.deletingLastPathComponent(), withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let script = bed.directory.appendingPathComponent("activator.py")
        try Self.activator.write(to: script, atomically: true, encoding: .utf8)
        let pidFile = bed.directory.appendingPathComponent("activator.out").path
        let log = bed.directory.appendingPathComponent("activated.log").path
        let activator = try SpawnedProcess(
            path: "/usr/bin/python3", arguments: ["python3", script.path, socket.path, ccachedBinary, log],
            environment: bed.environment, stdout: pidFile)
        defer {
            kill(activator.processIdentifier, SIGKILL)
            activator.waitUntilExit()
        }
        var daemonPID: pid_t = 0
        let deadline = Date().addingTimeInterval(10)
        while daemonPID == 0 && Date() < deadline {
            daemonPID =
                pid_t(
                    (try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(
                        in: .whitespacesAndNewlines) ?? "") ?? 0
            usleep(20_000)
        }
        #expect(daemonPID > 0)
        let env = ["CCACHED_SOCKET": socket.path, "CCACHED_DAEMON": ccachedBinary]
        let status = try bed.run([ccachectlBinary, "status", "--json", "--no-start"], extra: env)
        #expect(status.succeeded, "\(status)")
        let reported =
            (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["pid"] as? Int
        #expect(reported == Int(daemonPID), "the daemon reports its own pid, not the activator's: \(status)")

        let stop = try bed.run([ccachectlBinary, "stop"], extra: env)
        #expect(stop.succeeded, "\(stop)")
        // The daemon is gone (kill -0 fails once the activator... has not reaped it: a zombie still
        // answers kill -0, so look at /proc for a live process instead).
        let gone = Date().addingTimeInterval(5)
        var state = ""
        repeat {
            state = (try? String(contentsOfFile: "/proc/\(daemonPID)/stat", encoding: .utf8)) ?? ""
            if state.isEmpty || state.contains(") Z ") { break }
            usleep(20_000)
        } while Date() < gone
        #expect(state.isEmpty || state.contains(") Z "), "the daemon still runs: \(state)")
        #expect(activator.isRunning, "the activator must not have been signalled")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("a client asked (CCACHED_STOP)"), "\(text)")
    }
}

/// The unit files as shipped, checked by systemd itself (no daemon needed).
@Suite("systemd unit files")
struct UnitFileTests {
    @Test("the unit files pass systemd-analyze verify")
    func unitsVerify() throws {
        let scratch = try ScratchDirectory.make("ccached-units")
        defer { ScratchDirectory.remove(scratch) }
        try FileManager.default.createDirectory(
            at: scratch.appendingPathComponent("runtime"), withIntermediateDirectories: true)
        chmod(scratch.appendingPathComponent("runtime").path, 0o700)
        let binDirectory = URL(fileURLWithPath: ccachedBinary).deletingLastPathComponent().path + "/"
        var units: [String] = []
        for name in ["ccached.socket", "ccached.service", "ccached-krb5-conf.service"] {
            let text = try String(contentsOf: repositoryRoot.appendingPathComponent("systemd/\(name)"), encoding: .utf8)
            if name.hasSuffix(".service") { #expect(text.contains("/usr/local/bin/")) }
            let path = scratch.appendingPathComponent(name).path
            try text.replacingOccurrences(of: "/usr/local/bin/", with: binDirectory).write(
                toFile: path, atomically: true, encoding: .utf8)
            units.append(path)
        }
        let result = try runCommand(
            ["systemd-analyze", "verify", "--user", "--man=no"] + units,
            environment: ["XDG_RUNTIME_DIR": scratch.appendingPathComponent("runtime").path, "PATH": "/usr/bin:/bin"],
            scratch: scratch)
        #expect(result.succeeded, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
    }
}
