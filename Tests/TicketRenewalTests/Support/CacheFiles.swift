import CKrb5
import KCM
import SecureMemory
import TestSupport

/// Runs `body` with a libkrb5 context reading `configuration` and the ccache `name` resolved in it.
private func withCache<T>(
    _ name: String, configuration: String, _ body: (krb5_context, krb5_ccache) throws -> T
) throws -> T {
    var profile: profile_t?
    guard profile_init_path(configuration, &profile) == 0 else {
        throw TestbedError.setup("cannot read \(configuration)")
    }
    defer { profile_release(profile) }
    var context: krb5_context?
    guard krb5_init_context_profile(profile, 0, &context) == 0, let context else {
        throw TestbedError.setup("krb5_init_context_profile failed")
    }
    defer { krb5_free_context(context) }
    var cache: krb5_ccache?
    guard krb5_cc_resolve(context, name, &cache) == 0, let cache else {
        throw TestbedError.setup("cannot open \(name)")
    }
    defer { krb5_cc_close(context, cache) }
    return try body(context, cache)
}

/// The credentials of a FILE (or any) ccache as KCM v4 bytes, read with libkrb5's own marshalling.
func readCache(_ name: String, configuration: String) throws -> [KCMCredential] {
    try withCache(name, configuration: configuration) { context, cache in
        var cursor: krb5_cc_cursor?
        guard krb5_cc_start_seq_get(context, cache, &cursor) == 0 else {
            throw TestbedError.setup("cannot read \(name)")
        }
        defer { krb5_cc_end_seq_get(context, cache, &cursor) }
        var credentials: [KCMCredential] = []
        var creds = krb5_creds()
        while krb5_cc_next_cred(context, cache, &cursor, &creds) == 0 {
            defer { krb5_free_cred_contents(context, &creds) }
            var data: UnsafeMutablePointer<krb5_data>?
            guard krb5_marshal_credentials(context, &creds, &data) == 0, let data else {
                throw TestbedError.setup("cannot marshal a credential of \(name)")
            }
            defer { krb5_free_data(context, data) }
            let bytes = Array(UnsafeRawBufferPointer(start: data.pointee.data, count: Int(data.pointee.length)))
            credentials.append(try KCMCredential(parsing: bytes))
        }
        return credentials
    }
}

/// Writes `credentials` into a new cache `name` (its principal: the first credential's client).
func writeCache(_ name: String, _ credentials: [KCMCredential], configuration: String) throws {
    try withCache(name, configuration: configuration) { context, cache in
        for (index, credential) in credentials.enumerated() {
            var out: UnsafeMutablePointer<krb5_creds>?
            let code = credential.withCBuffer { bytes, length in
                var data = krb5_data(magic: 0, length: length, data: bytes)
                return krb5_unmarshal_credentials(context, &data, &out)
            }
            guard code == 0, let out else { throw TestbedError.setup("cannot decode a credential") }
            defer { krb5_free_creds(context, out) }
            if index == 0, krb5_cc_initialize(context, cache, out.pointee.client) != 0 {
                throw TestbedError.setup("cannot initialise \(name)")
            }
            guard krb5_cc_store_cred(context, cache, out) == 0 else {
                throw TestbedError.setup("cannot store in \(name)")
            }
        }
    }
}
