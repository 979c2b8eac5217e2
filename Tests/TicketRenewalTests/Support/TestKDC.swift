import CKrb5
import CSupport
import Glibc
import KCM
import SecureMemory

/// A throwaway MIT KDC (scripts/testkdc.sh) for the renewal tests, and the real MIT tools run
/// against it: the KDC can be stopped and started again on the same database and port.
final class TestKDC: @unchecked Sendable {
    let directory: String
    /// The realm's client configuration (KRB5_CONFIG for the tools and for ``KerberosRenewer``).
    let configuration: String
    private var restartedPID: pid_t?

    init() throws {
        var template = Array("/tmp/ccached-renew-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestKDCError("mkdtemp failed: errno \(errno)") }
        directory = String(cString: made)
        configuration = directory + "/kdc/krb5.conf"
        let started = run([repositoryRoot + "/scripts/testkdc.sh", "start", directory + "/kdc"])
        guard started.status == 0 else { throw TestKDCError("the test KDC did not start:\n\(started.output)") }
    }

    /// The KDC's log so far.
    var log: String { read(directory + "/kdc/kdc.log") }

    /// Stops the KDC (it stops answering: clients get "Cannot contact any KDC").
    func stop() {
        if let pid = restartedPID {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            restartedPID = nil
        } else {
            _ = run([repositoryRoot + "/scripts/testkdc.sh", "stop", directory + "/kdc"])
        }
    }

    /// Starts krb5kdc again on the same database, configuration and port; waits until it answers.
    func restart() throws {
        let candidates = ["/usr/sbin/krb5kdc", "/usr/local/sbin/krb5kdc"]
        let kdc = candidates.first { path in access(path, X_OK) == 0 } ?? "krb5kdc"
        restartedPID = try spawn(
            [kdc, "-n", "-r", "CCACHED.TEST"], extra: ["KRB5_KDC_PROFILE": directory + "/kdc/kdc.conf"],
            output: directory + "/kdc/kdc.restart.out")
        for _ in 0..<200 {
            let probe = run(["kinit", "-c", "MEMORY:probe", "alice"], input: "pw-alice\n")
            if probe.status == 0 { return }
            usleep(50_000)
        }
        throw TestKDCError("the restarted KDC did not answer")
    }

    func shutdown() {
        stop()
        _ = run(["rm", "-rf", directory])
    }

    /// `kinit` for `user` into a fresh FILE cache with these options; returns the cache path.
    func kinit(_ user: String, _ options: [String]) throws -> String {
        let cache = directory + "/cc-\(UInt32.random(in: 0...UInt32.max))"
        let result = run(["kinit", "-c", "FILE:" + cache] + options + [user], input: "pw-\(user)\n")
        guard result.status == 0 else { throw TestKDCError("kinit failed:\n\(result.output)") }
        return cache
    }

    // MARK: - Processes

    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs a program to completion with KRB5_CONFIG set to the realm's file; stdout and stderr together.
    func run(_ arguments: [String], input: String? = nil) -> Result {
        let out = directory + "/out-\(UInt32.random(in: 0...UInt32.max))"
        let inPath = out + ".in"
        defer {
            unlink(out)
            unlink(inPath)
        }
        if let input { write(inPath, input) }
        do {
            let pid = try spawn(arguments, input: input == nil ? nil : inPath, output: out)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            return Result(status: code, output: "$ \(arguments.joined(separator: " "))\n" + read(out))
        } catch {
            return Result(status: 127, output: "\(error)")
        }
    }

    private func spawn(
        _ arguments: [String], extra: [String: String] = [:], input: String? = nil, output: String
    ) throws -> pid_t {
        var environment = [
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin", "KRB5_CONFIG": configuration,
            "HOME": directory, "KRB5CCNAME": "MEMORY:unused",
        ]
        environment.merge(extra) { $1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        ccached_spawn_actions_close_from(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw TestKDCError("cannot start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        return pid
    }

    private func read(_ path: String) -> String {
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func write(_ path: String, _ text: String) {
        guard let file = fopen(path, "w") else { return }
        defer { fclose(file) }
        _ = Array(text.utf8).withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    }
}

struct TestKDCError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The repository's top directory, found from this file's path.
let repositoryRoot: String = {
    var path = #filePath
    while path != "/" && !path.isEmpty {
        path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if access(path + "/Package.swift", F_OK) == 0 { return path }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

/// The credentials of a FILE (or any) ccache as KCM v4 bytes, read with libkrb5's own marshalling.
func readCache(_ name: String, configuration: String) throws -> [KCMCredential] {
    var profile: profile_t?
    guard profile_init_path(configuration, &profile) == 0 else { throw TestKDCError("cannot read \(configuration)") }
    defer { profile_release(profile) }
    var context: krb5_context?
    guard krb5_init_context_profile(profile, 0, &context) == 0, let context else {
        throw TestKDCError("krb5_init_context_profile failed")
    }
    defer { krb5_free_context(context) }
    var cache: krb5_ccache?
    guard krb5_cc_resolve(context, name, &cache) == 0, let cache else { throw TestKDCError("cannot open \(name)") }
    defer { krb5_cc_close(context, cache) }
    var cursor: krb5_cc_cursor?
    guard krb5_cc_start_seq_get(context, cache, &cursor) == 0 else { throw TestKDCError("cannot read \(name)") }
    defer { krb5_cc_end_seq_get(context, cache, &cursor) }
    var credentials: [KCMCredential] = []
    var creds = krb5_creds()
    while krb5_cc_next_cred(context, cache, &cursor, &creds) == 0 {
        defer { krb5_free_cred_contents(context, &creds) }
        var data: UnsafeMutablePointer<krb5_data>?
        guard krb5_marshal_credentials(context, &creds, &data) == 0, let data else {
            throw TestKDCError("cannot marshal a credential of \(name)")
        }
        defer { krb5_free_data(context, data) }
        let bytes = Array(UnsafeRawBufferPointer(start: data.pointee.data, count: Int(data.pointee.length)))
        credentials.append(try KCMCredential(parsing: bytes))
    }
    return credentials
}

/// Writes `credentials` into a new cache `name` (its principal: the first credential's client).
func writeCache(_ name: String, _ credentials: [KCMCredential], configuration: String) throws {
    var profile: profile_t?
    guard profile_init_path(configuration, &profile) == 0 else { throw TestKDCError("cannot read \(configuration)") }
    defer { profile_release(profile) }
    var context: krb5_context?
    guard krb5_init_context_profile(profile, 0, &context) == 0, let context else {
        throw TestKDCError("krb5_init_context_profile failed")
    }
    defer { krb5_free_context(context) }
    var cache: krb5_ccache?
    guard krb5_cc_resolve(context, name, &cache) == 0, let cache else { throw TestKDCError("cannot open \(name)") }
    defer { krb5_cc_close(context, cache) }
    for (index, credential) in credentials.enumerated() {
        var out: UnsafeMutablePointer<krb5_creds>?
        let code = credential.bytes.withUnsafeBytes { raw -> krb5_error_code in
            var data = krb5_data(
                magic: 0, length: UInt32(raw.count),
                data: UnsafeMutablePointer(mutating: raw.baseAddress?.assumingMemoryBound(to: CChar.self)))
            return krb5_unmarshal_credentials(context, &data, &out)
        }
        guard code == 0, let out else { throw TestKDCError("cannot decode a credential") }
        defer { krb5_free_creds(context, out) }
        if index == 0, krb5_cc_initialize(context, cache, out.pointee.client) != 0 {
            throw TestKDCError("cannot initialise \(name)")
        }
        guard krb5_cc_store_cred(context, cache, out) == 0 else { throw TestKDCError("cannot store in \(name)") }
    }
}
