import CSupport
import Glibc

/// Which daemon a process belongs to: the key that picks its daemon, and the rule that chose it.
public struct SessionIdentity: Hashable, Sendable, CustomStringConvertible {
    /// Where the key came from.
    public enum Source: String, Sendable {
        /// `CCACHED_SESSION` in the environment.
        case environment
        /// A systemd-logind session: the process's own login or job, or the user's primary login.
        case logind
        /// A job's audit session that logind does not know (`job-N`).
        case audit
        /// No login of the user: the per-user daemon.
        case user
    }

    /// A name safe to use as one path component: letters, digits, `.`, `_`, `-`.
    public let key: String
    public let source: Source
    /// How ``LoginRouter`` chose the key (nil for `CCACHED_SESSION`).
    public let route: LoginRoute?

    public init(key: String, source: Source, route: LoginRoute? = nil) {
        self.key = key
        self.source = source
        self.route = route
    }

    /// The identity of a route.
    public init(route: LoginRoute) {
        let source: Source =
            switch route.lifetime {
            case .loginSession: .logind
            case .auditSession: .audit
            case .perUser: .user
            }
        self.init(key: route.key, source: source, route: route)
    }

    /// The per-user daemon's identity.
    public static let perUser = SessionIdentity(
        route: LoginRoute(key: "user", rule: .perUser, lifetime: .perUser))

    /// The session of this process: `CCACHED_SESSION` if set; else ``LoginRouter``'s rule for this
    /// process and its real uid (the rule the door applies to it).
    public static func current(environment: [String: String], router: LoginRouter = LoginRouter())
        throws(SessionRuntimeError) -> SessionIdentity
    {
        if let explicit = environment["CCACHED_SESSION"], !explicit.isEmpty {
            guard isSafeComponent(explicit) else { throw .invalidSessionName(explicit) }
            // A logind session of another user is never this process's: `su bob` inside alice's
            // login may carry her XDG_SESSION_ID into pam_ccached's CCACHED_SESSION. The rule decides.
            if let session = SystemLogind().session(explicit), session.uid != getuid() {
                return of(pid: 0, uid: getuid(), router: router)
            }
            return SessionIdentity(key: explicit, source: .environment)
        }
        return of(pid: 0, uid: getuid(), router: router)
    }

    /// The daemon of another process running as `uid` (0: this process), by ``LoginRouter``'s rule
    /// from what logind and `/proc` say about it. The environment is not consulted: the caller
    /// cannot trust it. A pid that is negative (a peer in a pid namespace this process cannot see)
    /// gets the user's primary login.
    ///
    /// The answer is about whatever process has that pid *now*: a caller that got the pid from a
    /// socket must confirm afterwards that the same process still holds it (ccached-door does so
    /// through the peer's pidfd).
    public static func of(
        pid: Int32, uid: UInt32, router: LoginRouter = LoginRouter(), logind: some LoginDirectory = SystemLogind()
    ) -> SessionIdentity {
        let process = pid < 0 ? PeerProcess.unseen : PeerProcess.read(pid: pid, uid: uid)
        return SessionIdentity(route: router.route(uid: uid, process: process, logind: logind))
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

    static func isSafeComponent(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text != "." && text != ".."
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2E || byte == 0x5F || byte == 0x2D
            }
    }

    public var description: String {
        if let route { return "\(key) (\(route.rule))" }
        return "\(key) (from \(source.rawValue))"
    }
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

/// Reads a small text file (at most `limit` bytes, in one read: /proc files are read whole), or nil.
func readSmallFile(_ path: String, limit: Int = 4096) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: limit)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count >= 0 else { return nil }
    return String(decoding: buffer[0..<count], as: UTF8.self)
}
