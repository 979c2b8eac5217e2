import Testing

@testable import SessionRuntime

/// The routing rule as a table: what logind and /proc say about a peer → the daemon it reaches.
/// Each row is one of the situations of a real host (issue 20), with uid 1000 ("alice") unless said.
@Suite("The routing rule: every process of a login reaches that login's tickets")
struct LoginRouterTests {
    /// logind as a table of sessions, with a display session per uid.
    struct FakeLogind: LoginDirectory {
        var table: [LogindSession] = []
        var displays: [UInt32: String] = [:]

        func session(_ id: String) -> LogindSession? { table.first { $0.id == id } }
        func sessions(ofUser uid: UInt32) -> [String] { table.filter { $0.uid == uid }.map(\.id) }
        func display(ofUser uid: UInt32) -> String? { displays[uid] }
    }

    static func login(
        _ id: String, uid: UInt32 = 1000, class sessionClass: String = "user", state: String = "active",
        type: String = "tty"
    ) -> LogindSession {
        LogindSession(id: id, uid: uid, sessionClass: sessionClass, state: state, type: type)
    }

    static func process(
        scope: String? = nil, audit: UInt32? = nil, loginUID: UInt32? = nil, userManager: Bool = false
    ) -> PeerProcess {
        PeerProcess(sessionByCgroup: scope, auditSession: audit, loginUID: loginUID, inUserManager: userManager)
    }

    struct Row: Sendable, CustomTestStringConvertible {
        let what: String
        let uid: UInt32
        let process: PeerProcess
        let sessions: [LogindSession]
        let displays: [UInt32: String]
        let expected: LoginRoute
        var testDescription: String { what }
    }

    static let alice: UInt32 = 1000
    static let bob: UInt32 = 1001

