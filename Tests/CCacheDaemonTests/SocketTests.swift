import CCacheDaemon
import Foundation
import SystemCalls
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The listener's safety rules and the peer check, on real sockets in a private directory.
@Suite("UnixSocketListener and peers")
struct SocketTests {
    func privateDirectory() throws -> String {
        try ScratchDirectory.make("ccached-unit").path
    }

    @Test("bind creates a 0600 socket, refuses a second listener, and close removes only its own path")
    func bindAndClose() throws {
        let directory = try privateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/kcm.sock"
        let listener = try UnixSocketListener.bind(path: path)
        var info = stat()
        #expect(lstat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(throws: DaemonError.alreadyRunning(path: path)) { try UnixSocketListener.bind(path: path) }
        // Someone replaced the path: close must not remove what is not ours.
        unlink(path)
        #expect(FileManager.default.createFile(atPath: path, contents: Data("other".utf8)))
        listener.close()
        #expect(FileManager.default.fileExists(atPath: path))
        unlink(path)
        let second = try UnixSocketListener.bind(path: path)
        second.close()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a missing socket directory is created 0700; a symlinked or shared one is refused")
    func directoryRules() throws {
        let directory = try privateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let listener = try UnixSocketListener.bind(path: directory + "/new/kcm.sock")
        var info = stat()
        #expect(lstat(directory + "/new", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        listener.close()

        #expect(symlink(directory + "/new", directory + "/link") == 0)
        #expect(throws: DaemonError.self) { try UnixSocketListener.bind(path: directory + "/link/kcm.sock") }
        #expect(mkdir(directory + "/shared", 0o700) == 0)
        chmod(directory + "/shared", 0o770)
        do {
            _ = try UnixSocketListener.bind(path: directory + "/shared/kcm.sock")
            Issue.record("a group-writable directory was accepted")
        } catch {
            #expect(error.description.contains("writable by group or others"))
        }
        let long = directory + "/" + String(repeating: "x", count: 120)
        #expect(throws: DaemonError.pathTooLong(path: long)) { try UnixSocketListener.bind(path: long) }
    }

    @Test("SO_PEERCRED reports this process; the authoriser admits owner and root only")
    func peerCredentials() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let peer = try PeerCredentials(socket: fds[0])
        #expect(peer.pid == getpid())
        #expect(peer.uid == getuid())
        #expect(peer.gid == getgid())

        let authorizer = PeerAuthorizer(ownerUID: 1000)
        #expect(authorizer.isAuthorized(PeerCredentials(pid: 1, uid: 1000, gid: 1000)))
        #expect(authorizer.isAuthorized(PeerCredentials(pid: 1, uid: 0, gid: 0)))
        #expect(!authorizer.isAuthorized(PeerCredentials(pid: 1, uid: 1001, gid: 1000)))
        #expect(!authorizer.isAuthorized(PeerCredentials(pid: 1, uid: 65534, gid: 65534)))
        let strict = PeerAuthorizer(ownerUID: 1000, allowsRoot: false)
        #expect(!strict.isAuthorized(PeerCredentials(pid: 1, uid: 0, gid: 0)))
        #expect(strict.isAuthorized(PeerCredentials(pid: 1, uid: 1000, gid: 0)))
    }
}
