import Glibc

/// The ccache types compared, in report order. HEIMDAL and SSSD are the other KCM servers a user
/// could run instead (Heimdal's `kcm`, `sssd_kcm`); BOUND is the replay stand-in that answers
/// repeated read-only requests with ccached's recorded bytes (the bound on any KCM server).
enum CacheKind: String, CaseIterable, Sendable {
    case kcm = "KCM"
    case heimdal = "HEIMDAL"
    case sssd = "SSSD"
    case bound = "BOUND"
    case file = "FILE"
    case keyring = "KEYRING"
    case memory = "MEMORY"

    /// The column heading in the table.
    var title: String {
        switch self {
        case .kcm: "KCM (ccached)"
        case .heimdal: "Heimdal kcm"
        case .sssd: "sssd-kcm"
        case .bound: "bound (replay)"
        default: rawValue
        }
    }

    /// Whether this type is a KCM server the benchmark starts (reached over its own socket).
    var isServer: Bool { self == .kcm || self == .heimdal || self == .sssd || self == .bound }

    /// A ccache name of this type, unique to `tag`; `directory` holds FILE caches.
    func cacheName(tag: String, directory: String) -> String {
        switch self {
        // sssd-kcm accepts only names that start with the caller's uid and a colon (what MIT's
        // GEN_NEW hands out), Heimdal's kcm by default too: every KCM server gets the same names.
        case .kcm, .heimdal, .sssd, .bound: "KCM:\(getuid()):bench-\(tag)"
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
