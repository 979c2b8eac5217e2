import CSupport
import Glibc
import SystemCalls

/// What became of the daemon behind a connection that failed before its request was read, found
/// out so that the next connection meets a daemon that is either running or entirely gone.
///
/// A process killed with SIGKILL dies one thread at a time, and the kernel closes its descriptors
/// only when its last thread exits. Its main thread can already be a zombie (all that
/// `kill(pid, 0)` and `/proc/PID/stat` show) while another thread is still on its way out; until
/// then the dying daemon's connections still take requests it will never read, and its listening
/// socket still takes new connections. When the last thread goes, the kernel resets every one of them
/// (ECONNRESET: a Unix stream socket closed with unread data, or never accepted). A client that
/// reconnects at once, or after a fixed pause shorter than the rest of the death, lands in that
/// listener again and is reset again, however many times it tries; on a loaded machine the rest
/// of the death lasts as long as the scheduler makes it (this was the `reconnectAfterKill` flake).
///
/// So before a new connection the client asks the kernel about the process at the other end of
/// the failed one (`SO_PEERPIDFD`: the process that listens there) and, if its main thread has
/// exited, waits on that pidfd until the whole process has: from then on nothing of it answers,
/// and the socket path leads to a new daemon, a stale file, or nothing.
enum DaemonDeparture: Equatable {
    /// The process has exited completely (all its threads, so all its sockets are closed).
    case gone
    /// Its main thread is running: a live daemon closed the connection (its connection limit, a
    /// daemon exiting on its own, which unlinks its socket first), or the listener belongs to a
    /// process that is not the daemon (systemd's socket activation).
    case running
    /// Its main thread has exited but another thread had not after the whole wait.
    case stillExiting
    /// The kernel cannot say (no pidfds at all, or a process in a pid namespace this one cannot
    /// see).
    case unknown

    /// ``settle(socket:pid:milliseconds:)`` for the daemon of a connection that failed.
    static func settle(after connection: KCMClientConnection, milliseconds: Int32) -> DaemonDeparture {
        settle(socket: connection.fd, pid: connection.daemonPID, milliseconds: milliseconds)
    }

    /// Looks at the process listening at the other end of `socket` (whose `SO_PEERCRED` pid at
    /// connect was `pid`) and, if it is dying, waits up to `milliseconds` for it to be gone.
    /// Returns at once for a running process.
    static func settle(socket: Int32, pid connectedPID: Int32, milliseconds: Int32) -> DaemonDeparture {
        var pidfd = ccached_peer_pidfd(socket)
        if pidfd < 0 {
            // ESRCH: the process was already reaped.
            guard errno != ESRCH else { return .gone }
            // Before Linux 6.5 (Debian 12's own kernel is 6.1) there is no SO_PEERPIDFD: open one
            // from the pid. That pid can belong to another process only if the daemon was reaped
            // already, and that process is then no dying daemon: it reads as running.
            guard connectedPID > 0, let pidfdOpen = Self.pidfdOpen() else { return .unknown }
            pidfd = pidfdOpen(connectedPID, 0)
            guard pidfd >= 0 else { return errno == ESRCH ? .gone : .unknown }
        }
        defer { close(pidfd) }
        if hasExited(pidfd, milliseconds: 0) { return .gone }
        let pid = ccached_pidfd_pid(pidfd)
        // -1: it exited since, or /proc cannot say; 0: a pid namespace this one cannot see.
        guard pid > 0 else { return hasExited(pidfd, milliseconds: 0) ? .gone : .unknown }
        guard mainThreadHasExited(pid) else { return .running }
        return hasExited(pidfd, milliseconds: milliseconds) ? .gone : .stillExiting
    }

    /// glibc's `pidfd_open` (2.36 and later; Linux 5.3 and later), found at run time: Swift's Glibc
    /// module does not export `<sys/pidfd.h>`, and `syscall` is variadic.
    private static func pidfdOpen() -> (@convention(c) (pid_t, UInt32) -> Int32)? {
        guard let symbol = dlsym(nil, "pidfd_open") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (pid_t, UInt32) -> Int32).self)
    }

    /// Whether a pidfd reports its process gone, waiting up to `milliseconds` for it. A pidfd
    /// becomes readable only once every thread of the process has exited, never at the main
    /// thread's exit alone.
    private static func hasExited(_ pidfd: Int32, milliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        let deadline = Int64(MonotonicClock.milliseconds()) + Int64(milliseconds)
        let ready = try? retryingInterrupts {
            poll(&descriptor, 1, Int32(clamping: max(0, deadline - Int64(MonotonicClock.milliseconds()))))
        }
        return (ready ?? 0) > 0
    }

    /// Whether the process's main thread is a zombie (or the process is gone): the state letter
    /// of `/proc/PID/stat`, which follows the last `)` (the command name may hold any character).
    private static func mainThreadHasExited(_ pid: Int32) -> Bool {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT || errno == ESRCH }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return false }
        let text = buffer[0..<count]
        guard let close = text.lastIndex(of: UInt8(ascii: ")")), close + 2 < count else { return false }
        let state = text[close + 2]
        return state == UInt8(ascii: "Z") || state == UInt8(ascii: "X")
    }
}
