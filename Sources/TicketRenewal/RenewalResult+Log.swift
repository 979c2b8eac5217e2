import Glibc
import KCM
import SecureMemory

extension RenewalResult {
    /// The one log line for this result, or nil when it is not to be logged (a failure whose cause
    /// was already logged for this ticket). Names the ticket's server and the cache, never a byte
    /// of the ticket.
    public var logLine: String? {
        let ticket = Self.serverName(candidate.credential)
        let cache = candidate.cacheName
        switch outcome {
        case .renewed(let renewed):
            return "renewed \(ticket) in \(cache): valid until \(Self.time(renewed.times.endtime)), "
                + "renewable until \(Self.time(renewed.times.renewTill))"
        case .failed(let error, let firstOfCause, let retryAt):
            guard firstOfCause else { return nil }
            let next = retryAt.map { "next attempt at \(Self.time($0))" } ?? "not retried"
            return "renewal of \(ticket) in \(cache) failed, \(next): \(error.message)"
        case .stopped(let reason):
            return
                "renewal of \(ticket) in \(cache) stops: \(reason) (expires \(Self.time(candidate.credential.times.endtime)))"
        }
    }

    /// `a/b@REALM` from the server principal's bytes alone (the key is never copied out).
    static func serverName(_ credential: KCMCredential) -> String {
        let layout = credential.server
        var reader = KCMReader(Array(credential.bytes[Int(layout.start)..<Int(layout.end)]))
        return (try? KCMPrincipal.read(from: &reader).description) ?? "a ticket"
    }

    /// Local time as `YYYY-MM-DD HH:MM:SS`.
    static func time(_ seconds: UInt32) -> String {
        var value = time_t(seconds)
        var parts = tm()
        guard localtime_r(&value, &parts) != nil else { return "\(seconds)" }
        var buffer = [CChar](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S", &parts)
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
