/// How the door runs.
public struct DoorConfiguration: Sendable {
    /// The standard KCM path MIT and Heimdal clients connect to.
    public static let standardSocketPath = "/run/.heim_org.h5l.kcm-socket"

    /// Where the door listens (with socket activation: systemd's path, for messages only).
    public var socketPath: String
    /// The `ccached` binary it starts for a session.
    public var daemonPath: String
    /// Where `user/N` and `ccached/N` live (tests: a private copy).
    public var runRoot: String = "/run"
    /// The whole routing of one connection — identify, find or start, hand off — may take this long;
    /// then the connection is closed.
    public var routingTimeoutMilliseconds: Int32 = 15_000
    /// Connections being routed at once, over all users; more are closed at once.
    public var maximumPending = 1024
    /// Connections being routed at once for one uid, so one user cannot use up the rest.
    public var maximumPendingPerUser = 128
    /// Extra arguments for every daemon started.
    public var daemonArguments: [String] = []
    /// Whether daemons log to the journal.
    public var daemonLogsToJournal = false

    public init(socketPath: String, daemonPath: String) {
        self.socketPath = socketPath
        self.daemonPath = daemonPath
    }
}
