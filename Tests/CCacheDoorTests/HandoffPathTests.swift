import CCacheDoor
import CSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The door connects to a hand-off socket inside a directory the user owns: nothing there may
/// lead it anywhere else (issue 24, item 5).
@Suite("Hand-off path: no link followed, no stranger's socket connected to")
struct HandoffPathTests {
    static let isRoot: Bool = {
        if getuid() != 0 {
            print("HandoffPathTests: root-only cases SKIPPED, NOT RUN: they need sockets owned by other uids")
        }
        return getuid() == 0
    }()

    /// A scratch directory with a listening socket that never accepts: whether anyone connected
    /// shows in its backlog.
    final class Target {
        let directory: String
        let socketPath: String
        let listener: Int32

        init() throws {
            directory =
                FileManager.default.temporaryDirectory.appendingPathComponent(
                    "door-path-\(UUID().uuidString.prefix(8))"
                ).path
            #expect(mkdir(directory, 0o700) == 0)
            socketPath = directory + "/target.sock"
            listener = ccached_unix_stream_socket()
            #expect(listener >= 0)
            #expect(ccached_bind_unix(listener, socketPath) == 0)
            #expect(listen(listener, 8) == 0)
        }

        /// Whether a connection waits in the backlog.
        var connected: Bool {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            return poll(&descriptor, 1, 0) > 0
        }

        deinit {
            close(listener)
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    func handOff(to path: String, uid: UInt32) -> HandoffClient.Outcome {
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        return HandoffClient.handOff(client: ends[0], handoffPath: path, expectedUID: uid, timeoutMilliseconds: 300)
    }

    func isRefusal(_ outcome: HandoffClient.Outcome, at path: String) -> Bool {
        if case .failed(.unsafeDirectory(let refused, _)) = outcome { return refused == path }
        return false
    }

    @Test("a symbolic link in place of the hand-off socket is refused and never connected to")
    func linkedSocket() throws {
        let target = try Target()
        let link = target.directory + "/kcm.handoff"
        #expect(symlink(target.socketPath, link) == 0)
        let outcome = handOff(to: link, uid: getuid())
        #expect(isRefusal(outcome, at: link), "\(outcome)")
        #expect(!target.connected)
        // The socket itself, owned by the expected uid in its own directory, is reachable.
        _ = handOff(to: target.socketPath, uid: getuid())
        #expect(target.connected)
    }

    @Test("a symbolic link in place of the session directory is refused and never followed")
    func linkedDirectory() throws {
        let target = try Target()
        let link = target.directory + "/session"
        #expect(symlink(target.directory, link) == 0)
        let outcome = handOff(to: link + "/target.sock", uid: getuid())
        #expect(isRefusal(outcome, at: link), "\(outcome)")
        #expect(!target.connected)
    }

    @Test("a regular file at the hand-off path is refused; a missing one means no daemon")
    func notASocket() throws {
        let target = try Target()
        let file = target.directory + "/kcm.handoff"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        #expect(isRefusal(handOff(to: file, uid: getuid()), at: file))
        #expect(handOff(to: target.directory + "/missing/kcm.handoff", uid: getuid()) == .noDaemon)
    }

    @Test("a socket owned by another uid is refused before any connect", .enabled(if: isRoot))
    func strangersSocket() throws {
        // Everything here is root's: the socket is the right kind, in directories root owns, but
        // not the session user's.
        let target = try Target()
        #expect(handOff(to: target.socketPath, uid: 4242) == .impostor(uid: 0))
        #expect(!target.connected)
        // A directory of a third uid on the way is refused too, even with the user's socket in it.
        #expect(chown(target.socketPath, 4242, 4242) == 0)
        #expect(chown(target.directory, 4343, 4343) == 0)
        #expect(isRefusal(handOff(to: target.socketPath, uid: 4242), at: target.directory))
        #expect(!target.connected)
    }
}
