import CredentialStore
import KCM

/// Why a request got no successful reply: the one place that decides the krb5 status a client sees
/// and whether the daemon's log should notice (the role of SSSD's `sss2krb5_error`).
public enum RequestFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer is neither the owner nor an allowed root.
    case unauthorized(uid: UInt32)
    /// The body could not be decoded.
    case malformed(KCMDecodingError)
    /// The body was over `--max-request-bytes` and was discarded unread.
    case oversized(length: UInt32, limit: UInt32)
    /// An opcode this daemon does not implement.
    case unsupportedOpcode(UInt16)
    /// A GET_CRED_LIST reply would be over MIT's reply limit: "not supported" makes MIT list by UUID.
    case replyTooLargeForMIT(length: Int)
    /// An MIT client's RETRIEVE from a cache with a KDC time offset: "not supported" makes MIT
    /// iterate the cache instead, which applies the offset (``RequestDispatcher``).
    case retrieveFromSkewedCache(kdcOffset: Int32)
    /// The store refused the operation.
    case store(CredentialStoreError)

    /// The krb5 status MIT and Heimdal expect for this failure.
    public var status: KCMStatus {
        switch self {
        case .unauthorized: .fccPerm
        case .malformed: .ccIO
        // Not one of the codes MIT takes for "unsupported" (it would silently fall back).
        case .oversized: .ccNoMem
        case .unsupportedOpcode: .fccInternal
        case .replyTooLargeForMIT, .retrieveFromSkewedCache: .ccNoSupp
        case .store(let error):
            switch error {
            case .noSuchCache: .fccNoFile
            case .noMatchingCredential: .ccNotFound
            case .unknownUUID: .ccEnd
            case .invalidName: .ccBadName
            case .limitReached: .ccNoMem
            }
        }
    }

    /// Whether this is an everyday answer (logged at debug) rather than one worth a notice: the
    /// misses every tool provokes while it looks for a cache or a ticket, the fallbacks MIT asks
    /// for on purpose, and a refused peer's requests (its connection is warned about, rate-limited).
    /// A by-UUID lookup that finds nothing (KRB5_CC_END) is the everyday race of a `klist -l` or a
    /// GSSAPI iteration with a `kdestroy -A`: the UUID list was read before the cache went.
    public var isRoutine: Bool {
        switch self {
        case .unauthorized, .store(.noSuchCache), .store(.noMatchingCredential), .store(.unknownUUID),
            .replyTooLargeForMIT, .retrieveFromSkewedCache, .unsupportedOpcode:
            true
        case .malformed, .oversized, .store:
            false
        }
    }

    /// The daemon option that sets a store limit.
    public static func option(for limit: CredentialStoreLimit) -> String {
        switch limit {
        case .caches: "--max-caches"
        case .credentialsPerCache: "--max-credentials-per-cache"
        case .credentialBytes: "--max-credential-bytes"
        }
    }

    public var description: String {
        switch self {
        case .unauthorized(let uid): "peer uid \(uid) may not use this daemon"
        case .malformed(let error): error.description
        case .oversized(let length, let limit):
            "request of \(length) bytes exceeds the limit of \(limit) bytes (--max-request-bytes)"
        case .unsupportedOpcode(let opcode): "opcode \(opcode) is not supported"
        case .replyTooLargeForMIT(let length):
            "a reply of \(length) bytes is over MIT's limit of \(KCMReplyWriter.mitMaximumReplyLength); "
                + "the client lists by UUID instead"
        case .retrieveFromSkewedCache(let offset):
            "the cache's KDC time offset is \(offset) s, which MIT's client applies only when it iterates; "
                + "it iterates instead"
        case .store(.limitReached(let limit, let value)):
            "the daemon's limit of \(value) \(limit.rawValue) is reached (\(Self.option(for: limit))); nothing was stored"
        case .store(let error): error.description
        }
    }
}
