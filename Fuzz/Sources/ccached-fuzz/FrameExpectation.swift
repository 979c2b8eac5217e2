import KCM

/// What the daemon must answer to one frame, worked out before the frame is sent from who sends it
/// and what it holds — never from the reply.
enum FrameExpectation: CustomStringConvertible {
    /// From the stranger, oversized or not: KRB5_FCC_PERM, and nothing changes.
    case refused
    /// From the owner, over the request limit: KRB5_CC_NOMEM, counted as oversized.
    case oversized(length: UInt32)
    /// From the owner, a body that does not decode: KRB5_CC_IO.
    case malformed(bodyLength: Int)
    /// From the owner, an opcode the daemon does not implement: KRB5_FCC_INTERNAL.
    case unsupported(opcode: UInt16, bodyLength: Int)
    /// From the owner, a request the store applies: success or one of the store's refusals.
    case request(KCMOpcode, bodyLength: Int)

    /// The expectation for a body (already within the limit) that the owner sends.
    init(ownerBody body: [UInt8]) {
        let request: KCMRequest
        do {
            request = try KCMRequest(decoding: body)
        } catch {
            self = .malformed(bodyLength: body.count)
            return
        }
        if case .unsupported(let raw) = request {
            self = .unsupported(opcode: raw, bodyLength: body.count)
        } else if let opcode = request.opcode {
            self = .request(opcode, bodyLength: body.count)
        } else {
            FuzzInvariants.fail("a body decoded to a request without an opcode")
        }
    }

    /// The accepted body's length, which the daemon's largest-request counter must take in.
    var acceptedBodyLength: Int? {
        switch self {
        case .refused, .oversized: nil
        case .malformed(let length), .unsupported(_, let length), .request(_, let length): length
        }
    }

    var description: String {
        switch self {
        case .refused: "refused peer"
        case .oversized(let length): "oversized \(length)"
        case .malformed(let length): "malformed \(length)-byte body"
        case .unsupported(let opcode, _): "unsupported opcode \(opcode)"
        case .request(let opcode, _): "\(opcode)"
        }
    }
}
