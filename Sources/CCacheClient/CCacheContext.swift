import Glibc
import KCM
import SessionRuntime
import Synchronization
import SystemCalls

/// The entry point of the client library (CCAPI's context): finds this session's daemon, starts
/// it when absent, reconnects when it died (once a dying one is entirely gone), refuses a daemon
/// of another user, and acts with the process's identity. All state lives in the context; it is
/// safe to share between threads (calls on one context take turns on its single connection).
public final class CCacheContext: Sendable {
    /// How the context finds and starts the daemon.
    public struct Options: Sendable {
        /// Start the daemon when none answers.
        public var autoStart: Bool
        /// The environment that decides the session (`CCACHED_SOCKET`, `CCACHED_SESSION`,
        /// `XDG_RUNTIME_DIR`, `CCACHED_DAEMON`, `PATH`); the process's by default.
        public var environment: [String: String]
        /// `--idle-timeout` for a daemon this context starts; the daemon's default when nil.
        public var idleTimeout: UInt32?

        public init(autoStart: Bool = true, environment: [String: String]? = nil, idleTimeout: UInt32? = nil) {
            self.autoStart = autoStart
            self.environment = environment ?? ProcessEnvironment.current()
            self.idleTimeout = idleTimeout
        }
    }

    public let options: Options
    /// Where this session's daemon lives.
    public let paths: SessionPaths
    /// The process's uid: the daemon must run as this uid or as root.
    public let uid: UInt32
    private let connection = Mutex<KCMClientConnection?>(nil)

    /// Resolves the session's paths (creating and checking its private directory).
    public init(options: Options = Options()) throws(CCacheClientError) {
        self.options = options
        let uid = ProcessIdentity.processUID
        self.uid = uid
        paths = try ProcessIdentity.withProcessIdentity { () throws(CCacheClientError) -> SessionPaths in
            switch Result(catching: { () throws(SessionRuntimeError) -> SessionPaths in
                try SessionPaths.resolve(environment: options.environment, uid: uid)
            }) {
            case .success(let paths): return paths
            case .failure(let error): throw .runtime(error.description)
            }
        }
    }

    // MARK: - Requests

    /// Sends a request and returns its reply, read with ``KCMReply``'s reader for the request's
    /// opcode; a non-zero status throws ``CCacheClientError/daemon(_:operation:)``.
    public func call(_ request: KCMRequest, operation: String) throws(CCacheClientError) -> KCMReply {
        let (status, reply) = try answer(request, operation: operation)
        guard status == .success, let reply else { throw .daemon(status, operation: operation) }
        return reply
    }

    /// Sends a request and returns its status, with the reply when the status is success: for the
    /// callers to whom some failures are answers ("no such cache", "not found").
    public func answer(_ request: KCMRequest, operation: String) throws(CCacheClientError) -> (KCMStatus, KCMReply?) {
        let (status, payload) = try rawCall(request)
        guard status == .success else { return (status, nil) }
        guard let opcode = request.opcode else { return (status, .empty) }
        do {
            return (status, try KCMReply(payload: payload, for: opcode))
        } catch {
            throw .malformedReply(operation: operation)
        }
    }

