/// Which daemon a process of a user reaches: the one routing rule of ccached, used by ccached-door
/// for every connection, and by `ccachectl`, the client library and so `pam_ccached` for the
/// calling process. Pure: what logind and the kernel say comes in as values (``PeerProcess``, a
/// ``LoginDirectory``), so every row of the rule is a unit test.
///
/// For a process of uid U:
///
/// 1. **Its own login**: a logind session of U of class `user` that is not `closing`, found by the
///    process's cgroup (`session-N.scope`) or by its audit session id (logind's session id *is* the
///    audit session id of the login, so a process that left the scope still finds it) → that
///    session's daemon, which ends with the session.
/// 2. **Its own job**: a live logind session of U of class `background` (Fedora's crond) → that
///    session's daemon; or an audit session of U (loginuid U) that logind does not know and that is
///    not U's user manager (Debian's cron and atd) → a daemon `job-N` of its own, which ends when the
///    last process of audit session N has exited. With ``jobsShareLogin`` such jobs take rule 3.
/// 3. **Anything else of U** (the user manager and all it starts, a login that has ended such as
///    tmux, root helpers acting for U, `sudo -u U` in someone else's login, a peer whose pid cannot
///    be seen) → U's primary login: logind's display session of U when it is graphical, else U's most
///    recent live login, else the per-user daemon `user`, which ends when U has no login left and does
///    not linger.
public struct LoginRouter: Sendable {
    /// Route jobs (rule 2's audit sessions) to the primary login, as sssd-kcm users are used to.
    public var jobsShareLogin: Bool

    public init(jobsShareLogin: Bool = false) {
        self.jobsShareLogin = jobsShareLogin
    }

    /// The daemon a process of `uid` reaches.
    public func route(uid: UInt32, process: PeerProcess, logind: some LoginDirectory) -> LoginRoute {
        // Rules 1 and 2a: a logind session of the process's own, by cgroup first, then by audit id.
        var candidates: [String] = []
        if let scope = process.sessionByCgroup { candidates.append(scope) }
        if let audit = process.auditSession, process.loginUID == uid { candidates.append(String(audit)) }
        for id in candidates where SessionIdentity.isSafeComponent(id) {
            guard let session = logind.session(id), session.uid == uid, session.isLive else { continue }
            switch session.sessionClass {
            case "user": return LoginRoute(key: id, rule: .ownLogin, lifetime: .loginSession(id))
            case "background": return LoginRoute(key: id, rule: .ownJob, lifetime: .loginSession(id))
            default: continue
            }
        }
        // Rule 2b: an audit session of U's own that logind does not know, outside U's user manager.
        if !jobsShareLogin, let audit = process.auditSession, process.loginUID == uid, !process.inUserManager,
            logind.session(String(audit)) == nil
        {
            return LoginRoute(key: "job-\(audit)", rule: .ownJob, lifetime: .auditSession(audit))
        }
        return primaryLogin(of: uid, logind: logind)
    }

    /// Rule 3: U's graphical display session, else U's most recent live login, else the per-user daemon.
    public func primaryLogin(of uid: UInt32, logind: some LoginDirectory) -> LoginRoute {
        func liveLogin(_ id: String) -> LogindSession? {
            guard SessionIdentity.isSafeComponent(id), let session = logind.session(id),
                session.uid == uid, session.sessionClass == "user", session.isLive
            else { return nil }
            return session
        }
        // logind elects a tty login as the display too when there is no graphical one, and keeps
        // the first it elected: on an ssh host that would pin every process outside a login to the
        // oldest login. Only a graphical display session is the user's primary login.
        if let display = logind.display(ofUser: uid), liveLogin(display)?.isGraphical == true {
            return LoginRoute(key: display, rule: .displaySession, lifetime: .loginSession(display))
        }
        let live = logind.sessions(ofUser: uid).filter { liveLogin($0) != nil }
        if let newest = live.max(by: { Self.age($0) < Self.age($1) }) {
            return LoginRoute(key: newest, rule: .recentLogin, lifetime: .loginSession(newest))
        }
        return LoginRoute(key: "user", rule: .perUser, lifetime: .perUser)
    }

    /// Orders session ids by when logind made them: audit session ids (`12`) and logind's own ids
    /// (`c3`) both count up, so the number in the id is the order; the id itself breaks ties.
    static func age(_ id: String) -> (UInt64, String) {
        let digits = id.utf8.drop { $0 < 0x30 || $0 > 0x39 }
        return (UInt64(String(decoding: digits, as: UTF8.self)) ?? 0, id)
    }
}

