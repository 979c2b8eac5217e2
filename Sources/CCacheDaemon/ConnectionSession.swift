import CredentialStore
import KCM
import Logging
import SecureMemory
import Synchronization
import SystemCalls

/// One connection's protocol state, with no I/O: the bytes a peer sent go in, whole reply frames
/// come out. It owns the frame decoder, the reply buffer, the request-timeout clock and the wipes;
/// the daemon's event loop (``ServedConnections``) and ``ConnectionLoop`` read and send around it,
/// and the fuzz target and the dispatcher tests drive it directly.
///
/// Each frame is read once (``read(_:)``), in this order and before the store's lock is taken: an
/// unauthorised peer is refused (its bodies were never buffered: its decoder accepts none), an
/// oversized body is refused, the body is decoded and its bytes zeroed, and the request is routed
/// (``RequestRoute``: an unsupported opcode is refused there). A request that waits is set aside,
/// decoded, for a thread; only a store operation takes the lock, for as long as the store needs to
/// apply it; the reply is encoded after.
public struct ConnectionSession: Sendable {
    public let peer: PeerCredentials
    public let isAuthorized: Bool
    let state: DaemonState
    private let logger: Logger
    private var decoder: KCMFrameDecoder
    private var reply = KCMReplyWriter()
    /// When the request under way started to arrive, if one is under way.
    private var frameStarted: UInt64?
    /// A request read and routed by ``receiveWithoutWaiting``, set aside for the thread that may wait.
    private var waiting: ReadFrame?
    /// A reply ``receiveWithoutWaiting`` left for the thread to send (a gathered credential list).
    private var unsent: ReplyFrame?

    public init(peer: PeerCredentials, state: DaemonState, logger: Logger) {
        self.peer = peer
        self.state = state
        self.logger = logger
        let configuration = state.configuration
        isAuthorized = PeerAuthorizer(ownerUID: configuration.ownerUID, allowsRoot: configuration.allowsRoot)
            .isAuthorized(peer)
        // A refused peer's bodies are discarded as they arrive, never buffered.
        decoder = KCMFrameDecoder(maximumLength: isAuthorized ? configuration.maximumRequestLength : 0)
    }

    /// Takes bytes read from the peer and answers every frame they complete, calling `send` with
    /// each whole reply frame (zeroed once `send` returns). Returns false when the connection must
    /// close: `send` failed, or a request has been arriving for longer than `--request-timeout`.
    /// `now` is a monotonic time in seconds. A CCACHED_WATCH with nothing to report yet calls
    /// `waitForChange` (see ``Wake``); by default it does not wait (the fuzz target, unit tests).
    /// This is the blocking form, for a connection on a thread of its own; a large credential
    /// list arrives flattened into one array (``ReplyFrame/flattened``).
    public mutating func receive(
        _ bytes: some Collection<UInt8>, now: UInt64, send: ([UInt8]) -> Bool,
        waitForChange: (_ beacon: Int32?, _ milliseconds: Int32) -> Wake = { _, _ in .timedOut }
    ) -> Bool {
        receive(
            bytes, now: now,
            sendFrame: { frame in
                guard !frame.credentials.isEmpty else { return send(frame.head) }
                let whole = frame.flattened
                defer { whole.wipeStorage() }
                return send(whole)
            }, waitForChange: waitForChange)
    }

    /// `receive` with each reply as a ``ReplyFrame``, for ``ConnectionLoop``, which sends a large
    /// credential list gathered from the store. First sends a reply the event loop left unsent.
    public mutating func receive(
        _ bytes: some Collection<UInt8>, now: UInt64, sendFrame: (ReplyFrame) -> Bool,
        waitForChange: (_ beacon: Int32?, _ milliseconds: Int32) -> Wake
    ) -> Bool {
        if let frame = unsent.take() {
            let sent = sendFrame(frame)
            frame.head.wipeStorage()
            guard sent else { return false }
        }
        decoder.append(bytes)
        let progress = answerFrames(
            now: now, mayWait: true, send: { sendFrame($0) ? .sent : .failed }, waitForChange: waitForChange)
        return progress == .open
    }

    /// What a send that must not wait did with a reply frame (``receiveWithoutWaiting``).
    public enum QuickSend: Sendable {
        /// All of it went.
        case sent
        /// The socket was full: the caller kept the rest, to be sent by a thread that may wait.
        case queued
        /// The peer is gone.
        case failed
    }

    /// How ``receiveWithoutWaiting`` left the connection.
    public enum QuickProgress: Sendable, Equatable {
        /// Every complete frame is answered; wait for more bytes.
        case open
        /// Close the connection.
        case close
        /// Serve it on a thread of its own from here on (``ConnectionLoop``): the next frame waits
        /// for something (a CCACHED_WATCH, a CCACHED_RENEW; kept, answered there), a reply did not
        /// fit in the socket, or a large credential list is to be gathered from the store (kept,
        /// sent there). Frames after it are answered there, in order.
        case needsThread
    }

