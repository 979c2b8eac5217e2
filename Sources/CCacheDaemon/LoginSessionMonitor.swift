import CSystemd
import Glibc

/// Notices when a login session closes (systemd-logind), so that logout wipes the session's
/// tickets even when nothing else stops the daemon.
final class LoginSessionMonitor {
    let session: String
    private var monitor: OpaquePointer?
    let fileDescriptor: Int32

    /// A monitor for logind session `session`, or nil when logind cannot be watched.
    init?(session: String) {
        self.session = session
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