    /// Sends a request and returns the status and payload as they came.
    func rawCall(_ request: KCMRequest) throws(CCacheClientError) -> (KCMStatus, [UInt8]) {
        let frame = request.encodedFrame()
        let retrySafe = request.isSafeToRepeat
        return try ProcessIdentity.withProcessIdentity { () throws(CCacheClientError) -> (KCMStatus, [UInt8]) in
            try connection.withLock {
                (current: inout KCMClientConnection?) throws(CCacheClientError) -> (KCMStatus, [UInt8]) in
                var attempt = 0
                while true {
                    attempt += 1
                    let live: KCMClientConnection
                    if let current {
                        live = current
                    } else {
                        live = try connect(allowStart: options.autoStart)
                        current = live
                    }
                    switch live.call(frame) {
                    case .reply(let status, let payload):
                        return (status, payload)
                    case .notSent(let reason):
                        // Never applied, so always safe to send again on a new connection, but only
                        // once the daemon that dropped it is running or entirely gone: a dying one
                        // still takes connections and resets them all (see DaemonDeparture).
                        current = nil
                        if attempt >= 3 { throw .connection(path: paths.socket, reason: reason) }
                        if DaemonDeparture.settle(after: live, milliseconds: Self.departureWait) != .gone {
                            // A live daemon that closed it (its connection limit) gets a moment.
                            usleep(attempt >= 2 ? 50_000 : 10_000)
                        }
                    case .noReply(let reason):
                        current = nil
                        if attempt >= 2 || !retrySafe { throw .connection(path: paths.socket, reason: reason) }
                        // A daemon that read the request and died: let it finish dying first.
                        _ = DaemonDeparture.settle(after: live, milliseconds: Self.departureWait)
                    }
                }
            }
        }
    }

    /// How long a retry waits for a daemon whose main thread has exited to finish exiting; the
    /// rest of a death normally takes milliseconds, this bounds a thread stuck in the kernel.
    static let departureWait: Int32 = 5000

    /// Opens a connection, starting the daemon under the spawn lock if none answers.
    private func connect(allowStart: Bool) throws(CCacheClientError) -> KCMClientConnection {
        if let live = try KCMClientConnection.connectIfRunning(path: paths.socket, expectedUID: uid) { return live }
        guard allowStart else { throw .notRunning(path: paths.socket) }
        let launcher = DaemonLauncher(
            paths: paths, executable: DaemonLauncher.locateDaemon(environment: options.environment),
            idleTimeout: options.idleTimeout)
        return try launcher.withSpawnLock { () throws(CCacheClientError) -> KCMClientConnection in
            // Another client may have started it while we waited for the lock.
            if let live = try KCMClientConnection.connectIfRunning(path: paths.socket, expectedUID: uid) { return live }
            try launcher.launch()
            guard let live = try KCMClientConnection.connectIfRunning(path: paths.socket, expectedUID: uid) else {
                throw .cannotStart(path: paths.socket, reason: "it reported ready but does not accept connections")
            }
            return live
        }
    }

    // MARK: - The daemon

    /// Whether a daemon answers now (never starts one).
    public var isDaemonRunning: Bool {
        (try? ProcessIdentity.withProcessIdentity { () throws(CCacheClientError) -> Bool in
            try KCMClientConnection.connectIfRunning(path: paths.socket, expectedUID: uid) != nil
        }) ?? false
    }

    /// The daemon's state.
    public func status() throws(CCacheClientError) -> KCMDaemonStatus {
        try decoded(call(.daemonStatus, operation: "status"), operation: "status") { r throws(KCMDecodingError) in
            try r.asDaemonStatus()
        }
    }

    /// Makes sure a daemon runs (starting it if allowed).
    public func start() throws(CCacheClientError) {
        _ = try call(.noop, operation: "start")
    }

    /// Asks the daemon to stop (CCACHED_STOP: it answers with its pid, wipes every credential and
    /// exits) and waits up to five seconds for it to close the connection, which it does only by
    /// exiting. Returns false if no daemon was running. The daemon is asked, never signalled: the
    /// process at the other end of the socket may be the one that listens for it (systemd), not
    /// the daemon.
    @discardableResult
    public func stopDaemon() throws(CCacheClientError) -> Bool {
        let answer = try askRunningDaemon(.stop, operation: "stop") { r throws(KCMDecodingError) in
            try r.asStoppingPID()
        }
        guard let (pid, live) = answer else { return false }
        guard live.waitForClose(milliseconds: 5000) else {
            throw .connection(path: paths.socket, reason: "daemon pid \(pid) did not stop within 5 s")
        }
        return true
    }

