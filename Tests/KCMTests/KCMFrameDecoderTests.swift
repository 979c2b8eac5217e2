import KCM
import TestSupport
import Testing

/// What a decoder produced while being fed: each frame with the number of stream bytes fed when it
/// came out, and the largest backlog it held after draining.
struct FeedResult {
    var frames: [KCMFrameDecoder.Frame] = []
    var fedWhenProduced: [Int] = []
    var largestBacklog = 0
    var decoder: KCMFrameDecoder
}

/// Feeds `stream` cut at `cuts` (ascending offsets), draining every complete frame after each piece.
func feed(_ stream: [UInt8], cuts: [Int], maximumLength: UInt32) -> FeedResult {
    var result = FeedResult(decoder: KCMFrameDecoder(maximumLength: maximumLength))
    var start = 0
    for end in cuts + [stream.count] {
        result.decoder.append(stream[start..<end])
        while let frame = result.decoder.nextFrame() {
            result.frames.append(frame)
            result.fedWhenProduced.append(end)
        }
        result.largestBacklog = max(result.largestBacklog, result.decoder.bufferedCount)
        start = end
    }
    return result
}

/// A frame on the wire: the length word and the body.
func framed(_ body: [UInt8]) -> [UInt8] { be32(UInt32(body.count)) + body }

/// ``KCMFrameDecoder`` yields the same frames however the stream is cut: at every single split point,
/// byte by byte, all at once and in random pieces; it discards oversized frames without buffering
/// them and reports them only once their whole body has gone by.
@Suite("KCMFrameDecoder")
struct KCMFrameDecoderTests {
    static let bodies: [[UInt8]] = [
        [],
        KCMRequest.getDefaultCache.encodedBody(),
        KCMRequest.replace(
            name: "1000", kdcOffset: 0, principal: Fixture.alice,
            credentials: [
                Fixture.configEntry(key: "fast_avail", value: "yes", principal: "krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL")
                    .credential(),
                Fixture.tgt.credential(),
                Fixture.everyField.credential(),
            ]
        ).encodedBody(),
        KCMRequest.getPrincipal(name: "1000").encodedBody(),
    ]
    static let stream = bodies.flatMap(framed)
    /// Offset just past each frame.
    static let frameEnds: [Int] = bodies.reduce(into: []) { ends, body in ends.append((ends.last ?? 0) + 4 + body.count)
    }

