/// How the door runs.
package struct DoorConfiguration: Sendable {
    /// The standard KCM path MIT and Heimdal clients connect to.
    package static let standardSocketPath = "/run/.heim_org.h5l.kcm-socket"

    /// Where the door listens (with socket activation: systemd's path, for messages only).
    package var socketPath: String
    /// The `ccached` binary it starts for a session.
    package var daemonPath: String
    /// Where `user/N` and `ccached/N` live (tests: a private copy).
    package var runRoot: String = "/run"
    /// The whole routing of one connection — identify, find or start, hand off — may take this long;
    /// then the connection is closed.
    package var routingTimeoutMilliseconds: Int32 = 15_000
    /// Connections being routed at once, over all users; more are closed at once.
    package var maximumPending = 1024
    /// Connections being routed at once for one uid, so one user cannot use up the rest.
    package var maximumPendingPerUser = 128
    /// Extra arguments for every daemon started.
    package var daemonArguments: [String] = []
    /// Whether daemons log to the journal.
    package var daemonLogsToJournal = false
    /// Route jobs (an audit session logind does not know: cron, at) to the user's primary login
    /// instead of a daemon of their own (`--jobs-share-login`).
    package var jobsShareLogin = false
    /// Session daemons the door starts for one uid at most; a connection that would need another is
    /// closed (and logged). Each login, job and the per-user daemon count one.
    package var maximumDaemonsPerUser = 16
    /// How a session daemon is started.
    package var daemonStart: DaemonStartMethod = .automatic

    /// How the door starts a session daemon.
    package enum DaemonStartMethod: String, Sendable {
        /// As a transient unit `ccached-UID-KEY.service` in `user-UID.slice` (`systemd-run`): the
        /// daemon lives in its user's slice under the user's limits, with its own sandbox and
        /// network access for renewal, not in ccached-door.service's cgroup and sandbox.
        case systemd
        /// As a child of the door (fork, privilege drop, exec): where systemd is not PID 1.
        case fork
        /// `systemd` when systemd runs the system (`/run/systemd/system` exists), else `fork`.
        case automatic = "auto"
    }

    package init(socketPath: String, daemonPath: String) {
        self.socketPath = socketPath
        self.daemonPath = daemonPath
    }
}
