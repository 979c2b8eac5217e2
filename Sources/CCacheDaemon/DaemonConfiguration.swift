import CredentialStore
import Glibc
import TicketRenewal

/// How a daemon runs: where it listens, whom it serves, and its limits.
public struct DaemonConfiguration: Sendable {
    /// The Unix socket path to listen on (with socket activation: the path systemd listens on,
    /// for messages only).
    public var socketPath: String
    /// The uid whose caches the daemon holds (and who may talk to it).
    public var ownerUID: UInt32
    /// Whether root may talk to the daemon too (PAM and sshd hand tickets over as root).
    public var allowsRoot: Bool
    /// The largest request body accepted. MIT sends REPLACE of a whole cache in one request.
    public var maximumRequestLength: UInt32
    /// Stack size of each connection thread.
    public var threadStackSize: Int
    /// Exit after this many seconds with no connections and no caches; 0 = never.
    public var idleTimeout: UInt32
    /// Tickets expired longer ago than this, and caches without tickets for this long, are purged;
    /// 0 = never.
    public var purgeGrace: UInt32 = 3600
    /// How often the purge runs, in seconds.
    public var purgeInterval: UInt32 = 60
    /// How many caches, credentials and bytes the store accepts.
    public var storeLimits = CredentialStoreLimits()
    /// Connections served at once; more are closed at once (and logged).
    public var maximumConnections: Int
    /// Seconds a started request may take to arrive completely; a slower client is disconnected,
    /// so a trickle of bytes cannot pin a buffer.
    public var requestTimeout: UInt32

    /// 4096: far above what a session's tools open (a few at a time) and 1,000 idle ones.
    public static let defaultMaximumConnections = 4096
    /// 10 s: a local client writes a whole request in microseconds.
    public static let defaultRequestTimeout: UInt32 = 10
    /// The logind session whose end wipes the store and stops the daemon; nil: the daemon's own
    /// session, if it runs in one. The front door sets it, since a daemon it starts is not inside
    /// the session it serves.
    public var loginSession: String?
    /// The audit session of the job this daemon serves (`--audit-session`): when no process of it is
    /// left, the daemon wipes and exits.
    public var auditSession: UInt32?
    /// The per-user daemon (`--per-user`): it wipes and exits once its user has had no logind
    /// session for ``perUserGrace`` seconds and does not linger (only where logind runs).
    public var perUser = false
    /// Seconds without a login before the per-user daemon ends: room for a writer that stores
    /// tickets just before the login opens (sssd's krb5_child, a KCM-writing sshd).
    public var perUserGrace: UInt32 = 30
    /// How often the daemon checks what ends it (its socket, its job, its user's logins), in seconds.
    public var lifetimeCheckInterval: UInt32 = 10
    /// Whether renewable tickets are renewed in the background (`--renew`, the default); without,
    /// CCACHED_RENEW (`ccachectl renew`) still renews on request.
    public var renewsInBackground = true
    /// When a ticket is due for renewal and how failures back off (`--renew-threshold`, `--renew-margin`).
    public var renewalPolicy = DaemonConfiguration.defaultRenewalPolicy

    /// Renew when a third of the lifetime remains, at the latest 5 minutes before expiry.
    public static let defaultRenewalPolicy: RenewalPolicy = {
        do {
            return try RenewalPolicy()
        } catch {
            preconditionFailure("the default renewal policy is valid: \(error)")
        }
    }()
    /// A descriptor to report readiness on (`READY`, or `EXISTS` / `ERROR <why>`), then close.
    public var readyDescriptor: Int32?
    /// Whether the store is kept in a state file (an anonymous memory file, Docs/state.md) that a
    /// daemon started after a crash restores (`--no-state` turns it off).
    public var keepsState = true
    /// Credentials in `memfd_secret` memory (`--secret-memory`) when the kernel makes it, and then
    /// no state file: its pages would hold the tickets in ordinary memory. Off by default: secret
    /// memory in use keeps the machine from hibernating.
    public var secretMemory = false
    /// The state file handed over (`--state-fd`): a memfd a daemon before this one wrote, restored
    /// before the daemon serves. Nil: the daemon makes a new one.
    public var stateDescriptor: Int32?
    /// What the daemon this one was before an `execve` handed over (`--inherit`): its sockets, its
    /// connections and its state file, adopted instead of bound or made anew.
    public var inherited: InheritedDescriptors?
    /// The state file comes from ccached-door over the hand-off socket (`--state-from-door`: the
    /// door starts the daemon as a systemd unit, which inherits no descriptor of the door's). The
    /// daemon binds its sockets and reports ready, but serves nothing — its own socket included —
    /// until the door's ``HandoffMessage/stateFile`` message restored it, or until
    /// ``stateFromDoorSeconds`` passed (then it makes a state file of its own).
    public var stateFromDoor = false
    /// How long a `--state-from-door` daemon waits for the door's state file.
    public static let stateFromDoorSeconds: UInt64 = 10

    /// Five minutes: long enough that a login's tools never race the exit, short enough that
    /// an unused daemon does not linger.
    public static let defaultIdleTimeout: UInt32 = 300

    /// 16 MiB: above MIT's 10 MiB reply limit, so any cache MIT can read back it can also write.
    public static let defaultMaximumRequestLength: UInt32 = 16 << 20

    public init(
        socketPath: String, ownerUID: UInt32 = getuid(), allowsRoot: Bool = true,
        maximumRequestLength: UInt32 = DaemonConfiguration.defaultMaximumRequestLength,
        threadStackSize: Int = 512 << 10, idleTimeout: UInt32 = DaemonConfiguration.defaultIdleTimeout,
        readyDescriptor: Int32? = nil,
        maximumConnections: Int = DaemonConfiguration.defaultMaximumConnections,
        requestTimeout: UInt32 = DaemonConfiguration.defaultRequestTimeout
    ) {
        self.maximumConnections = maximumConnections
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.readyDescriptor = readyDescriptor
        self.socketPath = socketPath
        self.ownerUID = ownerUID
        self.allowsRoot = allowsRoot
        self.maximumRequestLength = maximumRequestLength
        self.threadStackSize = threadStackSize
    }
}
