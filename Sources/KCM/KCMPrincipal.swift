/// A Kerberos principal in the FILE-ccache version 4 encoding:
/// `s32 name_type, u32 n_components, data realm, data component × n`.
public struct KCMPrincipal: Hashable, Sendable, CustomStringConvertible {
    public var nameType: Int32
    /// The realm bytes; empty for MIT's referral realm.
    public var realm: [UInt8]
    public var components: [[UInt8]]

    public init(nameType: Int32 = 1, realm: [UInt8], components: [[UInt8]]) {
        self.nameType = nameType
        self.realm = realm
        self.components = components
    }

    /// Builds a principal from text such as `host/localhost@REALM` (no escapes; for tests and tools).
    public init(_ text: String, nameType: Int32 = 1) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        self.nameType = nameType
        self.realm = parts.count > 1 ? Array(parts[1].utf8) : []
        self.components = parts[0].split(separator: "/", omittingEmptySubsequences: false).map { Array($0.utf8) }
    }

    /// The most components a decoded principal may have. Real ones have one to three (`user`,
    /// `host/name`, `krb5_ccache_conf_data/key/principal`); MIT and Heimdal set no limit, so the
    /// cap keeps a hostile client from storing a principal of 838,860 components (issue 12, item 3).
    public static let maximumComponents = 32
    /// The longest realm or component a decoded principal may have, in bytes: a DNS name is at most
    /// 253, an enterprise name `user@domain` a few hundred; a config entry's third component is a
    /// whole principal name.
    public static let maximumComponentLength = 4096

    /// Refuses a component count or length over the limits above.
    static func checkLimits(count: Int) throws(KCMDecodingError) {
        guard count <= maximumComponents else {
            throw .tooLarge(field: "principal component count", size: count, limit: maximumComponents)
        }
    }

    static func checkLimits(length: Int, of field: String) throws(KCMDecodingError) {
        guard length <= maximumComponentLength else {
            throw .tooLarge(field: "principal \(field) length", size: length, limit: maximumComponentLength)
        }
    }

    /// What storing this principal costs in memory, in bytes: its encoding plus, for each
    /// component, the heap array that holds it (measured: 8 INITIALIZEs of 838,860 one-byte
    /// components took 363 MiB, about 56 bytes each beyond the byte itself).
    public var storageCost: Int {
        Self.storageOverhead + realm.count + components.reduce(0) { $0 + Self.componentOverhead + $1.count }
    }

    /// The fixed part of ``storageCost``: the struct, the realm's and the component list's arrays.
    public static let storageOverhead = 96
    /// The per-component part of ``storageCost``: a heap array header, its allocation's rounding and
    /// the list's pointer to it.
    public static let componentOverhead = 56

    /// The realm MIT and Heimdal use for ccache configuration entries.
    public static let configRealm: [UInt8] = Array("X-CACHECONF:".utf8)

    /// Decodes one principal.
    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMPrincipal {
        let nameType = try reader.readInt32()
        let count = try reader.readCount(field: "principal component", minimumItemSize: 4)
        try checkLimits(count: count)
        let realm = try reader.readData()
        try checkLimits(length: realm.count, of: "realm")
        var components: [[UInt8]] = []
        components.reserveCapacity(count)
        for _ in 0..<count {
            let component = try reader.readData()
            try checkLimits(length: component.count, of: "component")
            components.append(component)
        }
        return KCMPrincipal(nameType: nameType, realm: realm, components: components)
    }

    /// Appends this principal's encoding.
    public func write(to writer: inout KCMWriter) {
        writer.write(nameType)
        writer.write(UInt32(truncatingIfNeeded: components.count))
        writer.writeData(realm)
        for component in components { writer.writeData(component) }
    }

    /// The encoding without the name type (`u32 n, data realm, data component × n`): two principals
    /// are the same to MIT's matching rules exactly when these bytes are equal.
    public var matchKey: [UInt8] {
        var writer = KCMWriter(capacity: 8 + realm.count + components.reduce(0) { $0 + 4 + $1.count })
        writer.write(UInt32(truncatingIfNeeded: components.count))
        writer.writeData(realm)
        for component in components { writer.writeData(component) }
        return writer.bytes
    }

    /// The encoded components alone (`data component × n`), for comparisons that ignore the realm.
    public var componentsKey: [UInt8] {
        var writer = KCMWriter(capacity: components.reduce(0) { $0 + 4 + $1.count })
        for component in components { writer.writeData(component) }
        return writer.bytes
    }

    /// `a/b@REALM`, for logs and display.
    public var description: String {
        components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/") + "@"
            + String(decoding: realm, as: UTF8.self)
    }
}
