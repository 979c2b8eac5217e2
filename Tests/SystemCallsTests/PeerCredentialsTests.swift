import Glibc
import SystemCalls
import Testing

@Suite("PeerCredentials")
struct PeerCredentialsTests {
    @Test("the peer credentials of a socketpair name this process's pid, uid and gid")
    func socketpairNamesUs() throws {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let peer = try PeerCredentials(socket: fds[1])
        #expect(peer == PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))
    }

    @Test("a descriptor that is not a socket throws its Errno")
    func notASocket() {
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        #expect(throws: Errno(rawValue: ENOTSOCK)) { try PeerCredentials(socket: ends[0]) }
    }
}
