import KCM

/// Why a store operation failed. ``krb5Status`` is the one place these map to wire codes.
public enum CredentialStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The named cache does not exist.
    case noSuchCache(KCMCacheName)
    /// No credential matched a RETRIEVE template.
    case noMatchingCredential
    /// No credential or cache has this UUID (any more).
    case unknownUUID(KCMUUID)
    /// A limit of the daemon refused a new cache or credential; nothing stored was touched.
    case limitReached(what: String, limit: Int, option: String)
    /// A name a cache cannot have (empty, or longer than ``KCMCacheName/maximumLength``).
    case invalidName(length: Int)

    /// The krb5 status code MIT and Heimdal expect for this failure.
    public var krb5Status: KCMStatus {
        switch self {
        case .noSuchCache: .fccNoFile
        case .noMatchingCredential: .ccNotFound
        case .unknownUUID: .ccEnd
        case .invalidName: .ccBadName
        // Not one of the codes MIT takes for "unsupported" (it would silently fall back).
        case .limitReached: .ccNoMem
        }
    }

    public var description: String {
        switch self {
        case .noSuchCache(let name): "no cache named '\(name)'"
        case .noMatchingCredential: "no matching credential"
        case .unknownUUID(let uuid): "no credential or cache with UUID \(uuid)"
        case .limitReached(let what, let limit, let option):
            "the daemon's limit of \(limit) \(what) is reached (\(option)); nothing was stored"
        case .invalidName(let length):
            "a cache name must be 1 to \(KCMCacheName.maximumLength) bytes long without NUL (got \(length) bytes)"
        }
    }
}
