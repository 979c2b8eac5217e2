import CredentialStore
import KCM
import Logging
import SecureMemory
import Synchronization

/// One connection's protocol state, with no I/O: the bytes a peer sent go in, whole reply frames
/// come out. It owns the frame decoder, the reply buffer, the request-timeout clock and the wipes;
/// the daemon's event loop (``ServedConnections``) and ``ConnectionLoop`` read and send around it,
/// and the fuzz target and the dispatcher tests drive it directly.
///
/// For each frame it decides, in this order and before taking the store's lock: an unauthorised
/// peer is refused (its bodies were never buffered: its decoder accepts none), an oversized body
/// is refused, the body is decoded, an unsupported opcode is refused. Only a decoded request takes
/// the lock, for as long as the store needs to apply it; the reply is encoded after.
public struct ConnectionSession: Sendable {
    public let peer: PeerCredentials
    public let isAuthorized: Bool
    let state: DaemonState
    private let logger: Logger
    private var decoder: KCMFrameDecoder
    private var reply = KCMReplyWriter()
    /// When the request under way started to arrive, if one is under way.
    private var frameStarted: UInt64?
    /// A complete frame set aside by ``receiveWithoutWaiting`` for the thread that may wait.
    private var waiting: KCMFrameDecoder.Frame?
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
        while let frame = waiting.take() ?? decoder.nextFrame() {
            if !mayWait, isAuthorized, Self.waits(frame) {
                waiting = frame
                return .needsThread
            }
            guard let (opcode, result) = answer(frame, waitForChange: waitForChange) else {
                logger.debug("watcher left while waiting")
                return .close
            }
            log(opcode: opcode, result: result)
            reply.reset()
            var frame = encode(result)
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
            if case .success(.stopping) = result { state.requestStop(.stopAsked) }
            if case .success(.attachedSessions(0)) = result, opcode == KCMOpcode.detachSession.rawValue {
                state.requestStop(.lastSessionDetached)
            }
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

    /// Whether answering `frame` may wait: CCACHED_WATCH waits for a change, CCACHED_RENEW for
    /// the KDC.
    private static func waits(_ frame: KCMFrameDecoder.Frame) -> Bool {
        guard case .request(let body) = frame, body.count >= 4 else { return false }
        let opcode = UInt16(body[2]) << 8 | UInt16(body[3])
        return opcode == KCMOpcode.watch.rawValue || opcode == KCMOpcode.renew.rawValue
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

    /// Bytes of a request buffered and not yet answered.
    var bufferedByteCount: Int { decoder.bufferedCount }

    /// Zeroes whatever this connection still holds: a half-received request, the reply buffer.
    public mutating func wipe() {
        if case .request(let body) = waiting.take() { body.wipeStorage() }
        unsent.take()?.head.wipeStorage()
        decoder.wipe()
        reply.wipe()
    }

    /// The reply to one frame, and the opcode for the log when the header was readable.
    /// nil when the peer left while its request waited.
    private func answer(
        _ frame: KCMFrameDecoder.Frame, waitForChange: (Int32?, Int32) -> Wake
    ) -> (UInt16?, Result<KCMReply, RequestFailure>)? {
        let body: [UInt8]
        switch frame {
        case .oversized(let length):
            guard isAuthorized else { return (nil, .failure(.unauthorized(uid: peer.uid))) }
            state.oversizedRequests.add(1, ordering: .relaxed)
            return (nil, .failure(.oversized(length: length, limit: state.configuration.maximumRequestLength)))
        case .request(let complete):
            body = complete
        }
        // The stored credential is a copy in secure memory; the request's bytes go once answered.
        defer { body.wipeStorage() }
        let opcode: UInt16? = body.count >= 4 ? UInt16(body[2]) << 8 | UInt16(body[3]) : nil
        guard isAuthorized else { return (opcode, .failure(.unauthorized(uid: peer.uid))) }
        state.noteRequest(length: body.count)
        let request: KCMRequest
        do {
            request = try KCMRequest(decoding: body)
        } catch {
            return (opcode, .failure(.malformed(error)))
        }
        switch request {
        case .unsupported(let raw): return (opcode, .failure(.unsupportedOpcode(raw)))
        case .attachSession: return (opcode, .success(.attachedSessions(UInt32(clamping: state.attachSession()))))
        case .detachSession: return (opcode, .success(.attachedSessions(UInt32(clamping: state.detachSession()))))
        default: break
        }
        let state = self.state
        // These two wait (for a change, for the renewal worker) with no lock held.
        if case .watch(let watch) = request {
            return awaitChange(watch, waitForChange: waitForChange).map { (opcode, .success(.watch($0))) }
        }
        if case .renew(let renew) = request {
            do throws(RequestFailure) {
                return (opcode, .success(.renew(try state.renewal.renewNow(renew, store: state.store))))
            } catch {
                return (opcode, .failure(error))
            }
        }
        let (result, changed) = state.store.withLock { store -> (Result<KCMReply, RequestFailure>, Bool) in
            let counter = store.journal.counter
            do throws(RequestFailure) {
                let reply = try RequestDispatcher.perform(
                    request, store: store, status: state.status(of:), renewalState: state.renewal.state(of:),
                    applied: state.recordApplied)
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
            return (opcode, .failure(.replyTooLargeForMIT(length: 4 + payload.encodedLength)))
        }
        return (opcode, result)
    }

    private func log(opcode: UInt16?, result: Result<KCMReply, RequestFailure>) {
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
