import CKrb5
import Glibc

/// A libkrb5 call that failed: which call, its code and libkrb5's message for it.
struct Krb5Failure: Error, CustomStringConvertible {
    let operation: String
    let code: krb5_error_code
    let message: String

    var description: String { "\(operation): \(message) (\(code))" }
}

/// One `krb5_context`. libkrb5 reads `KRB5_CONFIG` when the context is made, so the environment
/// must point at the benchmark's krb5.conf fragment before this is created.
final class Krb5Context {
    let raw: krb5_context

    init() throws(Krb5Failure) {
        var context: krb5_context?
        let code = krb5_init_context(&context)
        guard code == 0, let context else {
            throw Krb5Failure(operation: "krb5_init_context", code: code, message: "cannot create a context")
        }
        raw = context
    }

    deinit { krb5_free_context(raw) }

    /// libkrb5's text for `code`.
    func message(for code: krb5_error_code) -> String {
        guard let text = krb5_get_error_message(raw, code) else { return "error \(code)" }
        defer { krb5_free_error_message(raw, text) }
        return String(cString: text)
    }

    func check(_ code: krb5_error_code, _ operation: String) throws(Krb5Failure) {
        guard code == 0 else { throw Krb5Failure(operation: operation, code: code, message: message(for: code)) }
    }

    /// Parses `name` into a principal the caller owns (free with `krb5_free_principal`).
    func principal(_ name: String) throws(Krb5Failure) -> krb5_principal {
        var principal: krb5_principal?
        try check(krb5_parse_name(raw, name, &principal), "krb5_parse_name \(name)")
        return principal!
    }

    /// Resolves a ccache name such as `KCM:x` or `FILE:/tmp/y`.
    func resolve(_ name: String) throws(Krb5Failure) -> Krb5CCache {
        var cache: krb5_ccache?
        try check(krb5_cc_resolve(raw, name, &cache), "krb5_cc_resolve \(name)")
        return Krb5CCache(context: self, raw: cache!, name: name)
    }
}

/// The error codes the benchmark tells apart, as libkrb5's `krb5_error_code`.
enum Krb5Code {
    static let notSupported = krb5_error_code(KRB5_CC_NOSUPP)
    static let end = krb5_error_code(KRB5_CC_END)
    /// What a KCM server answers for an opcode it does not implement.
    static let internalError = krb5_error_code(KRB5_FCC_INTERNAL)
}
