import CSupport
import Glibc
import Logging
import SessionRuntime
import Synchronization
import SystemCalls

/// `ccached-door`: accepts on the standard KCM path as root and hands every connection, unread,
/// to the daemon of the peer's (uid, login session), starting that daemon when none answers.
///
/// The door never reads a byte a client sends: it looks only at what the kernel says about the
/// peer (SO_PEERCRED, SO_PEERPIDFD, /proc, logind), then passes the descriptor on with SCM_RIGHTS.
/// Each accepted connection is routed on a small thread of its own under a deadline (finished
/// routing threads park and take the next one: ``DoorThread``), so a slow start for one user never
/// delays another; the number routed at once is bounded overall and per uid. A decision the full
/// rule made a moment ago for the same kind of peer is taken from ``RouteCache``. A connection from
/// a process the cache knows by its pidfd is handed off by the accept thread itself, without
/// waiting (``ExpressHandoffs``), when that cannot block.
package final class Door: Sendable {
    package let configuration: DoorConfiguration
    private let logger: Logger
    private let gate = StartGate()
    private let starter: SessionDaemonStarter
    private let handoffs = HandoffPool()
    /// Each session daemon's state file, held so that a daemon that dies without wiping is
    /// restarted with it (``StateFiles``, Docs/state.md).
    package let stateFiles: StateFiles
    /// Routing decisions remembered (``RouteCache``).
    let routes = RouteCache()
    /// The session daemons this door started, per uid (key → hand-off socket), for the per-uid cap.
    private let started = Mutex<[UInt32: [String: String]]>([:])
    /// `systemd-run` when daemons start as units in their user's slice; nil: forked by the door.
    private let systemdRun: String?
    private let pending = Mutex<(total: Int, perUser: [UInt32: Int])>((0, [:]))
    /// Counters for the log and tests: routed, closed before routing, failed.
    private let handedOff = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)

    package init(configuration: DoorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.starter = SessionDaemonStarter(
            daemonPath: configuration.daemonPath, extraArguments: configuration.daemonArguments,
            logToJournal: configuration.daemonLogsToJournal)
        self.systemdRun = Self.systemdRun(for: configuration.daemonStart)
        // Twice the daemons a user may have: room for the files of those that died.
        self.stateFiles = StateFiles(maximumPerUser: max(16, configuration.maximumDaemonsPerUser * 2))
    }

    /// Where `systemd-run` is, when daemons are started as units (see ``DoorConfiguration/daemonStart``).
    static func systemdRun(for method: DoorConfiguration.DaemonStartMethod) -> String? {
        let candidates = ["/usr/bin/systemd-run", "/bin/systemd-run"]
        switch method {
        case .fork: return nil
        case .systemd: return candidates.first { access($0, X_OK) == 0 } ?? candidates[0]
        case .automatic:
            // What sd_booted() checks: systemd is PID 1 of this system.
            guard access("/run/systemd/system", F_OK) == 0 else { return nil }
            return candidates.first { access($0, X_OK) == 0 }
        }
    }

    /// Accepts on `listener` until SIGTERM, SIGINT or SIGHUP.
    package func run(listener: DoorListener) throws(DoorError) {
        signal(SIGPIPE, SIG_IGN)
        _ = ccached_raise_descriptor_limit()
        let signals = ccached_termination_signalfd()
        guard signals >= 0 else { throw .system(operation: "signalfd", errno: .current) }
        defer { close(signals) }
        var descriptors = [
            pollfd(fd: listener.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
        ]
        // The accept thread's own hand-off connections (their answers are read each time round).
        let express = ExpressHandoffs()
        let how = systemdRun.map { "started as units in each user's slice by \($0)" } ?? "started as children"
        logger.info("routing \(listener.path) to session daemons (\(configuration.daemonPath), \(how))")
        var nextSweep = Int64(MonotonicClock.milliseconds()) + Self.sweepMilliseconds
        while true {
            let waiting = express.awaitingAnswers
            let timeout = waiting.isEmpty ? Int32(Self.sweepMilliseconds) : ExpressHandoffs.answerMilliseconds
            do throws(Errno) {
                _ = try retryingInterrupts { poll(&descriptors, nfds_t(descriptors.count), timeout) }
            } catch {
                throw .system(operation: "poll", errno: error)
            }
            if Int64(MonotonicClock.milliseconds()) >= nextSweep {
                // The state files of daemons that ended normally (wiped, and no daemon holds them).
                let closed = stateFiles.sweep(ended: StateFiles.sessionHasEnded)
                if closed > 0 { logger.debug("closed \(closed) state file(s) of session daemons that ended") }
                routes.removeExpiredProcesses(now: Int64(MonotonicClock.microseconds()))
                nextSweep = Int64(MonotonicClock.milliseconds()) + Self.sweepMilliseconds
            }
            if descriptors[1].revents != 0 {
                logger.info("stopping on signal \(ccached_read_signalfd(signals)); daemons keep running")
                finishRouting(express)
                return
            }
            settleAnswers(waiting, of: express)
            if descriptors[0].revents != 0 {
                do throws(Errno) {
                    if let fd = try Socket.accept(listener.fileDescriptor) { admit(fd, express: express) }
                } catch {
                    // Out of descriptors and the like: say so, back off briefly, keep routing.
                    logger.error("cannot accept a connection: \(error.message)")
                    usleep(10_000)
                }
            }
        }
    }

    /// How often the door closes the state files of daemons that ended normally (and the pidfds of
    /// processes its route cache no longer answers for).
    static let sweepMilliseconds: Int64 = 2000

    /// Hands one accepted connection off at once when its process is known and that cannot block
    /// (``ExpressHandoffs``); else starts routing it on its own thread, within the bounds.
    func admit(_ fd: Int32, express: ExpressHandoffs?) {
        // SO_PEERCRED's uid is cheap and exact: it decides the per-user bound before any thread.
        // Read once: routing identifies the peer from the same value.
        guard let credentials = try? PeerCredentials(socket: fd) else {
            close(fd)
            return
        }
        if let express, let peer = DoorPeer.knownProcess(credentials: credentials, cache: routes),
            let cached = peer.cached
        {
            var answers = ExpressHandoffs.Answers()
            let sent = express.send(
                client: fd, handoffPath: cached.location.handoffSocket, uid: cached.account.uid, pool: handoffs,
                answers: &answers)
            settle(answers)
            if sent == .sent { return }
        }
        routeOnThread(fd, credentials: credentials)
    }

    /// On stop: accepts nothing more (what waits in the listening socket stays there, and systemd
    /// keeps that socket for the next door) and lets every connection already accepted finish
    /// routing and every hand-off the accept thread sent be answered, for at most
    /// ``finishMilliseconds``. Exiting at once would close the door's copy of each, and a client
    /// whose request the door never passed on would see its connection reset (a restart of the
    /// door, as an upgrade makes, while a klist ran).
    private func finishRouting(_ express: ExpressHandoffs) {
        let deadline = Int64(MonotonicClock.milliseconds()) + Self.finishMilliseconds
        while true {
            let waiting = express.awaitingAnswers
            let routing = pending.withLock { $0.total }
            if waiting.isEmpty && routing == 0 { return }
            if Int64(MonotonicClock.milliseconds()) >= deadline {
                logger.warning(
                    "stopping with \(routing) connection(s) still being routed and \(waiting.count) hand-off connection(s) unanswered: their clients see their connections end"
                )
                return
            }
            if waiting.isEmpty {
                usleep(2_000)
                continue
            }
            var descriptors = waiting.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = try? retryingInterrupts { poll(&descriptors, nfds_t(descriptors.count), 10) }
            settleAnswers(waiting, of: express)
        }
    }

    /// How long a stopping door lets the connections it accepted finish routing.
    static let finishMilliseconds: Int64 = 5000

    /// Reads the answers waiting on `sockets` of `express` and acts on them (``settle(_:)``).
    func settleAnswers(_ sockets: [Int32], of express: ExpressHandoffs) {
        for socket in sockets { settle(express.answers(on: socket)) }
    }

    /// What the daemons answered to hand-offs the accept thread sent: taken ones are counted,
    /// refused and unanswered ones routed again from the start, closed ones logged.
    private func settle(_ answers: ExpressHandoffs.Answers) {
        if answers.accepted > 0 { handedOff.add(answers.accepted, ordering: .relaxed) }
        if answers.closed > 0 {
            dropped.add(answers.closed, ordering: .relaxed)
            logger.warning(
                "a hand-off connection failed with \(answers.closed) client(s) unanswered: they are closed, never offered twice"
            )
        }
        guard !answers.reroute.isEmpty else { return }
        if answers.ended {
            logger.notice(
                "a session daemon hung up with \(answers.reroute.count) hand-off(s) unanswered: routing them again")
        }
        for client in answers.reroute {
            guard let credentials = try? PeerCredentials(socket: client) else {
                close(client)
                continue
            }
            routeOnThread(client, credentials: credentials)
        }
    }

    /// Starts routing one connection on its own thread, within the bounds.
    private func routeOnThread(_ fd: Int32, credentials: PeerCredentials) {
        let uid = credentials.uid
        let admitted = pending.withLock { state -> Bool in
            let mine = state.perUser[uid, default: 0]
            guard state.total < configuration.maximumPending, mine < configuration.maximumPendingPerUser else {
                return false
            }
            state.total += 1
            state.perUser[uid] = mine + 1
            return true
        }
        guard admitted else {
            logger.warning("closing a connection of uid \(uid): too many connections are being routed already")
            dropped.add(1, ordering: .relaxed)
            close(fd)
            return
        }
        let accepted = Int64(MonotonicClock.microseconds())
        let result = DoorThread.start(stackSize: 256 << 10) { [self] in
            route(fd, credentials: credentials, accepted: accepted)
            finishedRouting(uid: uid)
        }
        if result != 0 {
            finishedRouting(uid: uid)
            logger.error("cannot start a thread to route a connection: \(Errno(rawValue: result).message)")
            close(fd)
        }
    }

    /// Gives back the place in the bounds that ``routeOnThread(_:credentials:)`` took.
    private func finishedRouting(uid: UInt32) {
        pending.withLock { state in
            state.total -= 1
            let left = state.perUser[uid, default: 1] - 1
            state.perUser[uid] = left > 0 ? left : nil
        }
    }

    /// Identifies the peer, finds or starts its session daemon and hands the connection over.
    /// Always closes the door's copy of `fd`. `credentials`: its SO_PEERCRED, if already read.
    func route(
        _ fd: Int32, credentials: PeerCredentials? = nil, accepted: Int64 = Int64(MonotonicClock.microseconds())
    ) {
        defer { close(fd) }
        let deadline = Int64(MonotonicClock.milliseconds()) + Int64(configuration.routingTimeoutMilliseconds)
        var stages = RoutingStages(accepted: accepted)
        let router = LoginRouter(jobsShareLogin: configuration.jobsShareLogin)
        var peer: DoorPeer
        switch DoorPeer.identify(socket: fd, credentials: credentials, router: router, cache: routes) {
        case .identified(let identified): peer = identified
        case .gone:
            logger.debug("a peer left before it could be routed")
            dropped.add(1, ordering: .relaxed)
            return
        case .failed(let error):
            logger.warning("closing a connection whose peer cannot be identified: \(error)")
            dropped.add(1, ordering: .relaxed)
            return
        }
        stages.mark(.identified)
        if let cached = peer.cached, let key = peer.cacheKey {
            // The fast path: a decision remembered for this very kind of peer.
            do throws(DoorError) {
                if try deliver(fd, to: cached.location, account: cached.account, log: logger, deadline: deadline) {
                    stages.mark(.handedOff)
                    recoverStateFile(
                        of: StartGate.Key(uid: peer.uid, session: cached.session.key),
                        lifetime: cached.session.route?.lifetime, at: cached.location, account: cached.account,
                        log: logger, deadline: deadline)
                    logger.debug("routed from the cache in \(stages)", metadata: ["peer_pid": "\(peer.pid)"])
                    return
                }
            } catch {
                // As on the full path: closed, never offered again (after a timeout the daemon may
                // still take it, and a client is never served twice).
                routes.forget(key)
                logger.error(
                    "closing a connection: \(error)",
                    metadata: ["peer_pid": "\(peer.pid)", "peer_uid": "\(peer.uid)", "session": "\(peer.session.key)"])
                dropped.add(1, ordering: .relaxed)
                return
            }
            // No daemon there any more (nothing was handed over): forget the decision and route
            // by the full rule, which starts a daemon if need be.
            routes.forget(key)
            switch DoorPeer.identify(socket: fd, credentials: credentials, router: router, cache: nil) {
            case .identified(let identified): peer = identified
            case .gone, .failed:
                logger.debug("a peer left before it could be routed")
                dropped.add(1, ordering: .relaxed)
                return
            }
        }
        var log = logger
        log[metadataKey: "peer_pid"] = "\(peer.pid)"
        log[metadataKey: "peer_uid"] = "\(peer.uid)"
        log[metadataKey: "session"] = "\(peer.session.key)"
        do throws(DoorError) {
            guard let account = UserAccount.lookUp(uid: peer.uid, includingGroups: false) else {
                throw .unknownUser(uid: peer.uid)
            }
            stages.mark(.account)
            let location = try SessionDaemonLocation.prepare(
                for: account, session: peer.session, runRoot: configuration.runRoot)
            stages.mark(.located)
            // Remembered once a daemon took a connection there (a refusal is remembered too: the
            // decision stands, the daemon is just full).
            func remember() {
                guard let key = peer.cacheKey else { return }
                routes.store(
                    RouteCache.Entry(session: peer.session, account: account, location: location), for: key,
                    generation: peer.generation, now: Int64(MonotonicClock.microseconds()))
            }
            if try deliver(fd, to: location, account: account, log: log, deadline: deadline) {
                stages.mark(.handedOff)
                remember()
                recoverStateFile(
                    of: StartGate.Key(uid: peer.uid, session: peer.session.key), lifetime: peer.session.route?.lifetime,
                    at: location, account: account, log: log, deadline: deadline)
                log.debug("routed in \(stages)")
                return
            }
            let key = StartGate.Key(uid: peer.uid, session: peer.session.key)
            let delivered = try gate.withKey(key, deadline: deadline) { () throws(DoorError) -> Bool in
                // Another connection of this session may have started the daemon meanwhile.
                if try deliver(fd, to: location, account: account, log: log, deadline: deadline) { return true }
                guard let full = UserAccount.lookUp(uid: peer.uid) else { throw .unknownUser(uid: peer.uid) }
                try reserveDaemon(uid: peer.uid, key: peer.session.key, handoff: location.handoffSocket)
                // The session's state file: a new one, or the one its last daemon died holding.
                let prepared = stateFiles.prepare(for: key)
                // Kept once the daemon has its copy (or could not start: a file it died with stays).
                defer {
                    if let prepared {
                        close(prepared.copy)
                        stateFiles.keep(prepared.own, for: key, lifetime: peer.session.route?.lifetime)
                    }
                }
                switch prepared?.preparation {
                case nil:
                    log.warning(
                        "no state file for the session daemon (\(Errno.current.message)): a crash loses its caches")
                case .crashed(let bytes):
                    log.notice(
                        "the session daemon of \(peer.session) ended without wiping its state file (\(bytes) bytes): starting one that restores it"
                    )
                case .stillHeld:
                    log.warning(
                        "the state file of \(peer.session) is still held by a daemon that does not answer: the new daemon gets a new one"
                    )
                case .new: break
                }
                let readiness: SessionDaemonStarter.Readiness
                do throws(DoorError) {
                    if let systemdRun {
                        readiness = try starter.startUnit(
                            systemdRun: systemdRun, account: full, session: peer.session, location: location,
                            stateFromDoor: prepared != nil, timeoutMilliseconds: remaining(deadline))
                        // The unit inherits nothing of the door's: its state file goes over the
                        // hand-off socket, before any connection (the daemon serves none until then).
                        if let prepared,
                            !HandoffClient.sendStateFile(
                                prepared.copy, handoffPath: location.handoffSocket, expectedUID: full.uid,
                                timeoutMilliseconds: remaining(deadline))
                        {
                            log.warning(
                                "the session daemon at \(location.socket) did not take its state file; it makes its own"
                            )
                        }
                    } else {
                        readiness = try starter.start(
                            account: full, session: peer.session, location: location, stateFile: prepared?.copy,
                            timeoutMilliseconds: remaining(deadline))
                    }
                } catch {
                    // A daemon that came up meanwhile (ccachectl in the session) makes a start fail
                    // ("already answers"): it takes the connection all the same.
                    if try deliver(fd, to: location, account: account, log: log, deadline: deadline) { return true }
                    throw error
                }
                log.info("started the session daemon at \(location.socket) for \(peer.session) (\(readiness))")
                // EXISTS: a daemon came up on its own; it may take a moment to bind its hand-off socket.
                for attempt in 0..<20 {
                    if try deliver(fd, to: location, account: account, log: log, deadline: deadline) { return true }
                    guard Int64(MonotonicClock.milliseconds()) < deadline else { break }
                    usleep(UInt32(min(100_000, 5_000 * (attempt + 1))))
                }
                return false
            }
            if delivered == true { remember() }
            if delivered != true {
                log.warning("closing a connection: no daemon took it at \(location.handoffSocket) in time")
                dropped.add(1, ordering: .relaxed)
            }
        } catch {
            log.error("closing a connection: \(error)")
            dropped.add(1, ordering: .relaxed)
        }
    }

    /// One hand-off attempt. True when the daemon took the connection (or refused it: then it is
    /// closed, which is its answer); false when no daemon is there.
    private func deliver(
        _ fd: Int32, to location: SessionDaemonLocation, account: UserAccount, log: Logger, deadline: Int64
    )
        throws(DoorError) -> Bool
    {
        switch handoffs.handOff(
            client: fd, handoffPath: location.handoffSocket, expectedUID: account.uid,
            timeoutMilliseconds: remaining(deadline))
        {
        case .accepted:
            handedOff.add(1, ordering: .relaxed)
            log.debug("handed off to \(location.socket)")
            return true
        case .refused:
            log.notice("the session daemon at \(location.socket) refused the connection (its --max-connections?)")
            dropped.add(1, ordering: .relaxed)
            return true
        case .noDaemon:
            return false
        case .impostor(let uid):
            throw .unsafeDirectory(
                path: location.handoffSocket,
                problem: "it is owned or served by uid \(uid), not by the session's user (uid \(account.uid))")
        case .failed(let error):
            throw error
        }
    }

    /// After a door restart: asks a running daemon the door holds no state file for (once per
    /// session) for a descriptor of its state file, and keeps it (``StateFiles/adopt(_:for:)``), so
    /// that a crash of a daemon started by an earlier door loses nothing either.
    private func recoverStateFile(
        of key: StartGate.Key, lifetime: DaemonLifetime?, at location: SessionDaemonLocation, account: UserAccount,
        log: Logger, deadline: Int64
    ) {
        guard stateFiles.shouldAsk(for: key) else { return }
        switch HandoffClient.requestStateFile(
            handoffPath: location.handoffSocket, expectedUID: account.uid,
            timeoutMilliseconds: min(1000, remaining(deadline)))
        {
        case .file(let received):
            if stateFiles.adopt(received, for: key, lifetime: lifetime) {
                log.info("holding the state file of the running session daemon at \(location.socket)")
            } else {
                log.warning("the session daemon at \(location.socket) sent a state file the door does not keep")
            }
        case .none:
            log.debug("the session daemon at \(location.socket) keeps no state file")
        case .failed:
            // Asked again at the next hand-off.
            stateFiles.forgetAsked(key)
            log.notice("the session daemon at \(location.socket) did not answer for its state file; asking again later")
        }
    }

    /// Counts a daemon about to be started for `uid` against ``DoorConfiguration/maximumDaemonsPerUser``.
    /// Daemons that ended (their hand-off socket no longer answers) no longer count.
    private func reserveDaemon(uid: UInt32, key: String, handoff: String) throws(DoorError) {
        let limit = configuration.maximumDaemonsPerUser
        let full = started.withLock { table -> Bool in
            var mine = table[uid, default: [:]]
            mine[key] = nil
            if mine.count >= limit { mine = mine.filter { Self.isSocket($0.value, of: uid) } }
            guard mine.count < limit else {
                table[uid] = mine
                return true
            }
            mine[key] = handoff
            table[uid] = mine
            return false
        }
        if full { throw .tooManyDaemons(uid: uid, limit: limit) }
    }

    /// Whether a daemon's hand-off socket is still there: a daemon removes it when it ends. (Not a
    /// connect: root never connects into a user's directory just to count.)
    private static func isSocket(_ path: String, of uid: UInt32) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK && info.st_uid == uid
    }

    private func remaining(_ deadline: Int64) -> Int32 {
        Int32(clamping: max(1, deadline - Int64(MonotonicClock.milliseconds())))
    }

    /// Connections handed to a daemon so far.
    package var handedOffCount: Int { handedOff.load(ordering: .relaxed) }
    /// Connections closed without a hand-off (peer gone, limits, errors).
    package var droppedCount: Int { dropped.load(ordering: .relaxed) }
}
