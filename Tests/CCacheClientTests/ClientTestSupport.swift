import CCacheClient
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The ccached binary the client starts: `$CCACHED_BIN`, else the build next to the tests.
let daemonBinary: String = {
    if let path = ProcessInfo.processInfo.environment["CCACHED_BIN"], !path.isEmpty { return path }
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("ccached").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
        url.deleteLastPathComponent()
    }
    return url.appendingPathComponent(".build/debug/ccached").path
}()

/// A private scratch directory (0700) removed by ``cleanup()``; daemons started there are stopped.
final class ClientScratch {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ccached-client-\(UUID().uuidString.prefix(8))").path
        mkdir(path, 0o700)
    }

    /// An environment whose socket is `<scratch>/<name>/kcm.sock` and whose daemon is the build's.
    func environment(socket name: String = "run") -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["CCACHED_SOCKET"] = "\(path)/\(name)/kcm.sock"
        env["CCACHED_DAEMON"] = daemonBinary
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
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Whether a process exists (a zombie counts as gone).
func processAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return !stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
}

/// Polls `condition` every 20 ms for up to `seconds`.
func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
