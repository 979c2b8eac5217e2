import CKrb5
import Glibc
import KCM
import SecureMemory

/// Reads and writes credential caches of any type libkrb5 knows (`FILE:`, `DIR:`, `KEYRING:`,
/// `MEMORY:`, …) through libkrb5 itself, converting credentials with MIT's own marshalling
/// (`krb5_marshal_credentials`, the same v4 encoding KCM uses). `ccachectl import`/`export` and
/// the renewal tests share it.
package final class Krb5Library {
    private var context: krb5_context?

    /// A libkrb5 context reading `configuration` (a krb5.conf path), or KRB5_CONFIG and the system
    /// configuration when nil.
    package init(configuration: String? = nil) throws(Krb5Error) {
        let code: krb5_error_code
        if let configuration {
            var profile: profile_t?
            guard profile_init_path(configuration, &profile) == 0 else {
                throw Krb5Error("cannot read the Kerberos configuration \(configuration)")
            }
            // The context keeps its own copy of the profile.
            defer { profile_release(profile) }
            code = krb5_init_context_profile(profile, 0, &context)
        } else {
            code = krb5_init_context(&context)
        }
        guard code == 0, context != nil else {
            throw Krb5Error("cannot initialise the Kerberos library (error \(code)); check KRB5_CONFIG")
        }
    }

    deinit { krb5_free_context(context) }

    /// The text of a krb5 error code.
    private func message(_ code: krb5_error_code) -> String {
        guard let text = krb5_get_error_message(context, code) else { return "error \(code)" }
        defer { krb5_free_error_message(context, text) }
        return String(cString: text)
    }

    private func check(_ code: krb5_error_code, _ what: @autoclosure () -> String) throws(Krb5Error) {
        guard code == 0 else { throw Krb5Error("\(what()): \(message(code))") }
    }

    /// The principal and every credential (config entries included) of the cache `name`.
    package func read(cache name: String) throws(Krb5Error) -> (principal: KCMPrincipal, credentials: [KCMCredential]) {
        var cache: krb5_ccache?
        try check(krb5_cc_resolve(context, name, &cache), "cannot open \(name)")
        defer { krb5_cc_close(context, cache) }
        var principal: krb5_principal?
        try check(krb5_cc_get_principal(context, cache, &principal), "cannot read \(name)")
        defer { krb5_free_principal(context, principal) }
        let kcmPrincipal = Self.convert(principal!)

        var cursor: krb5_cc_cursor?
        try check(krb5_cc_start_seq_get(context, cache, &cursor), "cannot read the credentials of \(name)")
        defer { krb5_cc_end_seq_get(context, cache, &cursor) }
        var credentials: [KCMCredential] = []
        var creds = krb5_creds()
        while krb5_cc_next_cred(context, cache, &cursor, &creds) == 0 {
            defer { krb5_free_cred_contents(context, &creds) }
            var data: UnsafeMutablePointer<krb5_data>?
            try check(krb5_marshal_credentials(context, &creds, &data), "cannot encode a credential of \(name)")
            defer { krb5_free_data(context, data) }
            // The encoding holds the session key: it moves into SecureBytes (KCMCredential) and both
            // ordinary buffers on the way are wiped before they are freed (issue 12, item 7).
            let length = Int(data!.pointee.length)
            var bytes = Array(UnsafeRawBufferPointer(start: data!.pointee.data, count: length))
            defer {
                if let base = data!.pointee.data { explicit_bzero(base, length) }
                bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { explicit_bzero(base, $0.count) } }
            }
            do {
                credentials.append(try KCMCredential(parsing: bytes))
            } catch {
                throw Krb5Error("a credential of \(name) could not be read: \(error)")
            }
        }
        return (kcmPrincipal, credentials)
    }

    /// Replaces the cache `name` with `principal` and `credentials`.
    package func write(cache name: String, principal: KCMPrincipal, credentials: [KCMCredential]) throws(Krb5Error) {
        var cache: krb5_ccache?
        try check(krb5_cc_resolve(context, name, &cache), "cannot open \(name)")
        defer { krb5_cc_close(context, cache) }
        let krbPrincipal = Self.makePrincipal(principal)
        defer { krb5_free_principal(context, krbPrincipal) }
        try check(krb5_cc_initialize(context, cache, krbPrincipal), "cannot initialise \(name)")
        for credential in credentials {
            var out: UnsafeMutablePointer<krb5_creds>?
            let code = credential.withCBuffer { bytes, length in
                var data = krb5_data(magic: 0, length: length, data: bytes)
                return krb5_unmarshal_credentials(context, &data, &out)
            }
            try check(code, "cannot decode a credential for \(name)")
            defer { krb5_free_creds(context, out) }
            try check(krb5_cc_store_cred(context, cache, out), "cannot store a credential in \(name)")
        }
    }

    /// The server principal inside the credential's ticket (klist's "Ticket server:"), decoded by
    /// libkrb5 straight from the SecureBytes; nil when the ticket does not decode. Only the ticket's
    /// outer, unencrypted part is read: the session key is not touched.
    package func ticketServer(of credential: KCMCredential) -> KCMPrincipal? {
        let range = Int(credential.ticketRange.lowerBound)..<Int(credential.ticketRange.upperBound)
        guard !range.isEmpty else { return nil }
        var ticket: UnsafeMutablePointer<krb5_ticket>?
        let code = credential.withCBuffer(range) { bytes, length in
            var data = krb5_data(magic: 0, length: length, data: bytes)
            return krb5_decode_ticket(&data, &ticket)
        }
        guard code == 0, let ticket else { return nil }
        defer { krb5_free_ticket(context, ticket) }
        guard let server = ticket.pointee.server else { return nil }
        return Self.convert(server)
    }

    /// Destroys the cache `name`.
    package func destroy(cache name: String) throws(Krb5Error) {
        var cache: krb5_ccache?
        try check(krb5_cc_resolve(context, name, &cache), "cannot open \(name)")
        try check(krb5_cc_destroy(context, cache), "cannot remove \(name)")
    }

    private static func convert(_ principal: krb5_principal) -> KCMPrincipal {
        let value = principal.pointee
        func bytes(_ data: krb5_data) -> [UInt8] {
            guard data.length > 0, let pointer = data.data else { return [] }
            return Array(UnsafeRawBufferPointer(start: pointer, count: Int(data.length)))
        }
        var components: [[UInt8]] = []
        for index in 0..<Int(value.length) { components.append(bytes(value.data[index])) }
        return KCMPrincipal(nameType: value.type, realm: bytes(value.realm), components: components)
    }

    /// A principal allocated the way `krb5_free_principal` frees it.
    private static func makePrincipal(_ principal: KCMPrincipal) -> krb5_principal {
        func data(_ bytes: [UInt8]) -> krb5_data {
            let pointer = malloc(max(1, bytes.count))!.assumingMemoryBound(to: CChar.self)
            bytes.withUnsafeBytes { if let base = $0.baseAddress { memcpy(pointer, base, bytes.count) } }
            return krb5_data(magic: 0, length: UInt32(bytes.count), data: pointer)
        }
        let result = calloc(1, MemoryLayout<krb5_principal_data>.size)!.assumingMemoryBound(
            to: krb5_principal_data.self)
        let components = calloc(max(1, principal.components.count), MemoryLayout<krb5_data>.size)!
            .assumingMemoryBound(to: krb5_data.self)
        for (index, component) in principal.components.enumerated() { components[index] = data(component) }
        result.pointee.realm = data(principal.realm)
        result.pointee.data = components
        result.pointee.length = Int32(principal.components.count)
        result.pointee.type = principal.nameType
        return result
    }
}

/// A libkrb5 call that failed, as one sentence naming what was being done and libkrb5's message.
package struct Krb5Error: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
