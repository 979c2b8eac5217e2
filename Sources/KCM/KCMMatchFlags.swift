/// The flag word of RETRIEVE and REMOVE_CRED, in Heimdal's bit values (MIT 1.20+ translates its own
/// `KRB5_TC_*` flags to these before sending).
public struct KCMMatchFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Heimdal only: ignore the realm of client and server.
    public static let dontMatchRealm = KCMMatchFlags(rawValue: 0x8000_0000)
    public static let matchKeytype = KCMMatchFlags(rawValue: 0x4000_0000)
    public static let matchServerNameOnly = KCMMatchFlags(rawValue: 0x2000_0000)
    public static let matchFlagsExact = KCMMatchFlags(rawValue: 0x1000_0000)
    public static let matchFlags = KCMMatchFlags(rawValue: 0x0800_0000)
    public static let matchTimesExact = KCMMatchFlags(rawValue: 0x0400_0000)
    public static let matchTimes = KCMMatchFlags(rawValue: 0x0200_0000)
    public static let matchAuthdata = KCMMatchFlags(rawValue: 0x0100_0000)
    public static let matchSecondTicket = KCMMatchFlags(rawValue: 0x0080_0000)
    public static let matchIsSKey = KCMMatchFlags(rawValue: 0x0040_0000)
    /// "Cached only": MIT always sets it on RETRIEVE. The daemon never asks a KDC anyway.
    public static let cached = KCMMatchFlags(rawValue: 0x0000_0001)

    /// MIT 1.13–1.19 sent its own `KRB5_TC_*` values in REMOVE_CRED. A word with bits in 0x3FE and
    /// none in the Heimdal range is taken to be one of those and translated.
    public static func fromRemoveCredWord(_ word: UInt32) -> KCMMatchFlags {
        guard word & 0x3FE != 0, word & 0xFFC0_0000 == 0 else { return KCMMatchFlags(rawValue: word) }
        let table: [(UInt32, KCMMatchFlags)] = [
            (0x001, .matchTimes), (0x002, .matchIsSKey), (0x004, .matchFlags), (0x008, .matchTimesExact),
            (0x010, .matchFlagsExact), (0x020, .matchAuthdata), (0x040, .matchServerNameOnly),
            (0x080, .matchSecondTicket), (0x100, .matchKeytype),
        ]
        var flags: KCMMatchFlags = []
        for (mitBit, flag) in table where word & mitBit != 0 { flags.insert(flag) }
        return flags
    }
}