/// Where a process is routed, by which rule, and how long that daemon lives.
public struct LoginRoute: Sendable, Hashable, CustomStringConvertible {
    /// The daemon's key: one path component under `<runtime>/ccached/`.
    public let key: String
    public let rule: LoginRule
    public let lifetime: DaemonLifetime

    public var description: String { "\(key) (\(rule))" }
}

/// The rows of the rule, as `ccachectl where` and the logs name them.
public enum LoginRule: String, Sendable, Hashable, CustomStringConvertible {
    case ownLogin
    case ownJob
    case displaySession
    case recentLogin
    case perUser

    public var description: String {
        switch self {
        case .ownLogin: "rule 1: its own login"
        case .ownJob: "rule 2: its own job"
        case .displaySession: "rule 3: the user's graphical session"
        case .recentLogin: "rule 3: the user's most recent login"
        case .perUser: "rule 3: the user's per-user daemon (no login)"
        }
    }
}

/// What ends a daemon (besides idle exit with nothing stored, a stop request, or its socket gone).
public enum DaemonLifetime: Sendable, Hashable {
    /// The logind session ends (or starts closing): `ccached --login-session ID`.
    case loginSession(String)
    /// The last process of this audit session exits: `ccached --audit-session N`.
    case auditSession(UInt32)
    /// The user has no logind session left and does not linger: `ccached --per-user`.
    case perUser

    /// The daemon's arguments that give it this lifetime.
    public var daemonArguments: [String] {
        switch self {
        case .loginSession(let id): ["--login-session", id]
        case .auditSession(let number): ["--audit-session", "\(number)"]
        case .perUser: ["--per-user"]
        }
    }
}

/// What logind says about one session.
public struct LogindSession: Sendable, Hashable {
    public let id: String
    public let uid: UInt32
    /// `user`, `greeter`, `lock-screen` or `background`.
    public let sessionClass: String
    /// `online`, `active` or `closing`.
    public let state: String
    /// `tty`, `x11`, `wayland`, `mir`, `web` or `unspecified`.
    public let type: String

    public init(id: String, uid: UInt32, sessionClass: String, state: String, type: String = "tty") {
        self.id = id
        self.uid = uid
        self.sessionClass = sessionClass
        self.state = state
        self.type = type
    }

    /// A desktop session (X11, Wayland, Mir), as a display manager opens one.
    public var isGraphical: Bool { type == "x11" || type == "wayland" || type == "mir" }

    /// Not `closing`: logind keeps a login listed as closing while processes of it (tmux) survive.
    public var isLive: Bool { state != "closing" }
}

/// The questions the rule asks systemd-logind (``SystemLogind`` asks the real one).
public protocol LoginDirectory {
    /// A session by id, or nil when logind does not know it.
    func session(_ id: String) -> LogindSession?
    /// The ids of every session of `uid` logind lists, closing ones included.
    func sessions(ofUser uid: UInt32) -> [String]
    /// logind's display session of `uid` (`sd_uid_get_display`), if any.
    func display(ofUser uid: UInt32) -> String?
}

/// What the kernel says about a process: its cgroup's session scope, audit session and login uid,
/// and whether it runs under its user's systemd user manager.
public struct PeerProcess: Sendable, Hashable {
    /// The logind session whose scope holds the process (`sd_pid_get_session`).
    public var sessionByCgroup: String?
    /// `/proc/PID/sessionid`, nil when unset.
    public var auditSession: UInt32?
    /// `/proc/PID/loginuid`, nil when unset.
    public var loginUID: UInt32?
    /// The cgroup is under `user@UID.service` of the peer's uid (the user manager and its units).
    public var inUserManager: Bool

    public init(sessionByCgroup: String?, auditSession: UInt32?, loginUID: UInt32?, inUserManager: Bool) {
        self.sessionByCgroup = sessionByCgroup
        self.auditSession = auditSession
        self.loginUID = loginUID
        self.inUserManager = inUserManager
    }

    /// A process this one cannot see (a peer in another pid namespace): nothing is known.
    public static let unseen = PeerProcess(sessionByCgroup: nil, auditSession: nil, loginUID: nil, inUserManager: false)
}
