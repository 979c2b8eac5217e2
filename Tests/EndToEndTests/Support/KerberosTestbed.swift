import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway MIT KDC on 127.0.0.1 and a real ccached on a private socket, with the environment
/// that points the stock MIT tools at them: the real parts every end-to-end test runs against.
///
/// Each testbed lives in its own temporary directory and is torn down by ``stop()``.
// @unchecked: the environment and paths are set before a test shares the testbed across threads, and
// only read afterwards; the daemon process is started and stopped by the test's own thread.
final class KerberosTestbed: @unchecked Sendable {
    let directory: URL
    let socketPath: String
    let realm: String
    private(set) var daemon: SpawnedProcess?
    private let daemonLog: URL
    /// The environment for MIT tools: `KRB5_CONFIG` = our fragment first, then the realm's file.
    private(set) var environment: [String: String]

    init(services: Int = 3) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ccached-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        directory = base
        socketPath = base.appendingPathComponent("run/kcm.sock").path
        daemonLog = base.appendingPathComponent("ccached.log")

        var env = ProcessInfo.processInfo.environment
        env["PATH"] = (env["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        env.removeValue(forKey: "KRB5CCNAME")
        env.removeValue(forKey: "KRB5_CONFIG")
        let kdcDirectory = base.appendingPathComponent("kdc").path
        let started = try runCommand(
            [repositoryRoot.appendingPathComponent("scripts/testkdc.sh").path, "start", kdcDirectory,
             "--services", "\(services)"],
            environment: env, scratch: base)
        guard started.succeeded else { throw TestbedError.setup("the test KDC did not start:\n\(started)") }
        realm = "CCACHED.TEST"

        let fragment = base.appendingPathComponent("ccached-krb5.conf")
        try """
        [libdefaults]
            default_ccache_name = KCM:
            kcm_socket = \(socketPath)

        """.write(to: fragment, atomically: true, encoding: .utf8)
        env["KRB5_CONFIG"] = fragment.path + ":" + kdcDirectory + "/krb5.conf"
        environment = env
        try startDaemon()
    }

    /// Starts ccached and waits until its socket accepts connections.
    func startDaemon(extraArguments: [String] = []) throws {
        let process = try SpawnedProcess(
            path: ccachedBinary,
            arguments: [ccachedBinary, "--socket", socketPath, "--log-level", "debug"] + extraArguments,
            environment: environment, stderr: daemonLog.path)
        daemon = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? RawKCMConnection(path: socketPath)) != nil { return }
            guard process.isRunning else { break }
            usleep(5_000)
        }
        throw TestbedError.setup("ccached did not come up on \(socketPath):\n\(daemonLogText)")
    }

    /// Sends SIGTERM and waits for the daemon to exit; returns its exit status.
    @discardableResult
    func stopDaemon() -> Int32? {
        guard let process = daemon else { return nil }
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        daemon = nil
        return process.terminationStatus
    }

    var daemonLogText: String { (try? String(contentsOf: daemonLog, encoding: .utf8)) ?? "" }

    /// Runs a command with the testbed's environment (plus `extra`).
    @discardableResult
    func run(_ arguments: String..., input: String? = nil, extra: [String: String] = [:]) throws -> CommandResult {
        try run(arguments, input: input, extra: extra)
    }

    func run(_ arguments: [String], input: String? = nil, extra: [String: String] = [:]) throws -> CommandResult {
        try runCommand(arguments, environment: environment.merging(extra) { $1 }, input: input, scratch: directory)
    }

    /// Runs a command that must succeed; records a test issue with its output otherwise.
    @discardableResult
    func expectSuccess(
        _ arguments: String..., input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> CommandResult {
        let result = try run(arguments, input: input)
        #expect(result.succeeded, "\(result)\n--- ccached log\n\(daemonLogText)", sourceLocation: sourceLocation)
        return result
    }

    /// `kinit` with the test user's password on standard input.
    @discardableResult
    func kinit(_ user: String, _ options: String..., sourceLocation: SourceLocation = #_sourceLocation) throws
        -> CommandResult
    {
        let result = try run(["kinit"] + options + [user], input: "pw-\(user)\n")
        #expect(result.succeeded, "\(result)\n--- ccached log\n\(daemonLogText)", sourceLocation: sourceLocation)
        return result
    }

    /// The default name MIT shows for the owner's primary cache: `KCM:<uid>`.
    var primaryName: String { "KCM:\(getuid())" }

    func stop() {
        stopDaemon()
        _ = try? runCommand(
            [repositoryRoot.appendingPathComponent("scripts/testkdc.sh").path, "stop",
             directory.appendingPathComponent("kdc").path],
            environment: environment, scratch: directory)
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

enum TestbedError: Error, CustomStringConvertible {
    case setup(String)
    var description: String {
        switch self {
        case .setup(let text): text
        }
    }
}

/// The lines of `klist -l` after its two header lines, as (principal, cache name) pairs.
func collectionListing(_ output: String) -> [(principal: String, cache: String)] {
    output.split(separator: "\n").dropFirst(2).compactMap { line in
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2 else { return nil }
        return (String(fields[0]), String(fields[1]))
    }
}
