import CCacheClient
import Foundation
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A private scratch directory (0700) removed by ``cleanup()``; daemons started there are stopped.
final class ClientScratch {
    let path: String
    init() throws {
        path = try ScratchDirectory.make("ccached-client").path
    }

    /// An environment whose socket is `<scratch>/<name>/kcm.sock` and whose daemon is the build's.
    func environment(socket name: String = "run") -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["CCACHED_SOCKET"] = "\(path)/\(name)/kcm.sock"
        env["CCACHED_DAEMON"] = ccachedBinary
        return env
    }

    /// Creates `<scratch>/<name>` 0700 for a socket.
    func socketDirectory(_ name: String = "run") -> String {
        let directory = "\(path)/\(name)"
        mkdir(directory, 0o700)
        return directory
    }

    func cleanup() {
        // Stop any daemon still listening here (each was started with a short idle timeout anyway).
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for entry in entries {
                var env = environment(socket: entry)
                env["CCACHED_DAEMON"] = "/nonexistent"
                if let context = try? CCacheContext(options: .init(autoStart: false, environment: env)) {
                    _ = try? context.stopDaemon()
                }
            }
        }
        ScratchDirectory.remove(URL(fileURLWithPath: path))
    }
}

/// The base of a suite whose every test gets its own ``ClientScratch``: Swift Testing makes one
/// instance of a suite per test, so `init` is each test's setup and `deinit` its cleanup.
class ScratchSuite {
    let scratch: ClientScratch

    init() throws {
        scratch = try ClientScratch()
    }

    deinit { scratch.cleanup() }
}

/// Whether a process exists (a zombie counts as gone).
func processAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return !stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
}
