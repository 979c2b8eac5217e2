import CCacheDaemon
import CCacheDoor
import CSupport
import Foundation
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The door's HandoffClient against the daemon's real HandoffListener, in one process.
@Suite("Hand-off: HandoffClient to HandoffListener", .serialized)
struct HandoffTests {
    static let isRoot: Bool = {
        if getuid() != 0 { print("HandoffTests: SKIPPED, NOT RUN: the hand-off socket accepts only root peers") }
        return getuid() == 0
    }()

    final class Server: @unchecked Sendable {
        let directory: URL
        let listener: HandoffListener
        let received = Mutex<[Int32]>([])
        let accept: Bool
        init(accept: Bool) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "door-handoff-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            self.accept = accept
            listener = try HandoffListener.bind(
                besides: directory.appendingPathComponent("kcm").path, logger: Logger(label: "test"))
        }
        /// Serves one hand-off connection (poll, then acceptOne on this thread).
        func serveOne() {
            var descriptor = pollfd(fd: listener.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 10_000)
            listener.acceptOne { [self] fd in
                received.withLock { $0.append(fd) }
                if !accept { close(fd) }
                return accept
            }
        }
        func stop() {
            listener.close()
            for fd in received.withLock({ $0 }) where accept { close(fd) }
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test(
        "a connected socket is accepted and arrives as a socket whose peer is the original client", .enabled(if: isRoot)
    )
    func accepted() throws {
        let server = try Server(accept: true)
        defer { server.stop() }
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        Thread.detachNewThread { server.serveOne() }
        let outcome = HandoffClient.handOff(
            client: ends[0], handoffPath: server.listener.path, expectedUID: 0, timeoutMilliseconds: 10_000)
        #expect(outcome == .accepted)
        let fds = server.received.withLock { $0 }
        #expect(fds.count == 1)
        if let fd = fds.first {
            // The same connection: bytes written on the other end arrive on the received descriptor.
            #expect(write(ends[1], "x", 1) == 1)
            var byte: UInt8 = 0
            #expect(read(fd, &byte, 1) == 1 && byte == UInt8(ascii: "x"))
        }
    }

    @Test("a daemon that says no answers 'R'", .enabled(if: isRoot))
    func refused() throws {
        let server = try Server(accept: false)
        defer { server.stop() }
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        Thread.detachNewThread { server.serveOne() }
        #expect(
            HandoffClient.handOff(
                client: ends[0], handoffPath: server.listener.path, expectedUID: 0, timeoutMilliseconds: 10_000)
                == .refused)
    }

    @Test("a server of another uid than the client's never gets the client", .enabled(if: isRoot))
    func impostor() throws {
        let server = try Server(accept: true)
        defer { server.stop() }
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        // The socket file says 4242, but the server runs as root: the check on the connection
        // itself (SO_PEERCRED) refuses it. (A socket file of another uid is never connected to:
        // HandoffPathTests.)
        #expect(chown(server.listener.path, 4242, 4242) == 0)
        Thread.detachNewThread { server.serveOne() }
        let outcome = HandoffClient.handOff(
            client: ends[0], handoffPath: server.listener.path, expectedUID: 4242, timeoutMilliseconds: 10_000)
        #expect(outcome == .impostor(uid: 0))
        #expect(server.received.withLock { $0.isEmpty })
    }

    @Test("the door's pool hands two clients over one kept connection", .enabled(if: isRoot))
    func pooled() throws {
        let server = try Server(accept: true)
        defer { server.stop() }
        let pool = HandoffPool()
        // Only one hand-off connection is ever accepted: a second connection would get no answer.
        Thread.detachNewThread { server.serveOne() }
        for _ in 0..<2 {
            var ends: [Int32] = [-1, -1]
            #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
            defer {
                close(ends[0])
                close(ends[1])
            }
            #expect(
                pool.handOff(
                    client: ends[0], handoffPath: server.listener.path, expectedUID: 0, timeoutMilliseconds: 5000)
                    == .accepted)
        }
        #expect(server.received.withLock { $0.count } == 2)
        #expect(pool.count == 1)
        // Kept per (uid, path): a client for another uid is never sent on it.
        #expect(chown(server.listener.path, 4242, 4242) == 0)
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        #expect(
            pool.handOff(
                client: ends[0], handoffPath: server.listener.path, expectedUID: 4242, timeoutMilliseconds: 5000)
                == .impostor(uid: 0))
    }

    @Test("no socket at the path: no daemon")
    func missing() throws {
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        #expect(
            HandoffClient.handOff(
                client: ends[0], handoffPath: "/nonexistent-\(getpid())/x.handoff", expectedUID: 0,
                timeoutMilliseconds: 1000)
                == .noDaemon)
    }
}
