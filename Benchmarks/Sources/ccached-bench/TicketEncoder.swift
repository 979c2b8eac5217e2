/// Builds a DER-encoded Kerberos `Ticket` (RFC 4120 §5.3) of an exact size, so that libkrb5's
/// `krb5_cc_store_cred` decodes it as it does a real ticket (it compares the ticket's server with
/// the credential's). The encrypted part is filler: nothing ever decrypts it.
enum TicketEncoder {
    /// A ticket for `components@realm` whose encoding is exactly `size` bytes.
    static func ticket(realm: String, components: [String], size: Int) -> [UInt8] {
        // The length fields grow with the filler, so settle the filler length by trying.
        var filler = max(0, size - 64)
        for _ in 0..<8 {
            let encoded = encode(realm: realm, components: components, fillerLength: filler)
            if encoded.count == size { return encoded }
            filler = max(0, filler + size - encoded.count)
        }
        return encode(realm: realm, components: components, fillerLength: filler)
    }

    private static func encode(realm: String, components: [String], fillerLength: Int) -> [UInt8] {
        let names = components.map { element(0x1B, Array($0.utf8)) }.flatMap { $0 }
        let principalName = element(
            0x30, context(0, integer(2)) + context(1, element(0x30, names)))
        var filler = [UInt8](repeating: 0, count: fillerLength)
        for index in filler.indices { filler[index] = UInt8(truncatingIfNeeded: index &* 131 &+ 7) }
        let encryptedData = element(
            0x30, context(0, integer(18)) + context(1, integer(2)) + context(2, element(0x04, filler)))
        let body = element(
            0x30,
            context(0, integer(5)) + context(1, element(0x1B, Array(realm.utf8))) + context(2, principalName)
                + context(3, encryptedData))
        return element(0x61, body)  // [APPLICATION 1]
    }

    private static func context(_ number: UInt8, _ content: [UInt8]) -> [UInt8] {
        element(0xA0 | number, content)
    }

    /// A small non-negative INTEGER.
    private static func integer(_ value: UInt8) -> [UInt8] {
        value < 0x80 ? element(0x02, [value]) : element(0x02, [0, value])
    }

    private static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var encoded: [UInt8] = [tag]
        let length = content.count
        if length < 0x80 {
            encoded.append(UInt8(length))
        } else {
            var octets: [UInt8] = []
            var rest = length
            while rest > 0 {
                octets.insert(UInt8(rest & 0xFF), at: 0)
                rest >>= 8
            }
            encoded.append(0x80 | UInt8(octets.count))
            encoded += octets
        }
        return encoded + content
    }
}
