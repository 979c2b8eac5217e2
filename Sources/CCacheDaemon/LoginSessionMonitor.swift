import CSupport
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
        guard ccached_sd_login_monitor_new("session", &monitor) >= 0, monitor != nil else { return nil }
        fileDescriptor = ccached_sd_login_monitor_get_fd(monitor)
        guard fileDescriptor >= 0 else {
            ccached_sd_login_monitor_unref(monitor)
            return nil
        }
    }

    deinit { ccached_sd_login_monitor_unref(monitor) }

    /// After the monitor's descriptor became readable: whether the session is closing or gone.
    func sessionHasEnded() -> Bool {
        ccached_sd_login_monitor_flush(monitor)
        var state: UnsafeMutablePointer<CChar>?
        let result = ccached_sd_session_get_state(session, &state)
        defer { free(state) }
        guard result >= 0, let state else { return true }
        return String(cString: state) == "closing"
    }
}
