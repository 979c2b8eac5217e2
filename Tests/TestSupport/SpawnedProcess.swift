import CSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn` and reaped with `waitpid` on its own pid.
///
/// Used instead of Foundation's `Process`, whose exit monitoring can miss a child's exit when many
/// tests start programs at once (a `waitUntilExit` that never returned was seen with the child
/// already a zombie). Here the exit is whatever `waitpid` says. The child gets an empty signal
/// mask and default handlers (a test thread may have signals blocked), and no descriptor but
/// stdin, stdout and stderr, plus descriptor 3 when the initialiser is given one (e.g. the write
/// end of a ``ReadinessPipe`` for `--ready-fd 3`).
package final class SpawnedProcess: @unchecked Sendable {
    /// The child's pid.
    package let processIdentifier: pid_t
    private let lock = NSLock()
    private var status: Int32?

    /// Why a child could not be started.
    package enum SpawnError: Error, CustomStringConvertible {
        case spawn(String, Int32)
        package var description: String {
            switch self {
            case .spawn(let path, let code): "posix_spawn \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    /// Starts `path` with `arguments` (argv[0] included) and `environment`; stdin, stdout and stderr
    /// are opened from the given paths (nil = /dev/null). `descriptor3`, if given, is this process's
    /// descriptor that the child gets as its descriptor 3 (close-on-exec cleared); `descriptor4`
    /// likewise as its 4 (only with a `descriptor3`).
    package init(
        path: String, arguments: [String], environment: [String: String], stdin: String? = nil, stdout: String? = nil,
        stderr: String? = nil, descriptor3: Int32? = nil, descriptor4: Int32? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_APPEND | O_CREAT, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_APPEND | O_CREAT, 0o600)
        // With a descriptor 4 as well, a source that is 3 or 4 itself would be overwritten first:
        // both are moved up beforehand (closed here once the child is started).
        let fourth = descriptor3 == nil ? nil : descriptor4.map { fcntl($0, F_DUPFD_CLOEXEC, 64) }
        let third = fourth == nil ? descriptor3 : descriptor3.map { fcntl($0, F_DUPFD_CLOEXEC, 64) }
        defer {
            if let fourth, let third {
                close(fourth)
                close(third)
            }
        }
        if let third {
            // dup2 onto 3 clears close-on-exec (glibc does so even when the descriptor already is 3);
            // everything above it is then closed, the original included.
            posix_spawn_file_actions_adddup2(&actions, third, 3)
            if let fourth { posix_spawn_file_actions_adddup2(&actions, fourth, 4) }
            ccached_spawn_actions_close_from(&actions, fourth == nil ? 4 : 5)
        } else {
            ccached_spawn_actions_close_from(&actions, 3)
        }

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
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SpawnError.spawn(path, result) }
        processIdentifier = pid
    }

    /// Whether the child has not exited yet (reaps it if it has).
    package var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if status != nil { return false }
        var raw: Int32 = 0
        let result = waitpid(processIdentifier, &raw, WNOHANG)
        if result == processIdentifier {
            status = raw
            return false
        }
        return result == 0
    }

    /// Blocks until the child exits.
    package func waitUntilExit() {
        lock.lock()
        defer { lock.unlock() }
        guard status == nil else { return }
        var raw: Int32 = 0
        while waitpid(processIdentifier, &raw, 0) < 0 {
            if errno != EINTR {
                raw = 0x7F00  // exit status 127: the child is not ours to wait for
                break
            }
        }
        status = raw
    }

    /// The exit status, or 128 + the signal that ended it (as a shell reports it).
    package var terminationStatus: Int32 {
        waitUntilExit()
        let raw = lock.withLock { status ?? 0 }
        let signal = raw & 0x7F
        return signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
    }
}
