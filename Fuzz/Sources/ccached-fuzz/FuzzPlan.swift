/// How one input is played. Its first two bytes are the plan; the rest is the byte stream that two
/// peers send, frame by frame. Mode byte, bit by bit:
///
/// - bits 0–1, how the stream is cut into reads: 0 all at once, 1 one byte per read, 2 random reads
///   of 1–16 bytes, 3 random reads of 1–4096 bytes;
/// - bits 2–3, which peer sends each frame: the owner (authorised) or a stranger (refused) — 0 and 1
///   always the owner, 2 every other frame, 3 at random (the owner three frames in four);
/// - bits 4–5, when the store is purged (after a frame): 0 never, 1 every fourth frame, 2 every frame,
///   3 at random (one frame in eight);
/// - bit 6: reads may span frames: consecutive frames of one peer reach its session as one stream cut
///   into reads (several frames in one read, a read ending mid-frame), not one frame at a time;
/// - bit 7: a request limit of 512 bytes instead of 64 KiB, so small inputs reach the oversized path.
///
/// The second byte seeds the generator behind every "at random" above, so an input replays exactly.
struct FuzzPlan {
    enum Chunking { case whole, singleBytes, smallReads, largeReads }
    enum Authorization { case always, everyOtherFrame, random }
    enum Purging { case never, everyFourthFrame, everyFrame, random }

    static let headerLength = 2
    static let largeRequestLimit: UInt32 = 64 << 10
    static let smallRequestLimit: UInt32 = 512

    let chunking: Chunking
    let authorization: Authorization
    let purging: Purging
    let spansFrames: Bool
    let maximumRequestLength: UInt32
    /// Whether the sessions are served as the daemon's event loop serves them
    /// (`receiveWithoutWaiting`, moving to the blocking form once it asks for a thread).
    let servesOnLoop: Bool
    private var random: SplitMix64

    /// The plan of an input; an input shorter than the header gets the all-zero plan.
    init(header: UnsafeBufferPointer<UInt8>) {
        let mode = header.count > 0 ? header[0] : 0
        let seed = header.count > 1 ? header[1] : 0
        chunking = [.whole, .singleBytes, .smallReads, .largeReads][Int(mode & 3)]
        authorization = [.always, .always, .everyOtherFrame, .random][Int(mode >> 2 & 3)]
        purging = [.never, .everyFourthFrame, .everyFrame, .random][Int(mode >> 4 & 3)]
        spansFrames = mode & 0x40 != 0
        maximumRequestLength = mode & 0x80 != 0 ? Self.smallRequestLimit : Self.largeRequestLimit
        servesOnLoop = seed & 0x80 != 0
        random = SplitMix64(seed: UInt64(mode) << 8 | UInt64(seed))
    }

    /// On the loop: whether the socket takes only part of the next reply (the session must then
    /// ask for a thread).
    mutating func socketFills() -> Bool { random.next() % 8 == 0 }

    /// How many bytes the next read delivers, at most `remaining` (which is > 0).
    mutating func nextReadSize(remaining: Int) -> Int {
        switch chunking {
        case .whole: remaining
        case .singleBytes: 1
        case .smallReads: min(remaining, 1 + Int(random.next() % 16))
        case .largeReads: min(remaining, 1 + Int(random.next() % 4096))
        }
    }

    /// Whether frame number `index` (from 0) is sent by the owner rather than by the stranger.
    mutating func isAuthorized(frame index: Int) -> Bool {
        switch authorization {
        case .always: true
        case .everyOtherFrame: index % 2 == 0
        case .random: random.next() % 4 != 0
        }
    }

    /// The clock and grace of a purge after frame number `index`, or nil for none.
    mutating func purge(afterFrame index: Int) -> (now: UInt32, grace: UInt32)? {
        let due: Bool
        switch purging {
        case .never: due = false
        case .everyFourthFrame: due = index % 4 == 3
        case .everyFrame: due = true
        case .random: due = random.next() % 8 == 0
        }
        guard due else { return nil }
        // Around the traces' clock, long after it, the epoch and the end of u32 time (a clock that
        // jumps back and forth is something a purge must survive too).
        let clocks: [UInt32] = [1_795_305_644, 1_795_305_644 + 7_200, 1_795_305_644 + 40 * 86_400, 0, .max]
        let graces: [UInt32] = [3_600, 0, 60]
        let draw = random.next()
        return (clocks[Int(draw % UInt64(clocks.count))], graces[Int((draw >> 32) % UInt64(graces.count))])
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same choices on every run,
/// so a crashing input replays.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
