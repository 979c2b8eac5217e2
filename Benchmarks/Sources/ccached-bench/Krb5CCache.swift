import CKrb5

/// One resolved ccache handle. For `KCM:` the handle keeps its connection to the daemon open, as
/// every long-lived krb5 program does.
final class Krb5CCache {
    let context: Krb5Context
    let name: String
    private var raw: krb5_ccache?

    init(context: Krb5Context, raw: krb5_ccache, name: String) {
        self.context = context
        self.raw = raw
        self.name = name
    }

    deinit {
        if let raw { krb5_cc_close(context.raw, raw) }
    }

    func initialize(principal: krb5_principal) -> krb5_error_code {
        krb5_cc_initialize(context.raw, raw, principal)
    }

    func store(_ credentials: UnsafeMutablePointer<krb5_creds>) -> krb5_error_code {
        krb5_cc_store_cred(context.raw, raw, credentials)
    }

    /// Retrieves a match for `template` and frees it at once (the caller only times the call).
    func retrieve(flags: krb5_flags, template: UnsafeMutablePointer<krb5_creds>) -> krb5_error_code {
        var found = krb5_creds()
        let code = krb5_cc_retrieve_cred(context.raw, raw, flags, template, &found)
        if code == 0 { krb5_free_cred_contents(context.raw, &found) }
        return code
    }

    func remove(flags: krb5_flags, template: UnsafeMutablePointer<krb5_creds>) -> krb5_error_code {
        krb5_cc_remove_cred(context.raw, raw, flags, template)
    }

    /// One full iteration, as `klist` does it: start, every `next_cred`, end. `body` sees each
    /// credential before it is freed. Returns how many there were.
    func iterate(_ body: (borrowing krb5_creds) -> Void = { _ in }) throws(Krb5Failure) -> Int {
        var cursor: krb5_cc_cursor?
        try context.check(krb5_cc_start_seq_get(context.raw, raw, &cursor), "krb5_cc_start_seq_get \(name)")
        var count = 0
        var credentials = krb5_creds()
        var code: krb5_error_code = 0
        while true {
            code = krb5_cc_next_cred(context.raw, raw, &cursor, &credentials)
            guard code == 0 else { break }
            body(credentials)
            krb5_free_cred_contents(context.raw, &credentials)
            count += 1
        }
        krb5_cc_end_seq_get(context.raw, raw, &cursor)
        guard code == Krb5Code.end else {
            throw Krb5Failure(operation: "krb5_cc_next_cred \(name)", code: code, message: context.message(for: code))
        }
        return count
    }

    /// Destroys the cache; the handle is gone afterwards.
    func destroy() -> krb5_error_code {
        guard let handle = raw else { return 0 }
        raw = nil
        return krb5_cc_destroy(context.raw, handle)
    }
}
