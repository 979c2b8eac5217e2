import CSupport
import Glibc
import Logging
import StoreState
import SystemCalls

/// The descriptors a daemon hands across `execve` to the daemon it becomes (`--inherit`): its
/// listening socket, its hand-off socket, its state file and the connections it serves (clients
/// between two requests, and ccached-door's hand-off connections). Written as
/// `listen=3,handoff=4,state=5,clients=6:7,handoffs=8`; a list is separated by colons. A listening
/// socket systemd passed (whose path is systemd's, never removed by the daemon) is `activated=3`.
public struct InheritedDescriptors: Equatable, Sendable {
    public var listener: Int32
    /// Whether the daemon bound the listener's path itself (and removes it when it ends), rather
    /// than systemd.
    public var listenerOwnsPath = true
    public var handoff: Int32?
    public var state: Int32?
    public var clients: [Int32] = []
    public var handoffConnections: [Int32] = []

    /// Every descriptor named.
    public var all: [Int32] {
        [listener] + (handoff.map { [$0] } ?? []) + (state.map { [$0] } ?? []) + clients + handoffConnections
    }

    /// The option's value.
    public var text: String {
        var parts = ["\(listenerOwnsPath ? "listen" : "activated")=\(listener)"]
        if let handoff { parts.append("handoff=\(handoff)") }
        if let state { parts.append("state=\(state)") }
        if !clients.isEmpty { parts.append("clients=" + clients.map { "\($0)" }.joined(separator: ":")) }
        if !handoffConnections.isEmpty {
            parts.append("handoffs=" + handoffConnections.map { "\($0)" }.joined(separator: ":"))
        }
        return parts.joined(separator: ",")
    }

    /// Parses the option's value; nil (with the reason) for anything malformed. Each descriptor is
    /// named once, from 0 up.
    public static func parse(_ text: String) -> Result<InheritedDescriptors, UsageError> {
        func failure(_ why: String) -> Result<InheritedDescriptors, UsageError> {
            .failure(UsageError(message: "--inherit '\(text)': \(why)"))
        }
        var listener: Int32?
        var result = InheritedDescriptors(listener: -1)
        var seen: Set<String> = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pieces.count == 2, seen.insert(String(pieces[0])).inserted else {
                return failure("expected key=value pairs, each key once")
            }
            var numbers: [Int32] = []
            for piece in pieces[1].split(separator: ":", omittingEmptySubsequences: false) {
                guard let fd = Int32(piece), fd >= 0 else { return failure("'\(piece)' is not a descriptor") }
                numbers.append(fd)
            }
            let single = numbers.count == 1 ? numbers[0] : nil
            switch pieces[0] {
            case "listen", "activated":
                guard listener == nil else { return failure("listen= and activated= exclude each other") }
                listener = single
                result.listenerOwnsPath = pieces[0] == "listen"
            case "handoff": result.handoff = single
            case "state": result.state = single
            case "clients": result.clients = numbers
            case "handoffs": result.handoffConnections = numbers
            default: return failure("unknown key '\(pieces[0])'")
            }
            if ["listen", "activated", "handoff", "state"].contains(pieces[0]), single == nil {
                return failure("\(pieces[0]) takes one descriptor")
            }
        }
        guard let listener else { return failure("listen= (or activated=) is required") }
        result.listener = listener
        guard Set(result.all).count == result.all.count else { return failure("a descriptor is named twice") }
        return .success(result)
    }
}

/// Moving a running daemon onto the binary installed now (an upgrade, Docs/state.md "Re-exec"):
/// the daemon re-executes the file at its install path with its own command line and `--inherit`,
/// handing over its sockets, connections and state file; the new code restores the store from the
/// state file and adopts the rest. Every step before `execve` can fail and leave the daemon serving
/// as it was.
enum Reexecution {
    /// The path the daemon was started from. `/proc/self/exe` names the file the process runs, which
    /// an upgrade has replaced (the kernel shows it as `PATH (deleted)`): the path is what the new
    /// file is installed at.
    static func installPath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let path = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let deleted = " (deleted)"
        return path.hasSuffix(deleted) ? String(path.dropLast(deleted.count)) : path
    }

    /// The daemon's command line for the new binary: its own, without what described this start
    /// only (`--ready-fd`, `--state-fd`, `--state-from-door`, an earlier `--inherit`), with
    /// `--inherit` (whose `state=` is the state file, wherever it came from).
    static func arguments(from arguments: [String], inheriting inherited: InheritedDescriptors) -> [String] {
        let dropped: Set<String> = ["--ready-fd", "--state-fd", "--inherit"]
        let droppedFlags: Set<String> = ["--state-from-door"]
        var result: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if index == 1 {
                result.append(argument)
                continue
            }
            if dropped.contains(argument) {
                index += 1
                continue
            }
            if droppedFlags.contains(argument) { continue }
            if let equals = argument.firstIndex(of: "="), dropped.contains(String(argument[..<equals])) { continue }
            result.append(argument)
        }
        return result + ["--inherit", inherited.text]
    }

    /// Asks the binary at `path` whether it reads state files of layout `version`
    /// (`ccached --check-state-layout V` exits 0 when it does). A binary that does not answer in
    /// 5 s, cannot start, or refuses, is not executed.
    static func checkLayout(of path: String, version: UInt32) -> String? {
        let argv = [path, "--check-state-layout", "\(version)"]
        var pid: pid_t = 0
        let result = withCStrings(argv) { argv in
            ccached_spawn_helper(path, argv, environ, &pid)
        }
        guard result == 0 else { return "cannot start \(path): \(Errno(rawValue: result))" }
        var status: Int32 = 0
        for _ in 0..<500 {
            let done: pid_t
            do throws(Errno) {
                done = try retryingInterrupts { waitpid(pid, &status, WNOHANG) }
            } catch {
                return "waitpid: \(error)"
            }
            if done == pid {
                let exited = status & 0x7f == 0
                let code = (status >> 8) & 0xff
                if exited && code == 0 { return nil }
                return exited
                    ? "\(path) does not read state files of layout version \(version) (it exited with \(code))"
                    : "\(path) ended by signal \(status & 0x7f) when asked about layout version \(version)"
            }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
        return "\(path) did not answer within 5 s when asked about layout version \(version)"
    }

    /// Replaces the process with `path`, the descriptors in `inherited` open across it. Returns only
    /// when `execve` failed: then every descriptor is close-on-exec again and the error says why.
    static func execute(path: String, arguments: [String], inherited: InheritedDescriptors) -> Errno {
        for fd in inherited.all { _ = fcntl(fd, F_SETFD, 0) }
        let error = withCStrings(arguments) { argv -> Errno in
            execve(path, argv, environ)
            return Errno.current
        }
        for fd in inherited.all { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return error
    }

    private static func withCStrings<Result>(
        _ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result
    ) -> Result {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
