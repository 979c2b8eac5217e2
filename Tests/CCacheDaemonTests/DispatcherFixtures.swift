import CCacheDaemon
import CredentialStore
import KCM
import Logging
import Synchronization
import SystemCalls
import TestSupport

/// A daemon's shared state and a way to send it one request, as a peer would, through the same
/// ``ConnectionSession`` the daemon serves connections with, and read back the reply frame.
struct DispatchHarness {
    let state: DaemonState
    /// Whether the peer is the owner (uid 1000) or a stranger (uid 4242).
    var authorized = true

    init(ownerUID: UInt32 = 1000, limits: CredentialStoreLimits = CredentialStoreLimits()) {
        var configuration = DaemonConfiguration(socketPath: "/unused", ownerUID: ownerUID)
        configuration.storeLimits = limits
        state = DaemonState(configuration: configuration)
    }

    /// The store's totals, read under its lock.
    var store: StoreTotals {
        state.store.withLock {
            StoreTotals(
                cacheCount: $0.cacheCount, credentialCount: $0.credentialCount, credentialBytes: $0.credentialBytes,
                defaultName: $0.defaultName)
        }
    }

    struct StoreTotals {
        var cacheCount: Int
        var credentialCount: Int
        var credentialBytes: Int
        var defaultName: KCMCacheName
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
        let owner = state.configuration.ownerUID
        let peer = PeerCredentials(pid: 1, uid: authorized ? owner : 4242, gid: 1)
        var session = ConnectionSession(
            peer: peer, state: state, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        defer { session.wipe() }
        var frames: [[UInt8]] = []
        let length = UInt32(body.count)
        let frame =
            [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
        let open = session.receive(frame, now: 0) { reply in
            // A copy: the session zeroes the reply's storage as soon as this returns.
            frames.append(reply.map { $0 })
            return true
        }
        precondition(open && frames.count == 1, "one frame in, one reply out")
        let header = try! KCMReplyHeader(decoding: frames[0])
        return Reply(
            length: header.replyLength, transport: header.transport, status: header.status,
            payload: Array(frames[0][KCMReplyHeader.length...]))
    }
}

/// The fixture principals under the names the dispatcher tests use.
let alice = Fixture.alice
let tgtServer = Fixture.krbtgt
