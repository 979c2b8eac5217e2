/// The operation a KCM request asks for: the `u16` after the version bytes.
///
/// Values 0–28 are the Heimdal/MIT KCM opcodes, 13001 and 13002 MIT's extensions.
/// ccached's own additions live in ``KCMOpcode/privateRange`` (see `Docs/protocol.md`).
public enum KCMOpcode: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case noop = 0
    case getName = 1
    case resolve = 2
    case genNew = 3
    case initialize = 4
    case destroy = 5
    case store = 6
    case retrieve = 7
    case getPrincipal = 8
    case getCredUUIDList = 9
    case getCredByUUID = 10
    case removeCred = 11
    case setFlags = 12
    case chown = 13
    case chmod = 14
    case getInitialTicket = 15
    case getTicket = 16
    case moveCache = 17
    case getCacheUUIDList = 18
    case getCacheByUUID = 19
    case getDefaultCache = 20
    case setDefaultCache = 21
    case getKDCOffset = 22
    case setKDCOffset = 23
    case addNTLMCred = 24
    case haveNTLMCred = 25
    case delNTLMCred = 26
    case doNTLMAuth = 27
    case getNTLMUserList = 28
    case getCredList = 13001
    case replace = 13002
    /// ccached's own: the daemon's state (``KCMDaemonStatus``). First of ``privateRange``.
    case daemonStatus = 0x5000
    /// ccached's own: wait until the collection changes after a counter (``KCMWatch``).
    case watch = 0x5001
    /// ccached's own: renew a cache's renewable tickets now (``KCMRenew``).
    case renew = 0x5002
    /// ccached's own: the renewal worker's and each cache's renewal state (``KCMRenewalState``).
    case renewalState = 0x5003
    /// ccached's own: reply with the daemon's pid, then wipe every cache and exit.
    case stop = 0x5004
    /// ccached's own: a login session starts using this daemon (`pam_ccached` at session open).
    case attachSession = 0x5005
    /// ccached's own: a login session ends; the last one to go wipes and stops the daemon.
    case detachSession = 0x5006

    /// Opcodes reserved for ccached's own extensions; no other KCM implementation uses them.
    public static let privateRange: ClosedRange<UInt16> = 0x5000...0x50FF

    /// The name used in MIT's and Heimdal's sources, for logs.
    public var description: String {
        switch self {
        case .noop: "NOOP"
        case .getName: "GET_NAME"
        case .resolve: "RESOLVE"
        case .genNew: "GEN_NEW"
        case .initialize: "INITIALIZE"
        case .destroy: "DESTROY"
        case .store: "STORE"
        case .retrieve: "RETRIEVE"
        case .getPrincipal: "GET_PRINCIPAL"
        case .getCredUUIDList: "GET_CRED_UUID_LIST"
        case .getCredByUUID: "GET_CRED_BY_UUID"
        case .removeCred: "REMOVE_CRED"
        case .setFlags: "SET_FLAGS"
        case .chown: "CHOWN"
        case .chmod: "CHMOD"
        case .getInitialTicket: "GET_INITIAL_TICKET"
        case .getTicket: "GET_TICKET"
        case .moveCache: "MOVE_CACHE"
        case .getCacheUUIDList: "GET_CACHE_UUID_LIST"
        case .getCacheByUUID: "GET_CACHE_BY_UUID"
        case .getDefaultCache: "GET_DEFAULT_CACHE"
        case .setDefaultCache: "SET_DEFAULT_CACHE"
        case .getKDCOffset: "GET_KDC_OFFSET"
        case .setKDCOffset: "SET_KDC_OFFSET"
        case .addNTLMCred: "ADD_NTLM_CRED"
        case .haveNTLMCred: "HAVE_NTLM_CRED"
        case .delNTLMCred: "DEL_NTLM_CRED"
        case .doNTLMAuth: "DO_NTLM_AUTH"
        case .getNTLMUserList: "GET_NTLM_USER_LIST"
        case .getCredList: "GET_CRED_LIST"
        case .replace: "REPLACE"
        case .daemonStatus: "CCACHED_STATUS"
        case .watch: "CCACHED_WATCH"
        case .renew: "CCACHED_RENEW"
        case .renewalState: "CCACHED_RENEWAL_STATE"
        case .stop: "CCACHED_STOP"
        case .attachSession: "CCACHED_ATTACH"
        case .detachSession: "CCACHED_DETACH"
        }
    }
}