    static let rows: [Row] = [
        Row(
            what: "an ssh login's shell, in session-5.scope → its login",
            uid: alice, process: process(scope: "5", audit: 5, loginUID: alice), sessions: [login("5")],
            displays: [:], expected: LoginRoute(key: "5", rule: .ownLogin, lifetime: .loginSession("5"))),
        Row(
            what: "a process of login 5 that left its scope (systemd-run --scope, an app scope) → login 5",
            uid: alice, process: process(audit: 5, loginUID: alice), sessions: [login("5"), login("7")],
            displays: [:], expected: LoginRoute(key: "5", rule: .ownLogin, lifetime: .loginSession("5"))),
        Row(
            what: "a second concurrent login → its own login, not the first",
            uid: alice, process: process(scope: "7", audit: 7, loginUID: alice), sessions: [login("5"), login("7")],
            displays: [:], expected: LoginRoute(key: "7", rule: .ownLogin, lifetime: .loginSession("7"))),
        Row(
            what: "logind without audit sessions (ids c1, c2) → the login of the cgroup",
            uid: alice, process: process(scope: "c2"), sessions: [login("c1"), login("c2")], displays: [:],
            expected: LoginRoute(key: "c2", rule: .ownLogin, lifetime: .loginSession("c2"))),
        Row(
            what: "a user service or desktop app under user@1000.service, with a graphical session → that session",
            uid: alice, process: process(audit: 3, loginUID: alice, userManager: true),
            sessions: [login("2", type: "x11"), login("6")], displays: [alice: "2"],
            expected: LoginRoute(key: "2", rule: .displaySession, lifetime: .loginSession("2"))),
        Row(
            what: "tmux of an ended login on an ssh host: logind's display is the oldest tty login → the newest login",
            uid: alice, process: process(scope: "5", audit: 5, loginUID: alice),
            sessions: [login("3"), login("5", state: "closing"), login("9")], displays: [alice: "3"],
            expected: LoginRoute(key: "9", rule: .recentLogin, lifetime: .loginSession("9"))),
        Row(
            what: "a Wayland session is the display session too",
            uid: alice, process: process(), sessions: [login("4", type: "wayland"), login("9")],
            displays: [alice: "4"],
            expected: LoginRoute(key: "4", rule: .displaySession, lifetime: .loginSession("4"))),
        Row(
            what: "a user service with only ssh logins → the most recent live login",
            uid: alice, process: process(audit: 3, loginUID: alice, userManager: true),
            sessions: [login("5"), login("12"), login("9")], displays: [:],
            expected: LoginRoute(key: "12", rule: .recentLogin, lifetime: .loginSession("12"))),
        Row(
            what: "a user service when the user has no login (lingering) → the per-user daemon",
            uid: alice, process: process(audit: 3, loginUID: alice, userManager: true), sessions: [], displays: [:],
            expected: LoginRoute(key: "user", rule: .perUser, lifetime: .perUser)),
        Row(
            what: "a Debian cron job: a new audit session logind does not know → a job daemon of its own",
            uid: alice, process: process(audit: 40, loginUID: alice), sessions: [login("5")], displays: [:],
            expected: LoginRoute(key: "job-40", rule: .ownJob, lifetime: .auditSession(40))),
        Row(
            what: "Fedora's crond: a logind session of class background → that session",
            uid: alice, process: process(scope: "41", audit: 41, loginUID: alice),
            sessions: [login("5"), login("41", class: "background")], displays: [:],
            expected: LoginRoute(key: "41", rule: .ownJob, lifetime: .loginSession("41"))),
        Row(
            what: "rpc.gssd acting for alice: pid of root's service, no audit session → alice's primary login",
            uid: alice, process: process(), sessions: [login("5")], displays: [:],
            expected: LoginRoute(key: "5", rule: .recentLogin, lifetime: .loginSession("5"))),
        Row(
            what: "setpriv --reuid=alice from a system service (loginuid unset) → alice's primary login",
            uid: alice, process: process(scope: nil, audit: nil, loginUID: nil), sessions: [login("5"), login("8")],
            displays: [:], expected: LoginRoute(key: "8", rule: .recentLogin, lifetime: .loginSession("8"))),
        Row(
            what: "tmux of a login that ended (closing) → the live login, not the closing one",
            uid: alice, process: process(scope: "5", audit: 5, loginUID: alice),
            sessions: [login("5", state: "closing"), login("9")], displays: [:],
            expected: LoginRoute(key: "9", rule: .recentLogin, lifetime: .loginSession("9"))),
        Row(
            what: "tmux of a login that ended, and no other login → the per-user daemon",
            uid: alice, process: process(scope: "5", audit: 5, loginUID: alice),
            sessions: [login("5", state: "closing")], displays: [:],
            expected: LoginRoute(key: "user", rule: .perUser, lifetime: .perUser)),
        Row(
            what: "su - bob inside alice's login 5 → bob's primary login, never alice's session",
            uid: bob, process: process(scope: "5", audit: 5, loginUID: alice),
            sessions: [login("5"), login("6", uid: bob)], displays: [:],
            expected: LoginRoute(key: "6", rule: .recentLogin, lifetime: .loginSession("6"))),
        Row(
            what: "sudo -u bob inside alice's login, bob with no login → bob's per-user daemon",
            uid: bob, process: process(scope: "5", audit: 5, loginUID: alice), sessions: [login("5")], displays: [:],
            expected: LoginRoute(key: "user", rule: .perUser, lifetime: .perUser)),
        Row(
            what: "a peer in a pid namespace the door cannot see → the user's primary login",
            uid: alice, process: .unseen, sessions: [login("5")], displays: [:],
            expected: LoginRoute(key: "5", rule: .recentLogin, lifetime: .loginSession("5"))),
        Row(
            what: "another user's display session is never alice's",
            uid: alice, process: process(), sessions: [login("2", uid: bob, type: "x11"), login("5")],
            displays: [alice: "2"],
            expected: LoginRoute(key: "5", rule: .recentLogin, lifetime: .loginSession("5"))),
        Row(
            what: "a greeter session of alice's uid is not a login",
            uid: alice, process: process(scope: "3"), sessions: [login("3", class: "greeter")], displays: [:],
            expected: LoginRoute(key: "user", rule: .perUser, lifetime: .perUser)),
        Row(
            what: "a closing display session is passed over for a live login",
            uid: alice, process: process(userManager: true),
            sessions: [login("2", state: "closing", type: "x11"), login("5")], displays: [alice: "2"],
            expected: LoginRoute(key: "5", rule: .recentLogin, lifetime: .loginSession("5"))),
        Row(
            what: "an audit session of another user's login uid is not alice's job",
            uid: alice, process: process(audit: 40, loginUID: bob), sessions: [], displays: [:],
            expected: LoginRoute(key: "user", rule: .perUser, lifetime: .perUser)),
    ]

