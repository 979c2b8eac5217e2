import CSystemd
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
        watchdogMicroseconds = sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : nil
    }

    /// The listening socket systemd passed (`sd_listen_fds`), if exactly one stream socket was.
    static func activatedSocket() throws(DaemonError) -> Int32? {
        let count = sd_listen_fds(1)
        guard count > 0 else { return nil }
        guard count == 1 else {
            throw .activation("systemd passed \(count) sockets; ccached listens on exactly one (one ListenStream=)")
        }
        let fd = SD_LISTEN_FDS_START
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw .activation("the socket systemd passed is not a listening Unix stream socket")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// Sends a notification (`READY=1`, `STATUS=…`, `STOPPING=1`, `WATCHDOG=1`).
    func notify(_ state: String) {
        _ = sd_notify(0, state)
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

/// Notices when the login session the daemon belongs to closes (systemd-logind), so that logout
/// wipes the session's tickets even when nothing else stops the daemon.
final class LoginSessionMonitor {
    let session: String
    private var monitor: OpaquePointer?
    let fileDescriptor: Int32

    /// A monitor for `session` if given (a daemon ccached-door started outside the session), else
    /// for the daemon's own logind session; nil when there is none (no logind, or the daemon runs
    /// outside a session, e.g. as a systemd user service).
    init?(session given: String? = nil) {
        if let given {
            session = given
        } else {
            var name: UnsafeMutablePointer<CChar>?
            guard sd_pid_get_session(0, &name) >= 0, let name else { return nil }
            session = String(cString: name)
            free(name)
        }
        guard sd_login_monitor_new("session", &monitor) >= 0, monitor != nil else { return nil }
        fileDescriptor = sd_login_monitor_get_fd(monitor)
        guard fileDescriptor >= 0 else {
            sd_login_monitor_unref(monitor)
            return nil
        }
    }

    deinit { sd_login_monitor_unref(monitor) }

    /// After the monitor's descriptor became readable: whether the session is closing or gone.
    func sessionHasEnded() -> Bool {
        sd_login_monitor_flush(monitor)
        var state: UnsafeMutablePointer<CChar>?
        let result = sd_session_get_state(session, &state)
        defer { free(state) }
        guard result >= 0, let state else { return true }
        return String(cString: state) == "closing"
    }
}
