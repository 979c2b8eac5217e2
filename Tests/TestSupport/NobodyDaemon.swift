import CSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A ccached running as the user nobody in a private directory, for the root-only tests that need a
/// daemon of another uid. Started fully detached (`ccached_spawn_detached`: Foundation's Process
/// would wait for the daemon to close a descriptor it inherited) through `sh`, with `prefix` run
/// before `setpriv` (e.g. `prlimit …`) and stderr appended to ``log``; SIGKILLed when released.
/// It is known to listen once it writes READY on its `--ready-fd`.
package final class NobodyDaemon {
    /// The private directory (0711) holding `run/` and the log.
    package let base: URL
    /// The daemon's socket.
    package let socket: String
    /// The daemon's standard error.
    package let log: String
    /// A connection opened once the daemon listens; its SO_PEERCRED gave ``pid`` and ``uid``.
    package let connection: RawKCMConnection
    /// The daemon's pid.
    package let pid: pid_t
    /// The daemon's uid (nobody's).
    package let uid: uid_t

    /// Starts the daemon and waits for its READY.
    package init(prefix: [String] = [], arguments extra: [String] = []) throws {
        base = try ScratchDirectory.make("ccached-nobody", mode: 0o711)
        let run = base.appendingPathComponent("run").path
        mkdir(run, 0o700)
        chown(run, 65534, 65534)
        socket = run + "/kcm.sock"
        log = base.appendingPathComponent("ccached.log").path
        let words =
            prefix + [
                "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", ccachedBinary, "--socket",
                socket,
            ]
            + ["--idle-timeout", "0", "--ready-fd", "3"] + extra
        let command = "exec " + words.map { "'\($0)'" }.joined(separator: " ") + " 2>>'\(log)'"
        let arguments = ["/bin/sh", "-c", command]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let readiness = try ReadinessPipe()
        let spawned = ccached_spawn_detached("/bin/sh", &argv, readiness.writeEnd)
        guard spawned == 0 else {
            ScratchDirectory.remove(base)
            throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO)
        }
        let word = readiness.readLine()
        guard word == "READY", let opened = try? RawKCMConnection(path: socket) else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            ScratchDirectory.remove(base)
            throw TestbedError.setup(
                "ccached as nobody did not come up on \(socket) (--ready-fd said \(word ?? "nothing")):\n\(text)")
        }
        connection = opened
        var pid: pid_t = -1
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard ccached_peer_credentials(opened.fd, &pid, &uid, &gid) == 0 else { throw POSIXError(.EIO) }
        self.pid = pid
        self.uid = uid
    }

    /// What the daemon has written to its log so far.
    package var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    deinit {
        kill(pid, SIGKILL)
        ScratchDirectory.remove(base)
    }
}
