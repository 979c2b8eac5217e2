import KCM

/// The hash under which a credential is indexed: its server's component count and components,
/// without realm or name type, so that exact, name-only and realm-blind lookups all use the index.
/// Collisions are harmless: every candidate is checked by ``CredentialMatcher``.
public enum ServerIndexKey {
    public static func make(count: ArraySlice<UInt8>, components: ArraySlice<UInt8>) -> Int {
        var hasher = Hasher()
        count.withUnsafeBytes { hasher.combine(bytes: $0) }
        components.withUnsafeBytes { hasher.combine(bytes: $0) }
        return hasher.finalize()
    }

    public static func make(for credential: KCMCredential) -> Int {
        make(count: credential.serverComponentCount, components: credential.serverComponents)
    }
}
