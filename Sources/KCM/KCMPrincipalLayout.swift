/// Where a principal's parts sit inside an encoded credential, so that a stored credential can be
/// matched without keeping a decoded copy of its principals.
public struct KCMPrincipalLayout: Hashable, Sendable {
    /// Offset of the `s32 name_type`.
    public var start: Int32
    /// Offset just past the realm bytes (where the first component's length word starts).
    public var realmEnd: Int32
    /// Offset just past the last component.
    public var end: Int32

    /// Offset of the `u32 n_components` word; `[countStart ..< end]` is the principal's match key.
    public var countStart: Int { Int(start) + 4 }
    /// The realm bytes' range (after its `u32` length).
    public var realmRange: Range<Int> { Int(start) + 12..<Int(realmEnd) }
    /// The encoded components' range.
    public var componentsRange: Range<Int> { Int(realmEnd)..<Int(end) }

    /// Reads past one principal, recording its layout relative to `base`.
    static func read(from reader: inout KCMReader, base: Int) throws(KCMDecodingError) -> KCMPrincipalLayout {
        let start = reader.offset
        _ = try reader.readInt32()
        let count = try reader.readCount(field: "principal component", minimumItemSize: 4)
        try KCMPrincipal.checkLimits(count: count)
        try KCMPrincipal.checkLimits(length: try reader.readDataRange().count, of: "realm")
        let realmEnd = reader.offset
        for _ in 0..<count { try KCMPrincipal.checkLimits(length: try reader.readDataRange().count, of: "component") }
        return KCMPrincipalLayout(
            start: Int32(start - base), realmEnd: Int32(realmEnd - base), end: Int32(reader.offset - base))
    }
}
