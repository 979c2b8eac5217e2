import CredentialStore
import Glibc
import KCM
import Logging
import SecureMemory
import StoreState
import Synchronization

/// What every connection of one daemon shares: the store behind its one lock, the counters the
/// daemon keeps outside the store, and the facts CCACHED_STATUS reports.
public final class DaemonState: Sendable {
    public let configuration: DaemonConfiguration
    /// Every cache. A request holds the lock only to apply itself: it is decoded and authorised
    /// before, and its reply encoded after.
    public let store: Mutex<CredentialStore>
    /// Connections being served now.
    public let openConnections = Atomic<Int>(0)
    /// The largest request body accepted, and what each limit enforced here (not in the store)
    /// refused since the start.
    public let largestRequest = Atomic<Int>(0)
    public let oversizedRequests = Atomic<Int>(0)
    public let refusedConnections = Atomic<Int>(0)
    public let stalledRequests = Atomic<Int>(0)
    /// Login sessions attached (CCACHED_ATTACH) and not yet detached: when several PAM sessions share
    /// one daemon, the last one to close wipes it, not the first.
    public let attachedSessions = Atomic<Int>(0)
    /// Wakes the CCACHED_WATCH requests waiting for a change.
    public let changes = ChangeNotifier()
    /// Background renewal, CCACHED_RENEW and CCACHED_RENEWAL_STATE.
    public let renewal: RenewalDuty
    /// The state journal (Docs/state.md), once ``Daemon/run()`` has opened it.
    let stateJournal = StateJournalSlot()
    /// Why a client's request stops the daemon, once one has (a ``StopReason`` raw value, 0 until then).
    private let stopReasonValue = Atomic<UInt8>(0)
    private let onStop: @Sendable () -> Void
    private let startedAt = UInt64(time(nil))
    /// This process's pid, for CCACHED_STATUS and CCACHED_STOP.
    let processID = UInt32(getpid())

    /// `onStop` is called (from a connection's thread) when a client asks the daemon to stop;
    /// `logger` takes the renewal worker's lines.
    public init(
        configuration: DaemonConfiguration, logger: Logger = Logger(label: "ccached"),
        onStop: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.onStop = onStop
        let store = CredentialStore(ownerUID: configuration.ownerUID, limits: configuration.storeLimits)
        store.onEviction = { eviction in logger.notice("\(eviction.logLine)") }
        self.store = Mutex(store)
        renewal = RenewalDuty(configuration: configuration, logger: logger)
        renewal.attach(to: self)
    }

    /// Keeps the store in `journal` from now on (the daemon at start, after restoring; the fuzz
    /// target). Takes the store's lock.
    public func attachStateJournal(_ journal: StateJournal?) {
        store.withLock { _ in stateJournal.journal = journal }
    }

    /// Records a request the store applied (called with the store's lock held).
    func recordApplied(_ request: KCMRequest, _ store: CredentialStore) {
        stateJournal.journal?.record(request, in: store)
    }

    /// Saves the whole store after a change no request made (a renewal, a purge), with its lock held.
    public func saveState(of store: CredentialStore) {
        stateJournal.journal?.saveSnapshot(of: store)
    }

    /// One more login session uses the daemon; returns how many do.
    func attachSession() -> Int {
        attachedSessions.add(1, ordering: .relaxed).newValue
    }

    /// One login session ended; returns how many remain (never below 0: a detach without an attach,
    /// from a session the daemon never counted, is the last one too).
    func detachSession() -> Int {
        while true {
            let current = attachedSessions.load(ordering: .relaxed)
            let next = max(0, current - 1)
            if attachedSessions.compareExchange(expected: current, desired: next, ordering: .relaxed).exchanged {
                return next
            }
        }
    }

    /// Why a client's request stops the daemon.
    public enum StopReason: UInt8, Sendable {
        /// CCACHED_STOP (`ccachectl stop`).
        case stopAsked = 1
        /// CCACHED_DETACH left no login session attached (the last PAM session closed).
        case lastSessionDetached = 2

