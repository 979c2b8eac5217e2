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
        /// Serves one hand-off connection on this thread as the daemon's event loop does: poll,
        /// accept, then receive whenever it is readable, until the door closes it (or 10 s pass).
        func serveOne() {
            var descriptor = pollfd(fd: listener.fileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 10_000)
            guard let connection = listener.acceptConnection() else { return }
            defer { close(connection) }
            while true {
                var readable = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
                guard poll(&readable, 1, 10_000) == 1 else { return }
                let receipt = listener.receive(on: connection) { [self] fd in
                    received.withLock { $0.append(fd) }
                    if !accept { close(fd) }
                    return accept
                }
                if receipt == .ended { return }
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

    /// A program connecting as uid 4242 (setpriv, python3), or nil when they are missing.
    static let foreignClient: (setpriv: String, python: String)? = {
        let setprivs: [String] = ["/usr/bin/setpriv", "/bin/setpriv"]
        let pythons: [String] = ["/usr/bin/python3", "/bin/python3"]
        let setpriv = setprivs.first { access($0, X_OK) == 0 }
        let python = pythons.first { access($0, X_OK) == 0 }
        guard let setpriv, let python else {
            print("HandoffTests: SKIPPED, NOT RUN: the SO_PEERCRED test needs setpriv and python3")
            return nil
        }
        return (setpriv, python)
    }()

    @Test(
        "a handed-off connection still names the client's own uid and pid to the daemon (SO_PEERCRED), not the door's",
        .enabled(if: isRoot && foreignClient != nil))
    func peerCredentialsTravel() throws {
        let server = try Server(accept: true)
        defer { server.stop() }
        // The client: a process of uid 4242 connecting to a socket the "door" (this test) accepts on.
        let doorSocket = server.directory.appendingPathComponent("door").path
        let listening = ccached_unix_stream_socket()
        #expect(listening >= 0)
        defer { close(listening) }
        #expect(ccached_bind_unix(listening, doorSocket) == 0 && listen(listening, 4) == 0)
        #expect(chmod(server.directory.path, 0o755) == 0 && chmod(doorSocket, 0o777) == 0)
        let client = Process()
        client.executableURL = URL(fileURLWithPath: Self.foreignClient!.setpriv)
        client.arguments = [
            "--reuid=4242", "--regid=4242", "--clear-groups", Self.foreignClient!.python, "-c",
            "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(1)", doorSocket,
        ]
        try client.run()
        defer {
            // SIGKILL: the test process may block SIGTERM (signalfd), and its children inherit that.
            kill(client.processIdentifier, SIGKILL)
            client.waitUntilExit()
        }
        var descriptor = pollfd(fd: listening, events: Int16(POLLIN), revents: 0)
        #expect(poll(&descriptor, 1, 10_000) == 1)
        let accepted = ccached_accept_cloexec(listening)
        #expect(accepted >= 0)
        defer { close(accepted) }
        Thread.detachNewThread { server.serveOne() }
        #expect(
            HandoffClient.handOff(
                client: accepted, handoffPath: server.listener.path, expectedUID: 0, timeoutMilliseconds: 10_000)
                == .accepted)
        let fds = server.received.withLock { $0 }
        #expect(fds.count == 1)
        guard let fd = fds.first else { return }
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        #expect(ccached_peer_credentials(fd, &pid, &uid, &gid) == 0)
        #expect(uid == 4242 && gid == 4242)
        // The client's own process: setpriv execs python3 in place, so its pid is the Process's.
        #expect(pid == client.processIdentifier)
        #expect(pid != getpid())
    }

    @Test("a hand-off connection with no message waiting is left open, not blocked on", .enabled(if: isRoot))
    func nonBlocking() throws {
        let server = try Server(accept: true)
        defer { server.stop() }
        let door = ccached_unix_stream_socket()
        #expect(door >= 0)
        defer { close(door) }
        #expect(ccached_connect_unix(door, server.listener.path) == 0)
        var descriptor = pollfd(fd: server.listener.fileDescriptor, events: Int16(POLLIN), revents: 0)
        #expect(poll(&descriptor, 1, 10_000) == 1)
        guard let connection = server.listener.acceptConnection() else {
            Issue.record("the door's connection was not accepted")
            return
        }
        defer { close(connection) }
        // Nothing sent yet: the daemon's loop must get control back at once.
        #expect(server.listener.receive(on: connection) { _ in true } == .open)
        close(door)
        #expect(server.listener.receive(on: connection) { _ in true } == .ended)
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
