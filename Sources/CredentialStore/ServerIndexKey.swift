import KCM

/// The hash under which a credential is indexed: its server's component count and components,
/// without realm or name type, so that exact, name-only and realm-blind lookups all use the index.
/// Collisions are harmless: every candidate is checked by ``CredentialMatcher``.
public enum ServerIndexKey {
    public static func make<Count: Collection<UInt8>, Components: Collection<UInt8>>(
        count: Count, components: Components
    ) -> Int {
        var hasher = Hasher()
        combine(count, into: &hasher)
        combine(components, into: &hasher)
        return hasher.finalize()
    }

    private static func combine<C: Collection<UInt8>>(_ bytes: C, into hasher: inout Hasher) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil { Array(bytes).withUnsafeBytes { hasher.combine(bytes: $0) } }
    }

    public static func make(for credential: KCMCredential) -> Int {
        make(count: credential.serverComponentCount, components: credential.serverComponents)
    }
}
