import Glibc
import SystemCalls

/// A process started with `posix_spawn` (no `fork` in a Swift process: only the exec'd image runs).
struct ChildProcess {
    let pid: pid_t

    struct SpawnError: Error, CustomStringConvertible {
        let path: String
        let code: Int32
        var description: String { "cannot start \(path): \(Errno(rawValue: code).message)" }
    }

    /// Starts `path` with `arguments` (argv[1...]) and the current environment. `standardOutput` and
    /// `standardError`, when given, become the child's descriptors 1 and 2.
    static func spawn(
        _ path: String, _ arguments: [String], standardOutput: Int32? = nil, standardError: Int32? = nil
    ) throws(SpawnError) -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let standardOutput { posix_spawn_file_actions_adddup2(&actions, standardOutput, 1) }
        if let standardError { posix_spawn_file_actions_adddup2(&actions, standardError, 2) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard code == 0 else { throw SpawnError(path: path, code: code) }
        return ChildProcess(pid: pid)
    }

    /// Waits for the child to exit; returns its wait status.
    @discardableResult
    func wait() -> Int32 {
        var status: Int32 = 0
        _ = try? retryingInterrupts { waitpid(pid, &status, 0) }
        return status
    }

    /// Whether the child has exited (reaping it if so).
    func hasExited() -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }

    /// SIGTERM, then waits.
    func terminate() {
        kill(pid, SIGTERM)
        wait()
    }

    /// Runs this executable's sub-commands side by side, one per argument list: starts them all, then
    /// reads each one's standard output to its end and waits for it (its wait status), in the order given.
    static func runSubcommands(
        _ argumentLists: [[String]]
    ) throws(SpawnError) -> [(pid: pid_t, status: Int32, output: String)] {
        var running: [(ChildProcess, Pipe)] = []
        for arguments in argumentLists {
            let output = Pipe()
            running.append((try spawn(currentExecutable, arguments, standardOutput: output.writeEnd), output))
            close(output.writeEnd)
        }
        return running.map { child, output in
            let text = output.readAll()
            close(output.readEnd)
            return (child.pid, child.wait(), text)
        }
    }

    /// This executable's path, for spawning its own sub-commands.
    static var currentExecutable: String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A pipe whose read end the parent keeps.
struct Pipe {
    let readEnd: Int32
    let writeEnd: Int32

    init() {
        var ends: [Int32] = [0, 0]
        precondition(pipe(&ends) == 0, "pipe failed")
        // Close-on-exec, so that a later worker does not hold an earlier one's pipe open.
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    /// Reads until end of file.
    func readAll() -> String {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            guard let count = try? retryingInterrupts({ read(readEnd, &chunk, chunk.count) }), count > 0 else { break }
            data += chunk[0..<count]
        }
        return String(decoding: data, as: UTF8.self)
    }
}