    /// `receive` for the daemon's event loop, which must never wait on one connection: answers
    /// what can be answered at once and says when the connection needs a thread instead.
    public mutating func receiveWithoutWaiting(
        _ bytes: some Collection<UInt8>, now: UInt64, send: ([UInt8]) -> QuickSend
    ) -> QuickProgress {
        decoder.append(bytes)
        return answerFrames(
            now: now, mayWait: false, send: { send($0.head) }, waitForChange: { _, _ in .timedOut })
    }

    private mutating func answerFrames(
        now: UInt64, mayWait: Bool, send: (ReplyFrame) -> QuickSend, waitForChange: (Int32?, Int32) -> Wake
    ) -> QuickProgress {
        while let next = waiting.take() ?? decoder.nextFrame().map({ read($0) }) {
            if !mayWait, case .request(_, .waiting) = next {
                waiting = next
                return .needsThread
            }
            guard let answer = answer(next, waitForChange: waitForChange) else {
                logger.debug("watcher left while waiting")
                return .close
            }
            log(answer)
            reply.reset()
            var frame = encode(answer.result)
            // The event loop never waits on a send this large: the thread sends it, gathered.
            let sent: QuickSend
            if !mayWait, !frame.credentials.isEmpty {
                unsent = frame.detached()
                sent = .queued
            } else {
                sent = send(frame)
            }
            frame = ReplyFrame(head: [])
            // Zeroed now rather than at the next request: an idle connection keeps no copy.
            reply.reset()
            // Asked to stop, or the last login session detached: stop once the answer is out.
            if let reason = answer.stopReason { state.requestStop(reason) }
            switch sent {
            case .sent: continue
            case .queued: return .needsThread
            case .failed:
                logger.debug("connection lost while replying")
                return .close
            }
        }
        if !decoder.isMidFrame {
            frameStarted = nil
        } else if frameStarted == nil {
            frameStarted = now
        } else if hasStalled(now: now) {
            return .close
        }
        return .open
    }

    /// The reply frame for `result`, in the reply buffer; a credential list over
    /// ``ReplyFrame/gatherThreshold`` keeps its credentials out of it, to be sent gathered.
    private mutating func encode(_ result: Result<KCMReply, RequestFailure>) -> ReplyFrame {
        switch result {
        case .success(let payload):
            // The length walks every credential: measured once.
            if case .credentialList(let credentials) = payload, case let length = payload.encodedLength,
                length > ReplyFrame.gatherThreshold
            {
                reply.writer.write(UInt32(truncatingIfNeeded: credentials.count))
                reply.finishSuccess(followedBy: length - 4)
                return ReplyFrame(head: reply.bytes, credentials: credentials)
            }
            payload.write(to: &reply.writer)
            reply.finish(status: .success)
        case .failure(let failure):
            reply.finish(status: failure.status)
        }
        return ReplyFrame(head: reply.bytes)
    }

    /// Whether the request under way has been arriving for longer than `--request-timeout`; says
    /// so and counts it when it has. Asked when a read times out with nothing new.
    public func hasStalled(now: UInt64) -> Bool {
        let limit = state.configuration.requestTimeout
        guard limit > 0, let started = frameStarted, now - started >= UInt64(limit) else { return false }
        logger.warning("closing a connection whose request stayed incomplete for \(limit) s (--request-timeout)")
        state.stalledRequests.add(1, ordering: .relaxed)
        return true
    }

    /// Whether the connection is between two requests: nothing of one buffered, nothing waiting to
    /// be served or sent.
    var isBetweenRequests: Bool { frameStarted == nil && decoder.bufferedCount == 0 && waiting == nil && unsent == nil }

    /// Bytes of a request buffered and not yet answered.
    var bufferedByteCount: Int { decoder.bufferedCount }

    /// Zeroes whatever this connection still holds: a half-received request, the reply buffer.
    public mutating func wipe() {
        waiting = nil
        unsent.take()?.head.wipeStorage()
        decoder.wipe()
        reply.wipe()
    }

    /// A frame as ``read(_:)`` leaves it: refused before any lock, or a request routed.
    enum ReadFrame: Sendable {
        /// Answered already: the peer is refused, the body is oversized or malformed, or the opcode
        /// is unsupported.
        case refused(Answer)
        /// A decoded request, its opcode word (for the log) and how it is answered.
        case request(opcode: UInt16?, RequestRoute)
    }

    /// The answer to one frame, and what the daemon does once it is sent.
    struct Answer: Sendable {
        /// The opcode the log names the request by: nil when the body was too short to hold one.
        var opcode: UInt16?
        /// The reply's payload, or why there is none.
        var result: Result<KCMReply, RequestFailure>
        /// Set when the daemon stops once this answer is out (CCACHED_STOP, the last CCACHED_DETACH).
        var stopReason: DaemonState.StopReason?

