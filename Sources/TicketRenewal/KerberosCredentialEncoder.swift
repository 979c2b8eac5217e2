// Internal: the krb5 types stay out of this module's interface (see KerberosRenewer).
internal import CKrb5Loader
import KCM
import SecureMemory

/// Encodes a libkrb5 `krb5_creds` as the KCM v4 credential (FILE ccache v4 "cred", what
/// `krb5_marshal_credentials` writes) with our own code, straight into a buffer of its exact
/// length: nothing is reallocated on the way, so no copy of the session key is left in freed heap.
/// libkrb5's own marshaller grows a `k5buf` with `realloc`, which leaves the old, unzeroed block
/// behind; that copy of each renewed key used to outlive `kdestroy`.
///
/// The buffer is zeroed as soon as the bytes are in ``SecureBytes`` (``KCMCredential``).
enum KerberosCredentialEncoder {
    static func credential(from creds: krb5_creds) throws(KCMDecodingError) -> KCMCredential {
        var writer = KCMWriter(capacity: encodedLength(of: creds))
        defer { writer.wipe() }
        write(creds, to: &writer)
        return try KCMCredential(parsing: writer.bytes)
    }

    /// The exact length ``write(_:to:)`` produces.
    static func encodedLength(of creds: krb5_creds) -> Int {
        var length = principalLength(creds.client) + principalLength(creds.server)
        length += 2 + 4 + Int(creds.keyblock.length)  // enctype, key
        length += 4 * 4 + 1 + 4  // four times, is_skey, flags
        length += 4
        forEach(creds.addresses) { length += 2 + 4 + Int($0.pointee.length) }
        length += 4
        forEach(creds.authdata) { length += 2 + 4 + Int($0.pointee.length) }
        length += 4 + Int(creds.ticket.length) + 4 + Int(creds.second_ticket.length)
        return length
    }

    static func write(_ creds: krb5_creds, to writer: inout KCMWriter) {
        writePrincipal(creds.client, to: &writer)
        writePrincipal(creds.server, to: &writer)
        writer.write(UInt16(truncatingIfNeeded: creds.keyblock.enctype))
        writeData(creds.keyblock.contents, length: creds.keyblock.length, to: &writer)
        writer.write(UInt32(bitPattern: creds.times.authtime))
        writer.write(UInt32(bitPattern: creds.times.starttime))
        writer.write(UInt32(bitPattern: creds.times.endtime))
        writer.write(UInt32(bitPattern: creds.times.renew_till))
        writer.write(UInt8(truncatingIfNeeded: creds.is_skey))
        writer.write(UInt32(bitPattern: creds.ticket_flags))
        writer.write(UInt32(count(creds.addresses)))
        forEach(creds.addresses) { address in
            writer.write(UInt16(truncatingIfNeeded: address.pointee.addrtype))
            writeData(address.pointee.contents, length: address.pointee.length, to: &writer)
        }
        writer.write(UInt32(count(creds.authdata)))
        forEach(creds.authdata) { element in
            writer.write(UInt16(truncatingIfNeeded: element.pointee.ad_type))
            writeData(element.pointee.contents, length: element.pointee.length, to: &writer)
        }
        writeData(creds.ticket, to: &writer)
        writeData(creds.second_ticket, to: &writer)
    }

    private static func principalLength(_ principal: krb5_principal?) -> Int {
        guard let principal else { return 4 + 4 + 4 }
        var length = 4 + 4 + 4 + Int(principal.pointee.realm.length)
        for index in 0..<Int(max(0, principal.pointee.length)) {
            length += 4 + Int(principal.pointee.data[index].length)
        }
        return length
    }

    /// `s32 name type, u32 count, data realm, data component × count`; a missing principal as
    /// libkrb5 writes it (no components, empty realm).
    private static func writePrincipal(_ principal: krb5_principal?, to writer: inout KCMWriter) {
        guard let principal else {
            writer.write(UInt32(0))
            writer.write(UInt32(0))
            writer.write(UInt32(0))
            return
        }
        let count = Int(max(0, principal.pointee.length))
        writer.write(principal.pointee.type)
        writer.write(UInt32(count))
        writeData(principal.pointee.realm, to: &writer)
        for index in 0..<count { writeData(principal.pointee.data[index], to: &writer) }
    }

    private static func writeData(_ data: krb5_data, to writer: inout KCMWriter) {
        writeData(data.data, length: data.length, to: &writer)
    }

    private static func writeData<T>(_ bytes: UnsafeMutablePointer<T>?, length: UInt32, to writer: inout KCMWriter) {
        guard let bytes, length > 0 else {
            writer.write(UInt32(0))
            return
        }
        let raw = UnsafeRawPointer(bytes).assumingMemoryBound(to: UInt8.self)
        writer.writeData(UnsafeBufferPointer(start: raw, count: Int(length)))
    }

    /// The elements of a NULL-terminated array of pointers.
    private static func forEach<T>(
        _ list: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ body: (UnsafeMutablePointer<T>) -> Void
    ) {
        guard let list else { return }
        var index = 0
        while let element = list[index] {
            body(element)
            index += 1
        }
    }

    private static func count<T>(_ list: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?) -> Int {
        var count = 0
        forEach(list) { _ in count += 1 }
        return count
    }
}
