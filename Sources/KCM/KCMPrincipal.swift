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

    /// The realm MIT and Heimdal use for ccache configuration entries.
    public static let configRealm: [UInt8] = Array("X-CACHECONF:".utf8)

    /// Decodes one principal.
    public static func read(from reader: inout KCMReader) throws(KCMDecodingError) -> KCMPrincipal {
        let nameType = try reader.readInt32()
        let count = try reader.readCount(field: "principal component", minimumItemSize: 4)
        let realm = try reader.readData()
        var components: [[UInt8]] = []
        components.reserveCapacity(count)
        for _ in 0..<count { components.append(try reader.readData()) }
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
