import Glibc

/// Whether what a daemon serves is still there, asked the same way by the daemon (its
/// `LifetimeWatch`: end itself) and by ccached-door (let go of a crashed daemon's state file).
public enum SessionLiveness {
    /// Whether any process but `excluded` has `/proc/PID/sessionid` equal to `session`: an audit
    /// session (a cron or at job) lasts while one of its processes does. True when `/proc` cannot
    /// be read, so nothing is ended on a guess.
    public static func anyProcess(inAuditSession session: UInt32, excluding excluded: pid_t? = nil) -> Bool {
        guard let directory = opendir("/proc") else { return true }
        defer { closedir(directory) }
        let wanted = Array("\(session)".utf8)
        var buffer = [UInt8](repeating: 0, count: 16)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), pid != excluded else { continue }
            let fd = open("/proc/\(pid)/sessionid", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard count > 0 else { continue }
            // The kernel writes the number without a newline; compare either way.
            var text = Array(buffer[0..<count])
            if text.last == 0x0A { text.removeLast() }
            if text == wanted { return true }
        }
        return false
    }

    /// Whether `uid` has a logind session (closing ones included) or lingers; nil without logind.
    public static func userHasLogin(uid: UInt32) -> Bool? {
        guard access("/run/systemd/system", F_OK) == 0 else { return nil }
        if !SystemLogind().sessions(ofUser: uid).isEmpty { return true }
        guard let account = getpwuid(uid), let name = account.pointee.pw_name else { return false }
        return access("/var/lib/systemd/linger/" + String(cString: name), F_OK) == 0
    }
}
