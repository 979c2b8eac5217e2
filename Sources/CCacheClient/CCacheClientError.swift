import KCM

/// Why a client call failed, worded for the person who sees it.
public enum CCacheClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The daemon answered with a krb5 error.
    case daemon(KCMStatus, operation: String)
    /// The daemon's socket is owned by another user: not ours, not root's.
    case untrustedDaemon(path: String, uid: UInt32)
    /// No daemon runs and none could be started.
    case cannotStart(path: String, reason: String)
    /// No daemon runs and starting one was not allowed.
    case notRunning(path: String)
    /// The connection failed.
    case connection(path: String, reason: String)
    /// The daemon's reply made no sense.
    case malformedReply(operation: String)
    /// The calling thread's identity could not be set aside for the call.
    case identity(String)
    /// The session's runtime location is unusable.
    case runtime(String)

    public var description: String {
        switch self {
        case .daemon(let status, let operation): "\(operation) failed: \(status.explanation)"
        case .untrustedDaemon(let path, let uid):
            "the daemon at \(path) runs as uid \(uid), not as you or root; refusing to talk to it "
                + "(someone else's process holds your socket path)"
        case .cannotStart(let path, let reason): "could not start ccached for \(path): \(reason)"
        case .notRunning(let path): "no ccached daemon is running at \(path) (start one with 'ccachectl start')"
        case .connection(let path, let reason): "lost the connection to ccached at \(path): \(reason)"
        case .malformedReply(let operation): "ccached sent a malformed reply to \(operation)"
        case .identity(let text): text
        case .runtime(let text): text
        }
    }
}

extension KCMStatus {
    /// What the status means, as a sentence fragment.
    public var explanation: String {
        switch self {
        case .fccNoFile: "no such credential cache"
        case .ccNotFound: "no matching credential"
        case .ccEnd: "the credential or cache is gone"
        case .fccPerm: "permission denied by the daemon (it belongs to another user)"
        case .ccBadName: "invalid cache name"
        case .ccIO: "the daemon could not parse the request"
        case .fccInternal: "the daemon does not support this operation"
        case .ccNoMem: "the request is larger than the daemon accepts"
        case .ccNoSupp: "not supported for a cache this large"
        default: "\(self)"
        }
    }
}
