import KCM

/// Something that renews one credential: ``KerberosRenewer`` against a real KDC, or a stand-in in a
/// unit test of the scheduler.
public protocol CredentialRenewing: Sendable {
    /// Asks the KDC for a renewed copy of `credential`; `kdcOffset` is the cache's KDC time offset.
    /// Blocks while the KDC is asked; called on the renewal worker only, never with a store lock held.
    func renew(_ credential: KCMCredential, kdcOffset: Int32) -> Result<KCMCredential, RenewalError>
}
