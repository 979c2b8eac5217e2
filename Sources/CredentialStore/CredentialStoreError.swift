import KCM

/// One of the store's limits (``CredentialStoreLimits``), as a value: the daemon names the option
/// that sets it.
public enum CredentialStoreLimit: String, Sendable, CaseIterable {
    case caches = "caches"
    case credentialsPerCache = "credentials per cache"
    /// Everything a cache stores counts: credentials, the cache's name and its principal.
    case credentialBytes = "stored bytes (credentials, cache names and principals)"
}

/// Why a store operation failed. The daemon maps each case to its krb5 status (`RequestFailure`).
public enum CredentialStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The named cache does not exist.
    case noSuchCache(KCMCacheName)
    /// No credential matched a RETRIEVE template.
    case noMatchingCredential
    /// No credential or cache has this UUID (any more).
    case unknownUUID(KCMUUID)
    /// A limit of the store refused a new cache or credential; nothing stored was touched.
    case limitReached(CredentialStoreLimit, limit: Int)
    /// A name a cache cannot have (empty, or longer than ``KCMCacheName/maximumLength``).
    case invalidName(length: Int)

    public var description: String {
        switch self {
        case .noSuchCache(let name): "no cache named '\(name)'"
        case .noMatchingCredential: "no matching credential"
        case .unknownUUID(let uuid): "no credential or cache with UUID \(uuid)"
        case .limitReached(let what, let limit): "the limit of \(limit) \(what.rawValue) is reached; nothing was stored"
        case .invalidName(let length):
            "a cache name must be 1 to \(KCMCacheName.maximumLength) bytes long without NUL (got \(length) bytes)"
        }
    }
}
