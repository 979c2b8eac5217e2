import CCacheDoor
import CSupport
import Foundation
import SessionRuntime
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("DoorPeer: who connected, without a pid race")
struct DoorPeerTests {
    @Test("a live peer process is identified with its SO_PEERCRED ids and the session the rule gives it")
    func livePeer() throws {
        // Another process connects and stays until it is identified.
        let child = try ConnectingChild(after: "time.sleep(30)")
        let connection = ccached_accept_cloexec(child.listener)
        #expect(connection >= 0)
        defer { close(connection) }
        guard case .identified(let peer) = DoorPeer.identify(socket: connection) else {
            Issue.record("the connected child was not identified as the peer")
            return
        }
        #expect(peer.pid == child.pid)
        #expect(peer.uid == getuid())
        #expect(peer.gid == getgid())
        #expect(peer.session == SessionIdentity.of(pid: child.pid, uid: getuid()))
    }

    @Test("a connection from the door's own pid is never routed (a link led a connect back to it)")
    func selfConnection() {
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        guard case .failed(.selfConnection) = DoorPeer.identify(socket: ends[0]) else {
            Issue.record("a connection from this very process was not refused as the door's own")
            return
        }
    }

    @Test("a peer that connected, exited and was reaped is never routed (its pid may be reused)")
    func reapedPeer() throws {
        // A real other process connects and exits; we reap it before looking at the connection.
        let child = try ConnectingChild(after: "pass")
        #expect(child.reap() == 0, "python3 could not connect")
        let connection = ccached_accept_cloexec(child.listener)
        #expect(connection >= 0)
        defer { close(connection) }
        switch DoorPeer.identify(socket: connection) {
        case .gone: break
        case .identified(let peer): Issue.record("a reaped peer was identified as \(peer)")
        case .failed(let error): Issue.record("identify failed instead of reporting the peer gone: \(error)")
        }
    }
}
