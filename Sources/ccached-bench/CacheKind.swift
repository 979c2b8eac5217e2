/// The ccache types compared, in report order.
enum CacheKind: String, CaseIterable, Sendable {
    case kcm = "KCM"
    case file = "FILE"
    case keyring = "KEYRING"
    case memory = "MEMORY"

    /// The column heading in the table.
    var title: String { self == .kcm ? "KCM (ccached)" : rawValue }

    /// A ccache name of this type, unique to `tag`; `directory` holds FILE caches.
    func cacheName(tag: String, directory: String) -> String {
        switch self {
        case .kcm: "KCM:bench-\(tag)"
        case .file: "FILE:\(directory)/cc-\(tag)"
        // The process keyring: private to this process, gone when it exits.
        case .keyring: "KEYRING:process:bench-\(tag)"
        case .memory: "MEMORY:bench-\(tag)"
        }
    }
}

/// The measured operations on one cache.
enum Phase: String, CaseIterable, Sendable {
    case initialize
    case store
    case retrieve
    case retrieveNameOnly = "retrieve_nameonly"
    case iterate
    /// KCM only: GET_CRED_LIST over a bare socket, no libkrb5 (the daemon and transport share of iterate).
    case rawCredentialList = "raw_get_cred_list"
    case remove
    case destroy

    var title: String {
        switch self {
        case .initialize: "initialize"
        case .store: "store"
        case .retrieve: "retrieve (flags 0)"
        case .retrieveNameOnly: "retrieve (SRV_NAMEONLY)"
        case .iterate: "iterate (klist)"
        case .rawCredentialList: "  GET_CRED_LIST, raw"
        case .remove: "remove_cred"
        case .destroy: "destroy"
        }
    }
}

/// A small deterministic generator (SplitMix64) so every cache type sees the same random picks.
struct SplitMix64: RandomNumberGenerator {
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
