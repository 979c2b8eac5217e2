import KCM

/// A ticket built with ``KCMCredentialFields``; every field can be set. The store tests' builder.
package func ticket(
    client: KCMPrincipal = Fixture.alice, server: KCMPrincipal = Fixture.host, enctype: Int16 = 18,
    authtime: UInt32 = Fixture.now, starttime: UInt32 = Fixture.now, endtime: UInt32 = Fixture.now + 36000,
    renewTill: UInt32 = 0, isSKey: UInt8 = 0, flags: UInt32 = 0x0081_0000,
    authdata: [KCMCredentialFields.AuthData] = [], ticket ticketBytes: [UInt8] = [0x61, 0x03, 0x02, 0x01, 0x05],
    secondTicket: [UInt8] = []
) -> KCMCredential {
    KCMCredentialFields(
        client: client, server: server, enctype: enctype, key: [UInt8](repeating: 0x42, count: 32),
        times: KCMTicketTimes(authtime: authtime, starttime: starttime, endtime: endtime, renewTill: renewTill),
        isSKey: isSKey,
        ticketFlags: flags, addresses: [.init(type: 2, data: [127, 0, 0, 1])], authdata: authdata,
        ticket: ticketBytes, secondTicket: secondTicket
    ).credential()
}

/// A ticket for the service named `server` (`a/b@REALM`) with `ticketBytes` bytes of ticket: the
/// daemon tests' builder, where only the server, client, lifetime and size matter.
package func ticket(
    _ server: String, client: KCMPrincipal = Fixture.alice, endtime: UInt32 = 2_000_000_000, ticketBytes: Int = 64
) -> KCMCredential {
    KCMCredentialFields(
        client: client, server: KCMPrincipal(server), enctype: 18, key: [UInt8](repeating: 1, count: 32),
        times: KCMTicketTimes(authtime: 1_700_000_000, starttime: 1_700_000_000, endtime: endtime, renewTill: 0),
        ticketFlags: 0x00C1_0000, ticket: [UInt8](repeating: 0x61, count: ticketBytes)
    ).credential()
}
