import CSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A ccached running as the user nobody in a private directory, for the root-only tests that need a
/// daemon of another uid. Started fully detached (`ccached_spawn_detached`: Foundation's Process
/// would wait for the daemon to close a descriptor it inherited) through `sh`, with `prefix` run
/// before `setpriv` (e.g. `prlimit …`) and stderr appended to ``log``; SIGKILLed when released.
final class NobodyDaemon {
    let base: URL
    let socket: String
    let log: String
    /// A connection opened once the daemon listens; its SO_PEERCRED gave ``pid`` and ``uid``.
    let connection: RawKCMConnection
    let pid: pid_t
    let uid: uid_t

    init(prefix: [String] = []) throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("ccached-nobody-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: false)
        chmod(base.path, 0o711)
        let run = base.appendingPathComponent("run").path
        mkdir(run, 0o700)
        chown(run, 65534, 65534)
        socket = run + "/kcm.sock"
        log = base.appendingPathComponent("ccached.log").path
        let words =
            prefix + ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", ccachedBinary, "--socket", socket]
            + ["--idle-timeout", "0"]
        let command = "exec " + words.map { "'\($0)'" }.joined(separator: " ") + " 2>>'\(log)'"
        let arguments = ["/bin/sh", "-c", command]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = ccached_spawn_detached("/bin/sh", &argv, -1)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        let deadline = Date().addingTimeInterval(10)
        var opened: RawKCMConnection?
        while opened == nil && Date() < deadline {
            opened = try? RawKCMConnection(path: socket)
            if opened == nil { usleep(10_000) }
        }
        guard let opened else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: base)
            throw TestbedError.setup("ccached as nobody did not come up on \(socket):\n\(text)")
        }
        connection = opened
        var pid: pid_t = -1
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard ccached_peer_credentials(opened.fd, &pid, &uid, &gid) == 0 else { throw POSIXError(.EIO) }
        self.pid = pid
        self.uid = uid
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    deinit {
        kill(pid, SIGKILL)
        try? FileManager.default.removeItem(at: base)
    }
}
