import KCM

/// Where each frame of an input's stream lies, and what it is: found by walking the length words,
/// and checked against a reference ``KCMFrameDecoder`` fed the whole stream in one piece. The
/// sessions are then fed the stream frame by frame in the plan's cuts, and must answer exactly the
/// frames listed here — so cut and uncut streams give the same frames.
struct FrameMap {
    struct Entry {
        /// The frame's bytes in the stream: its length word and its body.
        var range: Range<Int>
        /// What the reference decoder returned for it.
        var frame: KCMFrameDecoder.Frame
    }

    /// The complete frames, in order, at most `maximumFrames` of them.
    let entries: [Entry]
    /// The bytes of a frame the stream starts but never finishes (empty when there is none, or when
    /// the stream was cut at `maximumFrames`).
    let tail: Range<Int>

    init(stream: [UInt8], limit: UInt32, maximumFrames: Int) {
        var reference = KCMFrameDecoder(maximumLength: limit)
        reference.append(stream)
        defer { reference.wipe() }
        var entries: [Entry] = []
        var offset = 0
        while entries.count < maximumFrames && stream.count - offset >= 4 {
            let length = stream[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let end = offset + 4 + Int(length)
            guard end <= stream.count else { break }
            let expected: KCMFrameDecoder.Frame =
                length > limit ? .oversized(length: length) : .request(Array(stream[offset + 4..<end]))
            guard let frame = reference.nextFrame(), frame == expected else {
                FuzzInvariants.fail(
                    "frame \(entries.count) (bytes \(offset)..<\(end)) is not what the decoder returned")
            }
            entries.append(Entry(range: offset..<end, frame: frame))
            offset = end
        }
        self.entries = entries
        if entries.count == maximumFrames {
            tail = offset..<offset
            return
        }
        tail = offset..<stream.count
        // Nothing more, and every byte accounted for: an unfinished frame is buffered whole, or (an
        // oversized one) being discarded with nothing buffered.
        guard reference.nextFrame() == nil else {
            FuzzInvariants.fail("the decoder returned a frame after the stream's last complete one")
        }
        guard reference.isMidFrame == !tail.isEmpty else {
            FuzzInvariants.fail(
                "\(tail.count) bytes after the last frame, but the decoder is mid-frame: \(reference.isMidFrame)")
        }
        let discarding =
            tail.count >= 4
            && stream[tail.lowerBound..<tail.lowerBound + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } > limit
        let buffered = reference.bufferedCount
        guard buffered == (discarding ? 0 : tail.count) else {
            FuzzInvariants.fail("\(tail.count) bytes after the last frame, \(buffered) buffered by the decoder")
        }
    }
}
