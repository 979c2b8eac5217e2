// Internal: the krb5 types stay out of this module's interface, so that a client importing CKrb5 as
// well (the tests, ccachectl) sees one set of them.
internal import CKrb5Loader
import Glibc
import KCM
import SecureMemory

/// Renews a ticket with libkrb5: a private MEMORY ccache holding only that ticket, then
/// `krb5_get_renewed_creds`, and the new ticket back in the KCM v4 encoding, in ``SecureBytes``.
/// libkrb5 is loaded by the first renewal, not at the daemon's start (CKrb5Loader).
///
/// Each renewal makes its own krb5 context from the process's configuration (`KRB5_CONFIG`, else
/// `/etc/krb5.conf`), so the daemon holds no krb5 state between renewals and a changed
/// configuration applies to the next one. It never touches the store.
///
/// Secrets: the memory ccache is destroyed and every `krb5_creds` freed with
/// `krb5_free_cred_contents`/`krb5_free_creds`, which zero the session key (the renewed one is
/// zeroed before as well); the renewed ticket is encoded by ``KerberosCredentialEncoder`` into a
/// buffer of its exact size, zeroed once the bytes are in ``SecureBytes`` — never by
/// `krb5_marshal_credentials`, whose reallocated buffer leaves a copy of the key in freed heap.
public struct KerberosRenewer: CredentialRenewing {
    /// Colon-separated krb5.conf files; nil = the process's own (`KRB5_CONFIG`, else `/etc/krb5.conf`).
    public let configurationPath: String?

    public init(configurationPath: String? = nil) {
        self.configurationPath = configurationPath
    }

    public func renew(_ credential: KCMCredential, kdcOffset: Int32 = 0) -> Result<KCMCredential, RenewalError> {
        var context: krb5_context?
        let initCode = makeContext(&context)
        guard initCode == 0, let context else {
            // libkrb5 is loaded by the first renewal: say so when that is what failed.
            if let loadError = ccached_krb5_load_error() {
                return .failure(
                    RenewalError(
                        code: Int32(truncatingIfNeeded: initCode),
                        message:
                            "cannot load the Kerberos library (\(String(cString: loadError))); install libkrb5-3"))
            }
            let files = configurationPath ?? "KRB5_CONFIG"
            return .failure(
                RenewalError(
                    code: Int32(truncatingIfNeeded: initCode),
                    message: "cannot initialise the Kerberos library (error \(initCode)); check \(files)"))
        }
        defer { ccached_krb5_free_context(context) }
        if kdcOffset != 0 {
            // The cache's clock correction, as libkrb5 would apply it when reading the cache.
            _ = ccached_krb5_set_real_time(
                context, krb5_timestamp(truncatingIfNeeded: Int(time(nil)) + Int(kdcOffset)), 0)
        }
        do throws(RenewalError) {
            return .success(try renew(credential, in: context))
        } catch {
            return .failure(error)
        }
    }

    private func renew(_ credential: KCMCredential, in context: krb5_context) throws(RenewalError) -> KCMCredential {
        func fail(_ code: krb5_error_code, _ what: String, permanent: Bool = false) -> RenewalError {
            RenewalError(code: code, message: "\(what): \(Self.message(code, context))", isPermanent: permanent)
        }

        var stored: UnsafeMutablePointer<krb5_creds>?
        let unmarshalled = credential.withCBuffer { bytes, length in
            var data = krb5_data(magic: 0, length: length, data: bytes)
            return ccached_krb5_unmarshal_credentials(context, &data, &stored)
        }
        guard unmarshalled == 0, let stored else {
            throw fail(unmarshalled, "cannot decode the stored ticket", permanent: true)
        }
        defer {
            // Zeroed by krb5_free_creds as well; zeroed here first all the same (see below).
            if let key = stored.pointee.keyblock.contents {
                SecureArena.wipe(key, count: Int(stored.pointee.keyblock.length))
            }
            ccached_krb5_free_creds(context, stored)
        }
        guard let client = stored.pointee.client, let server = stored.pointee.server else {
            throw RenewalError(message: "the stored ticket has no client or server", isPermanent: true)
        }
        // krb5_get_renewed_creds looks the ticket up under the client's realm.
        guard ccached_krb5_realm_compare(context, client, server) != 0 else {
            throw RenewalError(
                message: "cannot renew a ticket for a service of another realm (\(Self.name(server, context)))",
                isPermanent: true)
        }

        var cache: krb5_ccache?
        var code = ccached_krb5_cc_new_unique(context, "MEMORY", nil, &cache)
        guard code == 0, let cache else { throw fail(code, "cannot create a memory credential cache") }
        defer { ccached_krb5_cc_destroy(context, cache) }
        code = ccached_krb5_cc_initialize(context, cache, client)
        guard code == 0 else { throw fail(code, "cannot initialise a memory credential cache") }
        code = ccached_krb5_cc_store_cred(context, cache, stored)
        guard code == 0 else { throw fail(code, "cannot store the ticket in a memory credential cache") }

        var serverName: UnsafeMutablePointer<CChar>?
        code = ccached_krb5_unparse_name(context, server, &serverName)
        guard code == 0, let serverName else { throw fail(code, "cannot name the ticket's server", permanent: true) }
        defer { ccached_krb5_free_unparsed_name(context, serverName) }

        var renewed = krb5_creds()
        code = ccached_krb5_get_renewed_creds(context, &renewed, client, cache, serverName)
        guard code == 0 else {
            throw fail(code, "renewing \(String(cString: serverName)) for \(Self.name(client, context)) failed")
        }
        defer {
            // krb5_free_cred_contents zeroes the key as it frees it; zeroed here first all the same,
            // so no libkrb5 version leaves it behind.
            if let key = renewed.keyblock.contents { SecureArena.wipe(key, count: Int(renewed.keyblock.length)) }
            ccached_krb5_free_cred_contents(context, &renewed)
        }
        // Encoded by our own code into a buffer of its exact size, not by krb5_marshal_credentials,
        // whose growing buffer leaves an unzeroed copy of the key in freed heap.
        do {
            return try KerberosCredentialEncoder.credential(from: renewed)
        } catch {
            throw RenewalError(message: "the renewed ticket could not be read back: \(error)")
        }
    }

    private func makeContext(_ context: inout krb5_context?) -> Int {
        guard let configurationPath else { return Int(ccached_krb5_init_context(&context)) }
        var profile: profile_t?
        let loaded = ccached_profile_init_path(configurationPath, &profile)
        guard loaded == 0 else { return loaded }
        defer { ccached_profile_release(profile) }
        return Int(ccached_krb5_init_context_profile(profile, 0, &context))
    }

    private static func message(_ code: krb5_error_code, _ context: krb5_context) -> String {
        guard let text = ccached_krb5_get_error_message(context, code) else { return "error \(code)" }
        defer { ccached_krb5_free_error_message(context, text) }
        return String(cString: text)
    }

    private static func name(_ principal: krb5_const_principal, _ context: krb5_context) -> String {
        var text: UnsafeMutablePointer<CChar>?
        guard ccached_krb5_unparse_name(context, principal, &text) == 0, let text else {
            return "an unnamed principal"
        }
        defer { ccached_krb5_free_unparsed_name(context, text) }
        return String(cString: text)
    }
}
