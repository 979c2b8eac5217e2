import CCacheDaemon
import CredentialStore
import KCM

#if canImport(Glibc)
    import Glibc
#endif

/// One input played the way a connection thread of the daemon plays a client's bytes: read by read
/// into a ``KCMFrameDecoder``, every complete frame answered by ``RequestDispatcher`` against one
/// ``CredentialStore`` that lives for the whole input, with a purge now and then — and after every
/// step the invariants of ``FuzzInvariants`` checked.
struct FuzzSession {
    /// Small limits, so that inputs of a few kilobytes reach every refusal.
    static let limits = CredentialStoreLimits(
        maximumCaches: 8, maximumCredentialsPerCache: 16, maximumCredentialBytes: 16 << 10)
    /// Frames answered per input at most, so that no input runs long.
    static let maximumFrames = 512
    static let server = ServerFacts(pid: 4242, startedAt: 1_795_305_644, connections: 1, idleTimeout: 0)
    /// `CCACHED_FUZZ_TRACE=1` prints each frame's outcome to stderr (to see what a seed or a crashing
    /// input does; never set while fuzzing).
    static let tracing = getenv("CCACHED_FUZZ_TRACE") != nil

    private var plan: FuzzPlan
    /// An array, so that reads reach the decoder as `ArraySlice`s, as the daemon's do.
    private let stream: [UInt8]
    private let store = CredentialStore(ownerUID: 0, limits: limits)
    private var decoder: KCMFrameDecoder
    /// The same stream decoded in one piece: every cut must give the same frames.
    private var reference: KCMFrameDecoder
    private var reply = KCMReplyWriter()
    private var framesAnswered = 0
    /// Stream bytes fed to the decoder, and those accounted for by the frames it returned.
    private var fed = 0
    private var framed = 0

    static func run(_ input: UnsafeBufferPointer<UInt8>) {
        var session = FuzzSession(input)
        session.play()
    }

    private init(_ input: UnsafeBufferPointer<UInt8>) {
        let split = min(input.count, FuzzPlan.headerLength)
        plan = FuzzPlan(header: UnsafeBufferPointer(rebasing: input[..<split]))
        stream = Array(input[split...])
        decoder = KCMFrameDecoder(maximumLength: plan.maximumRequestLength)
        reference = KCMFrameDecoder(maximumLength: plan.maximumRequestLength)
        reference.append(stream)
    }

    private mutating func play() {
        var offset = 0
        while offset < stream.count && framesAnswered < Self.maximumFrames {
            let size = plan.nextReadSize(remaining: stream.count - offset)
            decoder.append(stream[offset..<offset + size])
            offset += size
            fed += size
            while framesAnswered < Self.maximumFrames, let frame = decoder.nextFrame() {
                guard let expected = reference.nextFrame(), expected == frame else {
                    FuzzInvariants.fail("frame \(framesAnswered) differs from the one-piece decoding of the stream")
                }
                answer(frame)
            }
            if framesAnswered < Self.maximumFrames {
                FuzzInvariants.checkDrainedDecoder(decoder, fed: fed, framed: framed)
            }
        }
        if framesAnswered < Self.maximumFrames, reference.nextFrame() != nil {
            FuzzInvariants.fail("the one-piece decoding of the stream has a frame the cut stream never produced")
        }
    }

    private mutating func answer(_ frame: KCMFrameDecoder.Frame) {
        let index = framesAnswered
        framesAnswered += 1
        if plan.freshReplyWriter { reply = KCMReplyWriter() }
        reply.reset()
        switch frame {
        case .request(let received):
            framed += 4 + received.count
            guard received.count <= plan.maximumRequestLength else {
                FuzzInvariants.fail(
                    "a request of \(received.count) bytes passed a limit of \(plan.maximumRequestLength)")
            }
            let body = FuzzUUIDs.resolvingIndexes(in: received, store: store)
            let authorized = plan.isAuthorized(frame: index)
            let before = StoreSnapshot(store)
            let outcome = RequestDispatcher.respond(
                to: body, authorized: authorized, store: store, server: Self.server, reply: &reply)
            if Self.tracing { trace(index, "\(authorized ? "" : "unauthorised ")\(outcome)") }
            FuzzInvariants.checkReply(
                reply.bytes, outcome: outcome, authorized: authorized, before: before, store: store)
        case .oversized(let length):
            framed += 4 + Int(length)
            guard length > plan.maximumRequestLength else {
                FuzzInvariants.fail(
                    "a request of \(length) bytes was refused under a limit of \(plan.maximumRequestLength)")
            }
            let before = StoreSnapshot(store)
            let outcome = RequestDispatcher.respondToOversized(
                length: length, limit: plan.maximumRequestLength, reply: &reply)
            if Self.tracing { trace(index, "oversized \(length): \(outcome)") }
            FuzzInvariants.checkOversizedReply(reply.bytes, outcome: outcome, before: before, store: store)
        }
        FuzzInvariants.checkStore(store, limits: Self.limits)
        if let (now, grace) = plan.purge(afterFrame: index) {
            let expectation = PurgeExpectation(store, now: now, grace: grace)
            let purged = store.purge(now: now, grace: grace)
            expectation.check(after: store, result: purged)
            if Self.tracing { trace(index, "purge now=\(now) grace=\(grace): \(purged)") }
            FuzzInvariants.checkStore(store, limits: Self.limits)
        }
    }

    private func trace(_ index: Int, _ text: String) {
        let line = "frame \(index): \(text)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }
}
