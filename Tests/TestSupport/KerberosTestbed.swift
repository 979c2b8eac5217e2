import Foundation
import KCM

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway MIT KDC on 127.0.0.1 and a real ccached on a private socket, with the environment
/// that points the stock MIT tools at them: the real parts every end-to-end test runs against.
///
/// Each testbed lives in its own private temporary directory and is torn down by ``stop()``.
// @unchecked: the environment and paths are set before a test shares the testbed across threads, and
// only read afterwards; the daemon process is started and stopped by the test's own thread.
package final class KerberosTestbed: @unchecked Sendable {
    /// The testbed's private directory (KDC, daemon log, command output).
    package let directory: URL
    /// The daemon's socket.
    package let socketPath: String
    /// The KDC's realm.
    package let realm: String
    /// The running daemon, if any.
    package private(set) var daemon: SpawnedProcess?
    private let daemonLog: URL
    /// The environment for MIT tools: `KRB5_CONFIG` = our fragment first, then the realm's file.
    package private(set) var environment: [String: String]
    /// The KDC, in `directory/kdc`.
    package let kdc: TestKDC

    /// Starts a KDC with `services` host principals, writes the krb5.conf fragment and starts ccached.
    package init(services: Int = 3) throws {
        let base = try ScratchDirectory.make("ccached-e2e")
        directory = base
        socketPath = base.appendingPathComponent("run/kcm.sock").path
        daemonLog = base.appendingPathComponent("ccached.log")

        kdc = try TestKDC(in: base, services: services)
        realm = kdc.realm

        let fragment = base.appendingPathComponent("ccached-krb5.conf")
        try """
        [libdefaults]
            default_ccache_name = KCM:
            kcm_socket = \(socketPath)

        """.write(to: fragment, atomically: true, encoding: .utf8)
        var env = kdc.environment
        env["KRB5_CONFIG"] = fragment.path + ":" + kdc.configuration
        environment = env
        try startDaemon()
    }

    /// Starts ccached and waits for the `READY` it writes on `--ready-fd` once it listens (no
    /// probing connection, no sleep). `EXISTS`, `ERROR …` or silence is thrown with the daemon's log.
    /// With `stateDescriptor`, the daemon gets it as its descriptor 4 and `--state-fd 4`; with
    /// `binary`, that file is started instead of the ccached under test.
    package func startDaemon(extraArguments: [String] = [], stateDescriptor: Int32? = nil, binary: String? = nil)
        throws
    {
        let readiness = try ReadinessPipe()
        let binary = binary ?? ccachedBinary
        let process = try SpawnedProcess(
            path: binary,
            arguments: [binary, "--socket", socketPath, "--log-level", "debug", "--ready-fd", "3"]
                + (stateDescriptor == nil ? [] : ["--state-fd", "4"]) + extraArguments,
            environment: environment, stderr: daemonLog.path, descriptor3: readiness.writeEnd,
            descriptor4: stateDescriptor)
        daemon = process
        let word = readiness.readLine()
        guard word == "READY" else {
            throw TestbedError.setup(
                "ccached did not come up on \(socketPath) (--ready-fd said \(word ?? "nothing")):\n\(daemonLogText)")
        }
    }

    /// Sends SIGTERM and waits for the daemon to exit; returns its exit status.
    @discardableResult
    package func stopDaemon() -> Int32? {
        guard let process = daemon else { return nil }
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        daemon = nil
        return process.terminationStatus
    }

    /// Kills the daemon with SIGKILL (a crash: nothing of it runs) and reaps it.
    package func killDaemon() {
        guard let process = daemon else { return }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        daemon = nil
    }

    /// What the daemon has logged so far.
    package var daemonLogText: String { (try? String(contentsOf: daemonLog, encoding: .utf8)) ?? "" }

    /// Runs a command with the testbed's environment (plus `extra`).
    @discardableResult
    package func run(_ arguments: String..., input: String? = nil, extra: [String: String] = [:]) throws
        -> CommandResult
    {
        try run(arguments, input: input, extra: extra)
    }

    /// Runs a command with the testbed's environment (plus `extra`).
    package func run(_ arguments: [String], input: String? = nil, extra: [String: String] = [:]) throws
        -> CommandResult
    {
        try runCommand(arguments, environment: environment.merging(extra) { $1 }, input: input, scratch: directory)
    }

    /// The daemon's status counters, read over a fresh connection with CCACHED_STATUS.
    package func daemonStatus() throws -> KCMDaemonStatus {
        try RawKCMConnection(path: socketPath).daemonStatus()
    }

    /// The default name MIT shows for the owner's primary cache: `KCM:<uid>`.
    package var primaryName: String { "KCM:\(getuid())" }

    /// Stops the daemon and the KDC and removes the directory.
    package func stop() {
        stopDaemon()
        kdc.stop()
        ScratchDirectory.remove(directory)
    }

    deinit { stop() }
}

/// A test world that could not be built.
package enum TestbedError: Error, CustomStringConvertible {
    case setup(String)
    package var description: String {
        switch self {
        case .setup(let text): text
        }
    }
}

/// The lines of `klist -l` after its two header lines, as (principal, cache name) pairs.
package func collectionListing(_ output: String) -> [(principal: String, cache: String)] {
    output.split(separator: "\n").dropFirst(2).compactMap { line in
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2 else { return nil }
        return (String(fields[0]), String(fields[1]))
    }
}
