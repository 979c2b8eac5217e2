/// A KCM reply status: 0 for success, else a krb5 com_err code, sent as `s32` in the reply's third word.
///
/// The numbers come from MIT's and Heimdal's `krb5_err.et` (base -1765328384) and `k5e1_err.et`
/// (base -1750600192); both implementations agree on them. Which code a reply carries matters:
/// MIT treats exactly ``fccInternal``, ``ccIO`` and ``ccNoSupp`` as "operation not supported" and
/// falls back to simpler opcodes, and ``fccNoFile`` as "no such cache".
public struct KCMStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let success = KCMStatus(rawValue: 0)
    /// Bad cache name (empty or too long).
    public static let ccBadName = KCMStatus(rawValue: -1_765_328_245)
    /// RETRIEVE found no match; MIT then asks the KDC.
    public static let ccNotFound = KCMStatus(rawValue: -1_765_328_243)
    /// Unknown credential or cache UUID; iteration ends or skips.
    public static let ccEnd = KCMStatus(rawValue: -1_765_328_242)
    /// Unparseable request. MIT treats it as "unsupported" after RETRIEVE, GET_CRED_LIST, REPLACE.
    public static let ccIO = KCMStatus(rawValue: -1_765_328_191)
    /// The peer may not use this daemon.
    public static let fccPerm = KCMStatus(rawValue: -1_765_328_190)
    /// The named cache does not exist.
    public static let fccNoFile = KCMStatus(rawValue: -1_765_328_189)
    /// Unknown or unimplemented opcode; MIT falls back.
    public static let fccInternal = KCMStatus(rawValue: -1_765_328_188)
    /// Heimdal: the cache already exists.
    public static let ccWrite = KCMStatus(rawValue: -1_765_328_187)
    /// Out of memory, or a size limit of this daemon refused the request.
    public static let ccNoMem = KCMStatus(rawValue: -1_765_328_186)
    /// Malformed stored data.
    public static let ccFormat = KCMStatus(rawValue: -1_765_328_185)
    /// Operation not supported here; MIT falls back (used when a GET_CRED_LIST reply would exceed 10 MiB).
    public static let ccNoSupp = KCMStatus(rawValue: -1_765_328_137)

    /// Whether MIT's client treats this status as "the server does not support the operation".
    public var meansUnsupportedToMIT: Bool {
        self == .fccInternal || self == .ccIO || self == .ccNoSupp
    }

    public var description: String {
        switch self {
        case .success: "OK"
        case .ccBadName: "KRB5_CC_BADNAME"
        case .ccNotFound: "KRB5_CC_NOTFOUND"
        case .ccEnd: "KRB5_CC_END"
        case .ccIO: "KRB5_CC_IO"
        case .fccPerm: "KRB5_FCC_PERM"
        case .fccNoFile: "KRB5_FCC_NOFILE"
        case .fccInternal: "KRB5_FCC_INTERNAL"
        case .ccWrite: "KRB5_CC_WRITE"
        case .ccNoMem: "KRB5_CC_NOMEM"
        case .ccFormat: "KRB5_CC_FORMAT"
        case .ccNoSupp: "KRB5_CC_NOSUPP"
        default: "status \(rawValue)"
        }
    }
}
