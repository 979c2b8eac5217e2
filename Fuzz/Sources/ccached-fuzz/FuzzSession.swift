import CCacheDaemon
import CredentialStore
import KCM
import Logging
import StoreState
import Synchronization
import SystemCalls

#if canImport(Glibc)
    import Glibc
#endif

/// One input played through the daemon's own ``ConnectionSession``: two of them share one
/// ``DaemonState`` (one store, one set of counters) for the whole input — the owner's, which is
/// served, and a stranger's, which is refused — and the plan hands each frame of the stream to one
/// of them, cut into reads. Every reply is checked as it is sent, under the store's lock, against
/// what ``FuzzInvariants`` demands; now and then the store is purged and the purge checked.
final class FuzzSession {
    /// Small limits, so that inputs of a few kilobytes reach every refusal.
    static let limits = CredentialStoreLimits(
        maximumCaches: 8, maximumCredentialsPerCache: 16, maximumCredentialBytes: 16 << 10)
    /// Frames answered per input at most, so that no input runs long.
    static let maximumFrames = 512
    static let ownerUID: UInt32 = 1000
    static let strangerUID: UInt32 = 4242
    /// `CCACHED_FUZZ_TRACE=1` prints each frame's outcome, and the daemon's own log lines, to stderr
    /// (to see what a seed or a crashing input does; never set while fuzzing).
    static let tracing = getenv("CCACHED_FUZZ_TRACE") != nil

    /// A frame sent in the run being fed, and what its reply must be.
    private struct Pending {
        /// The frame's number in the stream, from 0.
        var index: Int
        /// Where its last byte ends in the run's bytes.
        var end: Int
        var expectation: FrameExpectation
    }

    private var plan: FuzzPlan
    private let stream: [UInt8]
    private let map: FrameMap
    private let state: DaemonState
    private var owner: ConnectionSession
    /// Whether a session moved from the loop's form to a thread's (for good, as in the daemon).
    private var ownerOnThread = false
    private var strangerOnThread = false
    private var stranger: ConnectionSession
    /// The frames of the run being fed, the run's bytes fed so far and the replies it has had.
    private var pending: [Pending] = []
    private var fed = 0
    private var replies = 0
    /// The store and counters as they are between frames: taken before the first and after each reply.
    private var before: StoreSnapshot
    private var countersBefore: DaemonCounters
    /// The state journal the daemon keeps: checked against the store after the input.
    private let journal: StateJournal

    static func run(_ input: UnsafeBufferPointer<UInt8>) {
        let threadsBefore = threadCount()
        FuzzSession(input).play()
        // Nothing an input starts may outlive it: a thread left waiting is memory that no leak
        // check reports (it still references what it holds), and it adds up over a long run. A
        // stopped worker may take a moment to be gone: the kernel lists a joined thread for a few
        // microseconds more, and shutdown() detaches a worker still finishing its last job.
        var threadsAfter = threadCount()
        var waited = 0
        while threadsAfter > threadsBefore && waited < 2_000 {
            usleep(500)
            waited += 1
            threadsAfter = threadCount()
        }
        if threadsAfter != threadsBefore {
            FuzzInvariants.fail(
                "the input left \(threadsAfter - threadsBefore) thread(s) running "
                    + "(\(threadsBefore) before, \(threadsAfter) a second after)")
        }
    }

