import CCacheDaemon
import CredentialStore
import KCM

/// A store and a way to send it one request and read back the reply frame.
struct DispatchHarness {
    let store: CredentialStore
    var authorized = true
    /// What the daemon would report about itself in CCACHED_STATUS.
    var server = ServerFacts()

    init(ownerUID: UInt32 = 1000, limits: CredentialStoreLimits = CredentialStoreLimits()) {
        store = CredentialStore(ownerUID: ownerUID, limits: limits)
    }

    /// The reply frame split into its parts, after checking its framing.
    struct Reply {
        var length: UInt32
        var transport: UInt32
        var status: KCMStatus
        var payload: [UInt8]
    }

    func send(_ request: KCMRequest) -> Reply { send(body: request.encodedBody()) }

    func send(body: [UInt8]) -> Reply {
        var writer = KCMReplyWriter()
        _ = RequestDispatcher.respond(to: body, authorized: authorized, store: store, server: server, reply: &writer)
        var reader = KCMReader(writer.bytes)
        let length = try! reader.readUInt32()
        let transport = try! reader.readUInt32()
        let status = KCMStatus(rawValue: try! reader.readInt32())
        return Reply(length: length, transport: transport, status: status, payload: Array(writer.bytes[12...]))
    }
}

let alice = KCMPrincipal("alice@KCMTEST.LOCAL")
let tgtServer = KCMPrincipal("krbtgt/KCMTEST.LOCAL@KCMTEST.LOCAL", nameType: 2)

func ticket(
    _ server: String, client: KCMPrincipal = alice, endtime: UInt32 = 2_000_000_000, ticketBytes: Int = 64
) -> KCMCredential {
    KCMCredentialFields(
        client: client, server: KCMPrincipal(server), enctype: 18, key: [UInt8](repeating: 1, count: 32),
        authtime: 1_700_000_000, starttime: 1_700_000_000, endtime: endtime, renewTill: 0,
        ticketFlags: 0x00C1_0000, ticket: [UInt8](repeating: 0x61, count: ticketBytes)
    ).credential()
}