        init(opcode: UInt16?, _ result: Result<KCMReply, RequestFailure>, stopReason: DaemonState.StopReason? = nil) {
            self.opcode = opcode
            self.result = result
            self.stopReason = stopReason
        }
    }

    /// Reads one frame, once: decodes it, zeroes its bytes (the stored credential is a copy in
    /// secure memory) and routes the request. Takes no lock and never waits: the event loop reads.
    private func read(_ frame: KCMFrameDecoder.Frame) -> ReadFrame {
        let body: [UInt8]
        switch frame {
        case .oversized(let length):
            guard isAuthorized else { return .refused(Answer(opcode: nil, .failure(.unauthorized(uid: peer.uid)))) }
            state.oversizedRequests.add(1, ordering: .relaxed)
            let limit = state.configuration.maximumRequestLength
            return .refused(Answer(opcode: nil, .failure(.oversized(length: length, limit: limit))))
        case .request(let complete):
            body = complete
        }
        // A refused peer's decoder buffers nothing: its bodies are empty, there is nothing to read.
        guard isAuthorized else {
            body.wipeStorage()
            return .refused(Answer(opcode: nil, .failure(.unauthorized(uid: peer.uid))))
        }
        state.noteRequest(length: body.count)
        let decoded = KCMDecodedRequest(decoding: body)
        body.wipeStorage()
        do throws(RequestFailure) {
            let request: KCMRequest
            switch decoded.request {
            case .success(let value): request = value
            case .failure(let error): throw .malformed(error)
            }
            return .request(opcode: decoded.opcode, try RequestRoute(request))
        } catch {
            return .refused(Answer(opcode: decoded.opcode, .failure(error)))
        }
    }

    /// The answer to a frame ``read(_:)`` left; nil when the peer left while its request waited.
    private func answer(_ frame: ReadFrame, waitForChange: (Int32?, Int32) -> Wake) -> Answer? {
        let opcode: UInt16?
        let route: RequestRoute
        switch frame {
        case .refused(let answer): return answer
        case .request(let code, let routed): (opcode, route) = (code, routed)
        }
        switch route {
        case .store(let request): return Answer(opcode: opcode, applyToStore(request))
        case .daemon(let operation):
            let reply = RequestDispatcher.perform(operation, daemon: state)
            return Answer(opcode: opcode, .success(reply), stopReason: operation.stopReason(after: reply))
        case .waiting(.watch(let watch)):
            // Waits for a change with no lock held.
            return awaitChange(watch, waitForChange: waitForChange).map { Answer(opcode: opcode, .success(.watch($0))) }
        case .waiting(.renew(let renew)):
            // Waits for the renewal worker with no lock held.
            do throws(RequestFailure) {
                return Answer(opcode: opcode, .success(.renew(try state.renewal.renewNow(renew, store: state.store))))
            } catch {
                return Answer(opcode: opcode, .failure(error))
            }
        }
    }

    /// Applies a store operation under the store's lock, and wakes the watchers when it changed
    /// the collection.
    private func applyToStore(_ request: KCMRequest) -> Result<KCMReply, RequestFailure> {
        let (result, changed) = state.store.withLock { store -> (Result<KCMReply, RequestFailure>, Bool) in
            let counter = store.journal.counter
            do throws(RequestFailure) {
                let reply = try RequestDispatcher.perform(request, store: store, applied: state.recordApplied)
                return (.success(reply), store.journal.counter != counter)
            } catch {
                return (.failure(error), store.journal.counter != counter)
            }
        }
        if changed { state.changes.notify() }
        // Over MIT's reply limit: "not supported" makes MIT list the cache by UUID instead.
        if case .success(let payload) = result, case .credentialList = payload,
            4 + payload.encodedLength > KCMReplyWriter.mitMaximumReplyLength
        {
            return .failure(.replyTooLargeForMIT(length: 4 + payload.encodedLength))
        }
        return result
    }

    private func log(_ answer: Answer) {
        let (opcode, result) = (answer.opcode, answer.result)
        let level: Logger.Level
        switch result {
        case .success: level = .debug
        case .failure(.oversized): level = .warning
        case .failure(let failure): level = failure.isRoutine ? .debug : .notice
        }
        // Nothing is formatted for a line the log level drops: this runs for every request.
        guard logger.logLevel <= level else { return }
        let name = opcode.map { KCMOpcode(rawValue: $0)?.description ?? "opcode \($0)" } ?? "unreadable request"
        switch result {
        case .success:
            logger.log(level: level, "\(name) -> \(KCMStatus.success)")
        case .failure(let failure):
            // Client-chosen names appear in the text; EscapingLogHandler escapes them on the way out.
            let line = "\(name) -> \(failure.status) (\(failure.description))"
            if case .oversized = failure {
                logger.log(level: level, "refused an oversized request: \(line)")
            } else {
                logger.log(level: level, "\(line)")
            }
        }
    }
}