        /// The daemon's line as it stops for this reason.
        public var logLine: String {
            switch self {
            case .stopAsked: "stopping: a client asked (CCACHED_STOP)"
            case .lastSessionDetached: "stopping: the last login session detached (CCACHED_DETACH)"
            }
        }
    }

    /// Why a client's request stops the daemon, if one has asked.
    public var stopReason: StopReason? { StopReason(rawValue: stopReasonValue.load(ordering: .relaxed)) }

    /// A client's request stops the daemon, and the client has its answer.
    func requestStop(_ reason: StopReason) {
        stopReasonValue.store(reason.rawValue, ordering: .relaxed)
        onStop()
    }

    /// Notes the size of an accepted request body.
    func noteRequest(length: Int) {
        // Read first: the shared cache line is written only when a record is set.
        if length > largestRequest.load(ordering: .relaxed) { largestRequest.max(length, ordering: .relaxed) }
    }

    /// The CCACHED_STATUS payload, from the store (whose lock the caller holds) and the daemon's own
    /// counters. A new status field is read here.
    func status(of store: CredentialStore) -> KCMDaemonStatus {
        let memory = SecureArena.shared.statistics
        let limits = KCMDaemonStatus.Limits(
            maximumRequestBytes: configuration.maximumRequestLength,
            largestRequestBytes: UInt32(clamping: largestRequest.load(ordering: .relaxed)),
            oversizedRequests: UInt64(clamping: oversizedRequests.load(ordering: .relaxed)),
            maximumCaches: UInt32(clamping: store.limits.maximumCaches),
            cacheRefusals: UInt64(clamping: store.refusals.caches),
            maximumCredentialsPerCache: UInt32(clamping: store.limits.maximumCredentialsPerCache),
            largestCacheCredentials: UInt32(clamping: store.largestCacheCredentialCount),
            credentialsPerCacheRefusals: UInt64(clamping: store.refusals.credentialsPerCache),
            maximumCredentialBytes: UInt64(clamping: store.limits.maximumCredentialBytes),
            credentialBytesRefusals: UInt64(clamping: store.refusals.credentialBytes),
            maximumConnections: UInt32(clamping: configuration.maximumConnections),
            connectionRefusals: UInt64(clamping: refusedConnections.load(ordering: .relaxed)),
            requestTimeout: configuration.requestTimeout,
            stalledRequests: UInt64(clamping: stalledRequests.load(ordering: .relaxed)),
            credentialMemoryBytes: UInt64(clamping: memory.mappedBytes),
            lockedMemoryBytes: UInt64(clamping: memory.lockedBytes),
            // Root's CAP_IPC_LOCK locks past the limit.
            memlockLimit: geteuid() == 0 ? .max : SecureArena.memlockLimit ?? .max,
            unlockedMappings: UInt64(clamping: memory.lockFailures))
        return KCMDaemonStatus(
            pid: processID, ownerUID: store.ownerUID, startedAt: startedAt,
            caches: UInt32(clamping: store.cacheCount), credentials: UInt32(clamping: store.credentialCount),
            credentialBytes: UInt64(store.credentialBytes),
            connections: UInt32(clamping: openConnections.load(ordering: .relaxed)),
            idleTimeout: configuration.idleTimeout, limits: limits,
            attachedSessions: UInt32(clamping: attachedSessions.load(ordering: .relaxed)),
            memoryKind: memory.backing == .secret ? .secret : .anonymous,
            keepsStateFile: stateJournal.journal.map { $0.failure == nil } ?? false)
    }
}

/// Where ``DaemonState`` keeps its ``StateJournal``: set once by the main thread before any
/// connection is served, then read and used only with the store's lock held.
final class StateJournalSlot: @unchecked Sendable {
    var journal: StateJournal?
}