    /// This process's threads now (`Threads:` of /proc/self/status).
    private static func threadCount() -> Int {
        guard let file = fopen("/proc/self/status", "r") else { FuzzInvariants.fail("cannot open /proc/self/status") }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            if strncmp(line, "Threads:", 8) == 0 {
                return line.withUnsafeBufferPointer { Int(atoi($0.baseAddress! + 8)) }
            }
        }
        FuzzInvariants.fail("no Threads: line in /proc/self/status")
    }

    private init(_ input: UnsafeBufferPointer<UInt8>) {
        let split = min(input.count, FuzzPlan.headerLength)
        plan = FuzzPlan(header: UnsafeBufferPointer(rebasing: input[..<split]))
        stream = Array(input[split...])
        map = FrameMap(stream: stream, limit: plan.maximumRequestLength, maximumFrames: Self.maximumFrames)
        var configuration = DaemonConfiguration(
            socketPath: "/nonexistent/ccached-fuzz", ownerUID: Self.ownerUID,
            maximumRequestLength: plan.maximumRequestLength)
        configuration.storeLimits = Self.limits
        let logger = Self.logger()
        // The renewal worker's lines too: a fuzzed ticket with future times reaches libkrb5, which
        // refuses its bytes, and each failure is a warning nobody fuzzing needs on stderr.
        state = DaemonState(configuration: configuration, logger: logger)
        owner = ConnectionSession(
            peer: PeerCredentials(pid: 2, uid: Self.ownerUID, gid: 100), state: state, logger: logger)
        stranger = ConnectionSession(
            peer: PeerCredentials(pid: 3, uid: Self.strangerUID, gid: 100), state: state, logger: logger)
        guard owner.isAuthorized, !stranger.isAuthorized else {
            FuzzInvariants.fail(
                "the owner's session is authorised: \(owner.isAuthorized), the stranger's: \(stranger.isAuthorized)")
        }
        before = state.store.withLock { StoreSnapshot($0) }
        countersBefore = DaemonCounters(state)
        journal = StateFileFuzz.attach(to: state)
    }

    /// Silent while fuzzing (a no-op handler builds no message); the daemon's debug lines when tracing.
    private static func logger() -> Logger {
        guard tracing else { return Logger(label: "ccached-fuzz") { _ in SwiftLogNoOpLogHandler() } }
        var logger = Logger(label: "ccached-fuzz") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .debug
        return logger
    }

    private func play() {
        // An unfinished frame at the end is sent too (and must get no reply): item `entries.count`.
        let items = map.entries.count + (map.tail.isEmpty ? 0 : 1)
        let sentByOwner = (0..<items).map { plan.isAuthorized(frame: $0) }
        var start = 0
        while start < items {
            var end = start + 1
            if plan.spansFrames {
                while end < items && sentByOwner[end] == sentByOwner[start] { end += 1 }
            }
            feed(items: start..<end, byOwner: sentByOwner[start])
            start = end
        }
        owner.wipe()
        stranger.wipe()
        // As the daemon does when it exits: a CCACHED_RENEW started the renewal worker, whose thread
        // would otherwise wait for work for the rest of the run (one more thread per such input).
        state.renewal.shutdown()
        StateFileFuzz.check(journal, against: state, input: stream)
    }

    /// Sends frames `items` (consecutive, one peer's) to that peer's session as one stream cut into
    /// the plan's reads, and checks that each frame is answered exactly once, once its last byte is in.
    private func feed(items: Range<Int>, byOwner: Bool) {
        var bytes: [UInt8] = []
        pending = []
        for item in items {
            guard item < map.entries.count else {
                bytes.append(contentsOf: stream[map.tail])
                continue
            }
            let entry = map.entries[item]
            let expectation: FrameExpectation
            switch entry.frame {
            case .oversized(let length):
                bytes.append(contentsOf: stream[entry.range])
                expectation = byOwner ? .oversized(length: length) : .refused
            case .request(let body):
                // Rewritten against the store as it is now (for a run, before its first frame).
                let sent = state.store.withLock { FuzzUUIDs.resolvingIndexes(in: body, store: $0) }
                bytes.append(contentsOf: stream[entry.range.prefix(4)])
                bytes.append(contentsOf: sent)
                expectation = byOwner ? FrameExpectation(ownerBody: sent) : .refused
            }
            pending.append(Pending(index: item, end: bytes.count, expectation: expectation))
        }
        var session = byOwner ? owner : stranger
        fed = 0
        replies = 0
        // Frames whose last byte has been sent (counted on, not recounted: a read can be one byte).
        var due = 0
        while fed < bytes.count {
            let size = plan.nextReadSize(remaining: bytes.count - fed)
            let read = bytes[fed..<fed + size]
            fed += size
            let open: Bool
            if plan.servesOnLoop, !(byOwner ? ownerOnThread : strangerOnThread) {
                let progress = session.receiveWithoutWaiting(read, now: 0) { frame in
                    guard self.check(reply: frame) else { return .failed }
                    return self.plan.socketFills() ? .queued : .sent
                }
                switch progress {
                case .open: open = true
                case .close: open = false
                case .needsThread:
                    // As the daemon does: a thread takes the connection over and answers what is left.
                    if byOwner { ownerOnThread = true } else { strangerOnThread = true }
                    open = session.receive([], now: 0) { self.check(reply: $0) }
                }
            } else {
                open = session.receive(read, now: 0) { self.check(reply: $0) }
            }
            guard open else { FuzzInvariants.fail("the session closed a connection whose every reply was sent") }
            while due < pending.count && pending[due].end <= fed { due += 1 }
            guard replies == due else {
                FuzzInvariants.fail(
                    "\(replies) replies after \(fed) bytes of a run that completes \(due) frames by then")
            }
        }
        guard replies == pending.count else { FuzzInvariants.fail("\(replies) replies to \(pending.count) frames") }
        if byOwner { owner = session } else { stranger = session }
    }

    /// The session's `send`: checks the reply (valid only during this call) against the frame it
    /// answers, then purges if the plan says so.
    private func check(reply: [UInt8]) -> Bool {
        guard replies < pending.count else { FuzzInvariants.fail("a reply with no frame left to answer") }
        let frame = pending[replies]
        guard frame.end <= fed else {
            FuzzInvariants.fail("frame \(frame.index) answered after \(fed) bytes, before its last (\(frame.end))")
        }
        replies += 1
        state.store.withLock { store in
            let status = FuzzInvariants.checkReply(
                reply, expectation: frame.expectation, before: before, countersBefore: countersBefore, store: store,
                state: state)
            if Self.tracing { trace(frame.index, "\(frame.expectation) -> \(status)") }
            FuzzInvariants.checkStore(store, limits: Self.limits)
            if let (now, grace) = plan.purge(afterFrame: frame.index) {
                let expectation = PurgeExpectation(store, now: now, grace: grace)
                let purged = store.purge(now: now, grace: grace)
                // As the daemon does: a purge is saved whole.
                if purged.credentials > 0 || purged.caches > 0 { state.saveState(of: store) }
                expectation.check(after: store, result: purged)
                if Self.tracing { trace(frame.index, "purge now=\(now) grace=\(grace): \(purged)") }
                FuzzInvariants.checkStore(store, limits: Self.limits)
            }
            before = StoreSnapshot(store)
        }
        countersBefore = DaemonCounters(state)
        return true
    }

    private func trace(_ index: Int, _ text: String) {
        let line = "frame \(index): \(text)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }
}
