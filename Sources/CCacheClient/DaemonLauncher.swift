import CSupport
import Glibc
import SessionRuntime
import SystemCalls

/// Starts a session's daemon when none answers: under the session's spawn lock, so that racing
/// clients start exactly one; detached (own session, streams on /dev/null); and waited for through
/// a readiness pipe (`ccached --ready-fd`), not by polling the socket.
struct DaemonLauncher {
    let paths: SessionPaths
    let executable: String
    let idleTimeout: UInt32?
    /// How long a starting daemon may take to say it is ready.
    let deadlineMilliseconds: Int32 = 10_000

    /// Where the daemon binary is: `$CCACHED_DAEMON`, else next to this program, else on `$PATH`.
    static func locateDaemon(environment: [String: String]) -> String {
        if let explicit = environment["CCACHED_DAEMON"], !explicit.isEmpty { return explicit }
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if length > 0 {
            let exe = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let slash = exe.lastIndex(of: "/") {
                let sibling = String(exe[..<slash]) + "/ccached"
                if access(sibling, X_OK) == 0 { return sibling }
            }
        }
        for directory in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/ccached"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return "ccached"
    }

    /// Runs `body` holding the spawn lock (an exclusive `flock` on the session's lock file).
    func withSpawnLock<T>(_ body: () throws(CCacheClientError) -> T) throws(CCacheClientError) -> T {
        let fd = open(paths.spawnLock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw .cannotStart(
                path: paths.socket, reason: "cannot open the lock \(paths.spawnLock): \(Errno.current.message)")
        }
        defer { close(fd) }
        do throws(Errno) {
            _ = try retryingInterrupts { flock(fd, LOCK_EX) }
        } catch {
            throw .cannotStart(path: paths.socket, reason: "cannot lock \(paths.spawnLock): \(error.message)")
        }
        return try body()
    }

    /// Starts the daemon and waits until it is listening (or says why it cannot).
    func launch() throws(CCacheClientError) {
        guard access(executable, X_OK) == 0 else {
            throw .cannotStart(
                path: paths.socket,
                reason: "the daemon program \(executable) is missing or not executable (set CCACHED_DAEMON to its path)"
            )
        }
        try? paths.writeKrb5Fragment()
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            throw .cannotStart(path: paths.socket, reason: "pipe: \(Errno.current.message)")
        }
        _ = fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC)
        defer { close(pipeEnds[0]) }

        var arguments = [executable, "--socket", paths.socket, "--ready-fd", "3"]
        if let idleTimeout { arguments += ["--idle-timeout", "\(idleTimeout)"] }
        // What ends the daemon, by the same rule the door applies (a job's, the per-user daemon, or
        // a login's, possibly not the caller's own).
        if let lifetime = paths.session?.route?.lifetime { arguments += lifetime.daemonArguments }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let result = ccached_spawn_detached(executable, &argv, pipeEnds[1])
        close(pipeEnds[1])
        guard result == 0 else {
            throw .cannotStart(
                path: paths.socket, reason: "cannot run \(executable): \(Errno(rawValue: result).message)")
        }

        let line = readLine(from: pipeEnds[0])
        switch line {
        case "READY", "EXISTS":
            return
        case let text? where text.hasPrefix("ERROR "):
            throw .cannotStart(path: paths.socket, reason: String(text.dropFirst(6)))
        case nil:
            throw .cannotStart(
                path: paths.socket,
                reason: "\(executable) did not report ready within \(deadlineMilliseconds / 1000) s")
        default:
            throw .cannotStart(
                path: paths.socket,
                reason: "\(executable) exited before it was ready; run it by hand to see why: "
                    + "\(executable) --socket \(paths.socket)")
        }
    }

    /// One line from the readiness pipe, or "" on EOF, or nil on timeout.
    private func readLine(from fd: Int32) -> String? {
        var collected: [UInt8] = []
        var byte: UInt8 = 0
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Int64(MonotonicClock.milliseconds()) + Int64(deadlineMilliseconds)
        while collected.count < 4096 {
            guard deadline > Int64(MonotonicClock.milliseconds()) else { return nil }
            let ready = try? retryingInterrupts {
                poll(&descriptor, 1, Int32(clamping: max(0, deadline - Int64(MonotonicClock.milliseconds()))))
            }
            guard let ready, ready > 0 else { return nil }
            guard (try? retryingInterrupts({ read(fd, &byte, 1) })) == 1 else { break }
            if byte == 0x0A { break }
            collected.append(byte)
        }
        return String(decoding: collected, as: UTF8.self)
    }
}