    static func expectAllFrames(_ result: FeedResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.frames == bodies.map { .request($0) }, sourceLocation: sourceLocation)
        #expect(result.decoder.bufferedCount == 0, sourceLocation: sourceLocation)
        #expect(!result.decoder.isMidFrame, sourceLocation: sourceLocation)
    }

    @Test("the sample stream has an empty frame, small frames and a large REPLACE")
    func sampleStream() {
        #expect(Self.bodies[0].isEmpty)
        #expect(Self.bodies[2].count > 1000)
        #expect(Self.stream.count == Self.frameEnds.last)
    }

    @Test("all at once")
    func allAtOnce() {
        let result = feed(Self.stream, cuts: [], maximumLength: 1 << 20)
        Self.expectAllFrames(result)
    }

    @Test("byte by byte: each frame comes out exactly when its last byte arrives")
    func byteByByte() {
        let result = feed(Self.stream, cuts: Array(1..<Self.stream.count), maximumLength: 1 << 20)
        Self.expectAllFrames(result)
        #expect(result.fedWhenProduced == Self.frameEnds)
    }

    @Test("every split point: two pieces give the same frames, each as soon as it is complete")
    func everySplit() {
        var failures = 0
        for split in 0...Self.stream.count {
            let result = feed(Self.stream, cuts: [split], maximumLength: 1 << 20)
            let expectedTiming = Self.frameEnds.map { $0 <= split ? split : Self.stream.count }
            let good =
                result.frames == Self.bodies.map { .request($0) } && result.decoder.bufferedCount == 0
                && !result.decoder.isMidFrame && result.fedWhenProduced == expectedTiming
            if !good {
                failures += 1
                if failures <= 3 {
                    Issue.record("split at \(split): \(result.frames.count) frames at \(result.fedWhenProduced)")
                }
            }
        }
        #expect(failures == 0)
    }

    @Test("random pieces (seeded)", arguments: [UInt64(1), 2, 3, 0xC0FFEE])
    func randomPieces(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for _ in 0..<200 {
            var cuts: [Int] = []
            var position = 0
            while true {
                position += Int.random(in: 1...96, using: &random)
                if position >= Self.stream.count { break }
                cuts.append(position)
            }
            let result = feed(Self.stream, cuts: cuts, maximumLength: 1 << 20)
            Self.expectAllFrames(result)
        }
    }

    @Test("a frame mid-stream leaves the decoder mid-frame until its last byte")
    func midFrame() {
        var decoder = KCMFrameDecoder(maximumLength: 1 << 20)
        #expect(!decoder.isMidFrame)
        #expect(decoder.nextFrame() == nil)
        decoder.append(Self.stream[0..<2])
        #expect(decoder.nextFrame() == nil)
        #expect(decoder.isMidFrame)
        #expect(decoder.bufferedCount == 2)
        decoder.append(Self.stream[2..<Self.frameEnds[1] - 1])
        #expect(decoder.nextFrame() == .request([]))
        #expect(decoder.nextFrame() == nil)
        #expect(decoder.isMidFrame)
        decoder.append(Self.stream[Self.frameEnds[1] - 1..<Self.frameEnds[1]])
        #expect(decoder.nextFrame() == .request(Self.bodies[1]))
        #expect(!decoder.isMidFrame)
    }

    @Test("a truncated frame (length 10, 5 bytes) yields nothing and stays mid-frame")
    func truncated() {
        var decoder = KCMFrameDecoder(maximumLength: 1 << 20)
        let body: [UInt8] = [2, 0, 0, 5, 0x31, 0x30, 0x30, 0x30, 0, 0xEE]
        decoder.append(be32(10) + body.prefix(5))
        #expect(decoder.nextFrame() == nil)
        #expect(decoder.nextFrame() == nil)
        #expect(decoder.isMidFrame)
        #expect(decoder.bufferedCount == 9)
        decoder.append(body.suffix(5))
        #expect(decoder.nextFrame() == .request(body))
        #expect(!decoder.isMidFrame)
    }

    // MARK: Oversized frames

    static let limit: UInt32 = 64
    static let small = KCMRequest.getDefaultCache.encodedBody()
    static let oversizedBody = KCMRequest.store(name: "1000", credential: Fixture.tgt.credential()).encodedBody()
    static let after = KCMRequest.getPrincipal(name: "1000").encodedBody()
    static let oversizedStream = framed(small) + framed(oversizedBody) + framed(after)
    static let oversizedEnd = 4 + small.count + 4 + oversizedBody.count
    static let expectedWithOversized: [KCMFrameDecoder.Frame] = [
        .request(small), .oversized(length: UInt32(oversizedBody.count)), .request(after),
    ]

    @Test("every split: request, oversized (only after its whole body), request")
    func oversizedEverySplit() {
        #expect(Self.oversizedBody.count > Int(Self.limit))
        var failures = 0
        for split in 0...Self.oversizedStream.count {
            let result = feed(Self.oversizedStream, cuts: [split], maximumLength: Self.limit)
            let good =
                result.frames == Self.expectedWithOversized && result.fedWhenProduced[1] >= Self.oversizedEnd
                && result.decoder.bufferedCount == 0 && !result.decoder.isMidFrame
                && result.largestBacklog <= 4 + Int(Self.limit)
            if !good {
                failures += 1
                if failures <= 3 {
                    Issue.record(
                        "split at \(split): \(result.frames) at \(result.fedWhenProduced), backlog \(result.largestBacklog)"
                    )
                }
            }
        }
        #expect(failures == 0)
    }

    @Test("byte by byte: the oversized frame is reported exactly when its last byte arrives")
    func oversizedByteByByte() {
        let result = feed(Self.oversizedStream, cuts: Array(1..<Self.oversizedStream.count), maximumLength: Self.limit)
        #expect(result.frames == Self.expectedWithOversized)
        #expect(result.fedWhenProduced == [4 + Self.small.count, Self.oversizedEnd, Self.oversizedStream.count])
        #expect(result.largestBacklog <= 4 + Int(Self.limit))
    }

    @Test("all at once")
    func oversizedAllAtOnce() {
        let result = feed(Self.oversizedStream, cuts: [], maximumLength: Self.limit)
        #expect(result.frames == Self.expectedWithOversized)
        #expect(!result.decoder.isMidFrame)
    }

    @Test("a body of exactly the limit is a request; one byte more is oversized")
    func limitBoundary() {
        let atLimit = [UInt8](repeating: 0xAB, count: Int(Self.limit))
        let overLimit = atLimit + [0xCD]
        let result = feed(framed(atLimit) + framed(overLimit) + framed([]), cuts: [], maximumLength: Self.limit)
        #expect(result.frames == [.request(atLimit), .oversized(length: Self.limit + 1), .request([])])
    }

    @Test("length 0xFFFFFFFF is discarded as it arrives: nothing is buffered and nothing comes out")
    func hugeLength() {
        var decoder = KCMFrameDecoder(maximumLength: 10 * 1024 * 1024)
        decoder.append(wire("FFFFFFFF 02000014 0000"))
        #expect(decoder.nextFrame() == nil)
        #expect(decoder.isMidFrame)
        #expect(decoder.bufferedCount <= 6)
        let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
        for _ in 0..<32 {
            decoder.append(chunk)
            #expect(decoder.nextFrame() == nil)
            #expect(decoder.bufferedCount <= chunk.count)
        }
        #expect(decoder.isMidFrame)
        #expect(decoder.bufferedCount == 0)
    }

    @Test("after an oversized frame's body has gone by, the next frame decodes from the same buffer")
    func oversizedThenRequestInOneAppend() {
        var decoder = KCMFrameDecoder(maximumLength: 8)
        let big = [UInt8](repeating: 1, count: 9)
        decoder.append(framed(big) + framed(Self.small) + framed(Self.small).prefix(3))
        #expect(decoder.nextFrame() == .oversized(length: 9))
        #expect(decoder.nextFrame() == .request(Self.small))
        #expect(decoder.nextFrame() == nil)
        #expect(decoder.isMidFrame)
        decoder.append(framed(Self.small).dropFirst(3))
        #expect(decoder.nextFrame() == .request(Self.small))
        #expect(!decoder.isMidFrame)
    }

    @Test("a backlog larger than 64 KiB drains in order across the decoder's compaction")
    func longBacklog() {
        let bodies = (0..<12_000).map { KCMRequest.getKDCOffset(name: KCMCacheName("1000:\($0)")).encodedBody() }
        let stream = bodies.flatMap(framed)
        #expect(stream.count > 65536 * 2)
        // Three big pieces, each ending inside a frame.
        let cuts = [70_001, 140_003]
        let result = feed(stream, cuts: cuts, maximumLength: 1024)
        #expect(result.frames.count == bodies.count)
        #expect(result.frames == bodies.map { .request($0) })
        #expect(!result.decoder.isMidFrame)
    }
}