    /// Sends `request` on a connection of its own to a daemon that already runs (nil when none
    /// does, and none is started) and returns its decoded answer with that connection, on which
    /// stopping and detaching wait for the daemon to exit. The shared connection is dropped first.
    private func askRunningDaemon<Value>(
        _ request: KCMRequest, operation: String, _ read: (KCMReply) throws(KCMDecodingError) -> Value
    ) throws(CCacheClientError) -> (Value, KCMClientConnection)? {
        connection.withLock { $0 = nil }
        let live = try ProcessIdentity.withProcessIdentity { () throws(CCacheClientError) -> KCMClientConnection? in
            try KCMClientConnection.connectIfRunning(path: paths.socket, expectedUID: uid)
        }
        guard let live else { return nil }
        switch live.call(request.encodedFrame()) {
        case .reply(.success, let payload):
            guard let opcode = request.opcode, let reply = try? KCMReply(payload: payload, for: opcode) else {
                throw .malformedReply(operation: operation)
            }
            return (try decoded(reply, operation: operation, read), live)
        case .reply(let status, _):
            throw .daemon(status, operation: operation)
        case .notSent(let reason), .noReply(let reason):
            throw .connection(path: paths.socket, reason: reason)
        }
    }

    /// The standard KCM socket, where ccached-door (or another KCM server) listens for the host.
    public static let standardSocket = "/run/.heim_org.h5l.kcm-socket"