    @Test("each situation reaches its daemon", arguments: rows)
    func route(row: Row) {
        let logind = FakeLogind(table: row.sessions, displays: row.displays)
        #expect(LoginRouter().route(uid: row.uid, process: row.process, logind: logind) == row.expected)
    }

    @Test("with jobs sharing the login, a cron job reaches the login, as under sssd-kcm")
    func jobsShareLogin() {
        let logind = FakeLogind(table: [Self.login("5")])
        let route = LoginRouter(jobsShareLogin: true).route(
            uid: Self.alice, process: Self.process(audit: 40, loginUID: Self.alice), logind: logind)
        #expect(route == LoginRoute(key: "5", rule: .recentLogin, lifetime: .loginSession("5")))
    }

    @Test("a session id that is not a safe path component is never a key")
    func unsafeIds() {
        let logind = FakeLogind(table: [Self.login("../x")], displays: [Self.alice: "../x"])
        let route = LoginRouter().route(uid: Self.alice, process: Self.process(scope: "../x"), logind: logind)
        #expect(route.key == "user")
    }

    @Test("each lifetime is passed to the daemon as its own option")
    func lifetimeArguments() {
        #expect(DaemonLifetime.loginSession("5").daemonArguments == ["--login-session", "5"])
        #expect(DaemonLifetime.auditSession(40).daemonArguments == ["--audit-session", "40"])
        #expect(DaemonLifetime.perUser.daemonArguments == ["--per-user"])
    }

    @Test("what /proc says becomes the rule's facts: session scope, audit session, login uid, user manager")
    func processRecord() {
        func facts(_ cgroup: String, _ sessionID: String = "5", _ loginUID: String = "1000") -> PeerProcess {
            PeerProcess(record: ProcessRecord(cgroup: cgroup, sessionID: sessionID, loginUID: loginUID), uid: 1000)
        }
        // cgroup v2, a login's scope.
        #expect(
            facts("0::/user.slice/user-1000.slice/session-5.scope\n")
                == PeerProcess(sessionByCgroup: "5", auditSession: 5, loginUID: 1000, inUserManager: false))
        // cgroup v1 or hybrid: systemd's own hierarchy decides, not the others.
        #expect(
            facts("4:memory:/x\n1:name=systemd:/user.slice/user-1000.slice/session-c3.scope\n0::/\n").sessionByCgroup
                == "c3")
        // Under the user manager: not a session, even for a cgroup the user named like one.
        let managed = facts(
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/session-9.scope\n", "4294967295",
            "4294967295")
        #expect(managed == PeerProcess(sessionByCgroup: nil, auditSession: nil, loginUID: nil, inUserManager: true))
        // Another user's manager is not this user's.
        #expect(!facts("0::/user.slice/user-1001.slice/user@1001.service/app.slice/x.scope\n").inUserManager)
        // A system service: no session.
        #expect(facts("0::/system.slice/cron.service\n").sessionByCgroup == nil)
    }
}
