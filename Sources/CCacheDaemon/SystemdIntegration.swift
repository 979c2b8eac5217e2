import CSupport
import Glibc

/// What systemd asks of a `Type=notify` service with socket activation, all optional: without
/// systemd (no `NOTIFY_SOCKET`, no `LISTEN_FDS`) every call here does nothing.
struct SystemdIntegration {
    /// The watchdog interval in microseconds when the unit enables `WatchdogSec=`.
    let watchdogMicroseconds: UInt64?
    private var lastStatus = ""
    private var lastWatchdog: UInt64 = 0

    init() {
        var usec: UInt64 = 0
        watchdogMicroseconds = ccached_sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : nil
    }

    /// Whether systemd listens to this service at all (a watchdog, or a notification socket): then
    /// the daemon wakes once a second to keep it informed.
    var isActive: Bool { watchdogMicroseconds != nil || getenv("NOTIFY_SOCKET") != nil }

    /// The listening socket systemd passed (`sd_listen_fds`), if exactly one stream socket was.
    static func activatedSocket() throws(DaemonError) -> Int32? {
        let count = ccached_sd_listen_fds(1)
        guard count > 0 else { return nil }
        guard count == 1 else {
            throw .activation("systemd passed \(count) sockets; ccached listens on exactly one (one ListenStream=)")
        }
        let fd = CCACHED_SD_LISTEN_FDS_START
        guard ccached_sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw .activation("the socket systemd passed is not a listening Unix stream socket")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// Sends a notification (`READY=1`, `STATUS=…`, `STOPPING=1`, `WATCHDOG=1`).
    func notify(_ state: String) {
        _ = ccached_sd_notify(0, state)
    }

    /// Updates `STATUS=` when it changed, and pings the watchdog at half its interval.
    mutating func tick(status: String, nowMicroseconds: UInt64) {
        if status != lastStatus {
            lastStatus = status
            notify("STATUS=" + status)
        }
        if let interval = watchdogMicroseconds, nowMicroseconds - lastWatchdog >= interval / 2 {
            lastWatchdog = nowMicroseconds
            notify("WATCHDOG=1")
        }
    }
}
