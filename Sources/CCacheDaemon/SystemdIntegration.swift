import CSupport
import Glibc
import SystemCalls

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

    /// The listening socket systemd passed, if any (``SocketActivation``).
    static func activatedSocket() throws(DaemonError) -> Int32? {
        do throws(SocketActivation.Failure) {
            return try SocketActivation.listeningSocket()
        } catch {
            throw .activation(error.message(program: "ccached"))
        }
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
