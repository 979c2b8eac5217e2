import CKrb5
import Glibc

/// N real `krb5_creds` for one client: servers `svc<i>/host.bench@BENCH.TEST`, an aes256 session
/// key, times around now, and a 1,200-byte DER ticket naming the same server.
///
/// Everything inside the structs comes from `malloc` (or from libkrb5, which uses it too), so one
/// `krb5_free_cred_contents` per credential releases it all.
final class SyntheticCredentials {
    static let realm = "BENCH.TEST"
    static let clientName = "bench@BENCH.TEST"
    static let ticketSize = 1200

    let context: Krb5Context
    let count: Int
    let credentials: UnsafeMutablePointer<krb5_creds>
    /// Retrieval templates: client and server only, borrowing the principals of `credentials`.
    let templates: UnsafeMutablePointer<krb5_creds>
    /// The cache's default principal (owned here).
    let client: krb5_principal

    init(context: Krb5Context, count: Int) throws(Krb5Failure) {
        self.context = context
        self.count = count
        client = try context.principal(Self.clientName)
        credentials = .allocate(capacity: count)
        credentials.initialize(repeating: krb5_creds(), count: count)
        templates = .allocate(capacity: count)
        templates.initialize(repeating: krb5_creds(), count: count)
        let now = krb5_timestamp(truncatingIfNeeded: time(nil))
        for index in 0..<count {
            let service = "svc\(index)"
            let host = "host.bench"
            var creds = krb5_creds()
            creds.magic = krb5_magic(KV5M_CREDS)
            try context.check(krb5_copy_principal(context.raw, client, &creds.client), "krb5_copy_principal")
            creds.server = try context.principal("\(service)/\(host)@\(Self.realm)")
            creds.keyblock.magic = krb5_magic(KV5M_KEYBLOCK)
            creds.keyblock.enctype = krb5_enctype(ENCTYPE_AES256_CTS_HMAC_SHA1_96)
            creds.keyblock.length = 32
            creds.keyblock.contents = Self.mallocCopy((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) })
                .assumingMemoryBound(to: krb5_octet.self)
            creds.times.authtime = now
            creds.times.starttime = now
            creds.times.endtime = now + 10 * 3600
            creds.times.renew_till = now + 7 * 86400
            creds.is_skey = 0
            creds.ticket_flags = krb5_flags(
                truncatingIfNeeded: TKT_FLG_FORWARDABLE | TKT_FLG_RENEWABLE | TKT_FLG_PRE_AUTH)
            let ticket = TicketEncoder.ticket(realm: Self.realm, components: [service, host], size: Self.ticketSize)
            creds.ticket.magic = krb5_magic(KV5M_DATA)
            creds.ticket.length = UInt32(ticket.count)
            creds.ticket.data = Self.mallocCopy(ticket).assumingMemoryBound(to: CChar.self)
            credentials[index] = creds

            var template = krb5_creds()
            template.client = creds.client
            template.server = creds.server
            templates[index] = template
        }
    }

    deinit {
        for index in 0..<count { krb5_free_cred_contents(context.raw, credentials + index) }
        credentials.deinitialize(count: count)
        credentials.deallocate()
        templates.deinitialize(count: count)
        templates.deallocate()
        krb5_free_principal(context.raw, client)
    }

    /// The service index of a credential's server (`svc<i>`), read from its first component.
    static func serviceIndex(of credentials: borrowing krb5_creds) -> Int? {
        guard let server = credentials.server, server.pointee.length >= 1, let first = server.pointee.data else {
            return nil
        }
        let component = first.pointee
        guard let bytes = component.data else { return nil }
        let text = String(
            decoding: UnsafeRawBufferPointer(start: bytes, count: Int(component.length)), as: UTF8.self)
        guard text.hasPrefix("svc") else { return nil }
        return Int(text.dropFirst(3))
    }

    private static func mallocCopy(_ bytes: [UInt8]) -> UnsafeMutableRawPointer {
        let memory = malloc(max(bytes.count, 1))!
        bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return memory
    }
}
