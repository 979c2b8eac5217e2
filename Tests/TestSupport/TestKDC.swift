import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway MIT KDC on 127.0.0.1 (`scripts/testkdc.sh`: realm CCACHED.TEST; alice, bob and carol
/// with passwords `pw-<name>`; host/localhost and HTTP/localhost; `svc1`…`svcN` with `services`),
/// and the stock MIT tools run against it. It can be stopped and started again on the same
/// database and port (a KDC that goes away and comes back). ``KerberosTestbed`` runs a ccached
/// beside one; the renewal tests use one alone, through libkrb5 in-process.
// @unchecked: set up before a test shares it; only `stop` and `restart` change it, from the test's
// own thread.
package final class TestKDC: @unchecked Sendable {
    /// The directory the KDC lives in (its own is `kdc/`): command output, and room for a test's
    /// FILE caches and configuration copies.
    package let directory: URL
    /// The KDC's realm.
    package let realm = "CCACHED.TEST"
    /// The realm's client configuration: `KRB5_CONFIG` for the tools and for libkrb5.
    package let configuration: String
    /// The environment for the MIT tools: `PATH` with the sbin directories, `KRB5_CONFIG` the realm's
    /// file, no `KRB5CCNAME`.
    package let environment: [String: String]
    private let kdcDirectory: String
    /// Whether ``shutdown()`` removes ``directory`` (the KDC made it).
    private var removesDirectory = false
    /// The krb5kdc ``restart()`` started, if it did.
    private var restarted: SpawnedProcess?

    /// Starts a KDC in `directory/kdc`, with `services` extra service principals; `directory` is
    /// the caller's, to remove.
    package init(in directory: URL, services: Int = 0) throws {
        self.directory = directory
        kdcDirectory = directory.appendingPathComponent("kdc").path
        configuration = kdcDirectory + "/krb5.conf"
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = (environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        environment.removeValue(forKey: "KRB5CCNAME")
        environment.removeValue(forKey: "KRB5_CONFIG")
        let started = try runCommand(
            [repositoryRoot.appendingPathComponent("scripts/testkdc.sh").path, "start", kdcDirectory]
                + (services > 0 ? ["--services", "\(services)"] : []),
            environment: environment, scratch: directory)
        guard started.succeeded else { throw TestbedError.setup("the test KDC did not start:\n\(started)") }
        environment["KRB5_CONFIG"] = configuration
        self.environment = environment
    }

    /// Starts a KDC in a private temporary directory of its own, removed by ``shutdown()``.
    package convenience init(services: Int = 0) throws {
        try self.init(in: try ScratchDirectory.make("ccached-kdc"), services: services, owned: true)
    }

    private convenience init(in directory: URL, services: Int, owned: Bool) throws {
        do {
            try self.init(in: directory, services: services)
        } catch {
            ScratchDirectory.remove(directory)
            throw error
        }
        removesDirectory = owned
    }

    /// The KDC's log so far.
    package var log: String { (try? String(contentsOfFile: kdcDirectory + "/kdc.log", encoding: .utf8)) ?? "" }

    /// Runs a command with the realm's environment (plus `extra`).
    package func run(_ arguments: [String], input: String? = nil, extra: [String: String] = [:]) throws
        -> CommandResult
    {
        try runCommand(arguments, environment: environment.merging(extra) { $1 }, input: input, scratch: directory)
    }

    /// `kinit` for `user` (password `pw-<user>`) into a fresh FILE cache with these options;
    /// returns the cache's path.
    package func kinit(_ user: String, _ options: [String]) throws -> String {
        let cache = directory.appendingPathComponent("cc-\(UUID().uuidString)").path
        let result = try run(["kinit", "-c", "FILE:" + cache] + options + [user], input: "pw-\(user)\n")
        guard result.succeeded else { throw TestbedError.setup("kinit failed:\n\(result)") }
        return cache
    }

    /// Stops the KDC: clients get "Cannot contact any KDC" until ``restart()``.
    package func stop() {
        if let kdc = restarted.take() {
            kill(kdc.processIdentifier, SIGTERM)
            kdc.waitUntilExit()
        } else {
            _ = try? runCommand(
                [repositoryRoot.appendingPathComponent("scripts/testkdc.sh").path, "stop", kdcDirectory],
                environment: environment, scratch: directory)
        }
    }

    /// Starts krb5kdc again on the same database, configuration and port; returns once it answers.
    package func restart() throws {
        let candidates: [String] = ["/usr/sbin/krb5kdc", "/usr/local/sbin/krb5kdc"]
        let kdc = candidates.first { access($0, X_OK) == 0 } ?? candidates[0]
        restarted = try SpawnedProcess(
            path: kdc, arguments: [kdc, "-n", "-r", realm],
            environment: environment.merging(["KRB5_KDC_PROFILE": kdcDirectory + "/kdc.conf"]) { $1 },
            stdout: kdcDirectory + "/kdc.restart.out", stderr: kdcDirectory + "/kdc.restart.out")
        for _ in 0..<200 {
            if try run(["kinit", "-c", "MEMORY:probe", "alice"], input: "pw-alice\n").succeeded { return }
            usleep(50_000)
        }
        throw TestbedError.setup("the restarted KDC did not answer")
    }

    /// Stops the KDC, and removes its directory when it made it.
    package func shutdown() {
        stop()
        if removesDirectory { ScratchDirectory.remove(directory) }
    }
}
