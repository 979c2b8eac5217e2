import SystemCalls

/// When each stage of routing one connection ended, for the debug log (`--log-level debug`):
/// where a routed connection's time goes (Docs/performance.md, "The door's path").
struct RoutingStages: CustomStringConvertible {
    enum Stage: Int, CaseIterable {
        /// A routing thread runs the connection.
        case started
        /// SO_PEERCRED, the pidfd, /proc and logind: the peer's session is known.
        case identified
        /// The passwd entry.
        case account
        /// The daemon's directory.
        case located
        /// The daemon took the connection.
        case handedOff

        var name: String {
            switch self {
            case .started: "thread"
            case .identified: "identify"
            case .account: "account"
            case .located: "locate"
            case .handedOff: "hand-off"
            }
        }
    }

    /// Microseconds (monotonic) when the door accepted the connection.
    let accepted: Int64
    private var marks: [Int64?] = Array(repeating: nil, count: Stage.allCases.count)

    init(accepted: Int64) {
        self.accepted = accepted
        marks[Stage.started.rawValue] = Int64(MonotonicClock.microseconds())
    }

    mutating func mark(_ stage: Stage) {
        marks[stage.rawValue] = Int64(MonotonicClock.microseconds())
    }

    /// "123 µs (thread 40, identify 50, ...)": the total since the accept, then each stage's share.
    var description: String {
        var previous = accepted
        var parts: [String] = []
        for stage in Stage.allCases {
            guard let mark = marks[stage.rawValue] else { continue }
            parts.append("\(stage.name) \(mark - previous)")
            previous = mark
        }
        return "\(previous - accepted) µs (" + parts.joined(separator: ", ") + ")"
    }
}