    /// Whether a connection to the standard KCM socket reaches this very daemon, i.e. ccached-door
    /// serves the host and routes this process here: then `KRB5CCNAME=KCM:` alone (or the host's
    /// `default_ccache_name = KCM:`) reaches the session's tickets from every program, setuid ones
    /// included, and no per-session krb5.conf is needed. False for any other server there
    /// (sssd-kcm, Heimdal's kcm), no server, or another daemon. Asks both daemons for their pid.
    public func isReachedThroughDoor(standardSocket: String = CCacheContext.standardSocket) -> Bool {
        guard let own = try? status().pid else { return false }
        return
            (try? ProcessIdentity.withProcessIdentity { () throws(CCacheClientError) -> Bool in
                var info = stat()
                // Only root may own the standard socket (the door); a user's socket there is not it.
                guard lstat(standardSocket, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK, info.st_uid == 0,
                    let door = try? KCMClientConnection.connectIfRunning(path: standardSocket, expectedUID: uid),
                    case .reply(.success, let payload) = door.call(KCMRequest.daemonStatus.encodedFrame()),
                    let reply = try? KCMReply(payload: payload, for: .daemonStatus),
                    let reached = try? reply.asDaemonStatus()
                else { return false }
                return reached.pid == own
            }) ?? false
    }

    /// Moves every cache of `other` (the per-user daemon, where a writer outside any session stored
    /// tickets while the user had no login: sssd's krb5_child, a KCM-writing sshd) into this
    /// daemon: a new cache each, with the same principal, credentials and KDC offset, made the
    /// default when this daemon has no default cache yet; each is destroyed in `other` once copied.
    /// Returns the principals moved.
    public func adoptCaches(from other: CCacheContext) throws(CCacheClientError) -> [KCMPrincipal] {
        let otherDefault = try? other.defaultCacheName()
        var hasDefault = (try? cache(named: defaultCacheName()).exists()) ?? false
        var moved: [KCMPrincipal] = []
        for name in try other.cacheNames() {
            let source = other.cache(named: name)
            guard let principal = try? source.principal() else { continue }
            let credentials = try source.credentials()
            let offset = (try? source.kdcOffset()) ?? 0
            let target = cache(named: try newUniqueName())
            try target.replace(principal: principal, credentials: credentials, kdcOffset: offset)
            if !hasDefault && (name == otherDefault || moved.isEmpty) {
                try target.makeDefault()
                hasDefault = name == otherDefault
            }
            try source.destroy()
            moved.append(principal)
        }
        return moved
    }

    /// Counts one more login session using the daemon (`pam_ccached` at session open); returns how
    /// many are attached now. Starts the daemon if allowed and needed.
    public func attachSession() throws(CCacheClientError) -> UInt32 {
        try decoded(call(.attachSession, operation: "attach the session"), operation: "attach the session") {
            r throws(KCMDecodingError) in try r.asAttachedSessions()
        }
    }

    /// Counts one login session fewer; returns how many remain, or nil when no daemon runs. At none
    /// the daemon wipes every cache and exits: this waits (up to five seconds) until it has.
    public func detachSession() throws(CCacheClientError) -> UInt32? {
        let answer = try askRunningDaemon(.detachSession, operation: "detach the session") {
            r throws(KCMDecodingError) in try r.asAttachedSessions()
        }
        guard let (remaining, live) = answer else { return nil }
        if remaining == 0 && !live.waitForClose(milliseconds: 5000) {
            throw .connection(path: paths.socket, reason: "the daemon did not stop within 5 s after its last session")
        }
        return remaining
    }

    // MARK: - The collection

    /// The primary cache's name (it may not exist yet).
    public func defaultCacheName() throws(CCacheClientError) -> KCMCacheName {
        try Self.name(
            from: call(.getDefaultCache, operation: "get the default cache"), operation: "get the default cache")
    }

    /// Makes `name` the primary cache.
    public func setDefaultCache(_ name: KCMCacheName) throws(CCacheClientError) {
        _ = try call(.setDefaultCache(name: name), operation: "switch to \(name)")
    }

    /// Every existing cache, in creation order.
    public func cacheNames() throws(CCacheClientError) -> [KCMCacheName] {
        let uuids = try decoded(call(.getCacheUUIDList, operation: "list caches"), operation: "list caches") {
            r throws(KCMDecodingError) in try r.asUUIDs()
        }
        var names: [KCMCacheName] = []
        for uuid in uuids {
            let (status, reply) = try answer(.getCacheByUUID(uuid: uuid), operation: "list caches")
            if status == .ccEnd || status == .fccNoFile { continue }
            guard let reply else { throw .daemon(status, operation: "list caches") }
            names.append(try Self.name(from: reply, operation: "list caches"))
        }
        return names
    }

    /// A fresh name no cache has (`<uid>:<n>`); the cache is not created.
    public func newUniqueName() throws(CCacheClientError) -> KCMCacheName {
        try Self.name(from: call(.genNew, operation: "make a cache name"), operation: "make a cache name")
    }

    /// A handle on the cache of this name (no I/O until used).
    public func cache(named name: KCMCacheName) -> CCache { CCache(context: self, name: name) }

    static func name(from reply: KCMReply, operation: String) throws(CCacheClientError) -> KCMCacheName {
        guard let name = try? reply.asName(), !name.bytes.isEmpty else { throw .malformedReply(operation: operation) }
        return name
    }
}

extension KCMRequest {
    /// Whether sending this request twice is harmless, so it may be repeated when a reply was lost.
    var isSafeToRepeat: Bool {
        switch self {
        case .noop, .getPrincipal, .getCredUUIDList, .getCredByUUID, .getCacheUUIDList, .getCacheByUUID,
            .getDefaultCache, .setDefaultCache, .getKDCOffset, .setKDCOffset, .getCredList, .retrieve, .initialize,
            .replace, .daemonStatus, .setFlags, .watch, .renewalState, .renew:
            // A renewal repeated renews again: harmless.
            true
        case .genNew, .destroy, .store, .removeCred, .moveCache, .stop, .attachSession, .detachSession, .unsupported:
            false
        }
    }
}

/// A reply's value, or ``CCacheClientError/malformedReply(operation:)`` when it has another shape.
func decoded<Value>(
    _ reply: KCMReply, operation: String, _ read: (KCMReply) throws(KCMDecodingError) -> Value
) throws(CCacheClientError) -> Value {
    do {
        return try read(reply)
    } catch {
        throw .malformedReply(operation: operation)
    }
}
