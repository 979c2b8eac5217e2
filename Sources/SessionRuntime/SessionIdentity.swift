import CSupport
import Glibc

/// Which login session a process belongs to: the key that picks its daemon.
public struct SessionIdentity: Hashable, Sendable, CustomStringConvertible {
    /// Where the key came from.
    public enum Source: String, Sendable {
        /// `CCACHED_SESSION` in the environment.
        case environment
        /// The systemd-logind session of the process (`sd_pid_get_session`).
        case logind
        /// The kernel audit session (`/proc/self/sessionid`).
        case audit
        /// No session could be told apart: one daemon per user.
        case user
    }

    /// A name safe to use as one path component: letters, digits, `.`, `_`, `-`.
    public let key: String
    public let source: Source

    public init(key: String, source: Source) {
        self.key = key
        self.source = source
    }

    /// The session of this process: `CCACHED_SESSION` if set; else the logind session; else the
    /// audit session unless unset; else `user`.
    public static func current(environment: [String: String]) throws(SessionRuntimeError) -> SessionIdentity {
        if let explicit = environment["CCACHED_SESSION"], !explicit.isEmpty {
            guard isSafeComponent(explicit) else { throw .invalidSessionName(explicit) }
            return SessionIdentity(key: explicit, source: .environment)
        }
        return lookUp(pid: 0)
    }

    /// The session of another process running as `uid`, by the same rules as
    /// ``current(environment:)`` minus the environment (which the caller cannot trust): its logind
    /// session (`sd_pid_get_session(pid)`), else its audit session (`/proc/PID/sessionid`) unless
    /// unset, else `user`. One more rule, because another process may have changed users inside
    /// someone else's login (`sudo -u`, `su` without a new session, a setuid program): a session
    /// counts only when it is `uid`'s own — the logind session's user (`sd_session_get_uid`) or the
    /// audit session's login uid (`/proc/PID/loginuid`) is `uid`; otherwise the process gets `uid`'s
    /// per-user scope. A pid that is not positive (a peer in a pid namespace this process cannot
    /// see) gets `user` too.
    ///
    /// The answer is about whatever process has that pid *now*: a caller that got the pid from a
    /// socket must confirm afterwards that the same process still holds it (ccached-door does so
    /// through the peer's pidfd).
    public static func of(pid: Int32, uid: UInt32) -> SessionIdentity {
        let perUser = SessionIdentity(key: "user", source: .user)
        guard pid > 0 else { return perUser }
        let found = lookUp(pid: pid)
        switch found.source {
        case .logind:
            var owner: uid_t = 0
            guard ccached_sd_session_get_uid(found.key, &owner) >= 0, owner == uid else { return perUser }
        case .audit:
            guard let text = readSmallFile("/proc/\(pid)/loginuid"),
                UInt32(text.trimmingCharacters(in: " \n")) == uid
            else { return perUser }
        case .environment, .user: break
        }
        return found
    }

    /// The shared rule: pid 0 means this process.
    private static func lookUp(pid: Int32) -> SessionIdentity {
        if let key = loginSession(ofProcess: pid) { return SessionIdentity(key: key, source: .logind) }
        if let audit = readAuditSession(pid: pid) { return SessionIdentity(key: "audit-\(audit)", source: .audit) }
        return SessionIdentity(key: "user", source: .user)
    }

    /// The systemd-logind session of process `pid` (0: this process), when it has one whose name is
    /// safe as a path component. The corresponding C function is `sd_pid_get_session` (libsystemd is
    /// loaded only when the process's cgroup names a session scope: `ccached_sd_pid_get_session`).
    public static func loginSession(ofProcess pid: Int32) -> String? {
        var session: UnsafeMutablePointer<CChar>?
        guard ccached_sd_pid_get_session(pid, &session) >= 0, let session else { return nil }
        defer { free(session) }
        let key = String(cString: session)
        return isSafeComponent(key) ? key : nil
    }

    /// The kernel audit session id of `pid` (0: this process), or nil when it is unset
    /// (4294967295) or unreadable.
    static func readAuditSession(pid: Int32 = 0) -> UInt32? {
        guard let text = readSmallFile(pid == 0 ? "/proc/self/sessionid" : "/proc/\(pid)/sessionid"),
            let value = UInt32(text.trimmingCharacters(in: " \n"))
        else { return nil }
        return value == UInt32.max ? nil : value
    }

    static func isSafeComponent(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text != "." && text != ".."
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2E || byte == 0x5F || byte == 0x2D
            }
    }

    public var description: String { "\(key) (from \(source.rawValue))" }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let drop = Set(set)
        var slice = Substring(self)
        while let first = slice.first, drop.contains(first) { slice.removeFirst() }
        while let last = slice.last, drop.contains(last) { slice.removeLast() }
        return String(slice)
    }
}

/// Reads a small text file (at most 4 KiB), or nil.
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count >= 0 else { return nil }
    return String(decoding: buffer[0..<count], as: UTF8.self)
}
