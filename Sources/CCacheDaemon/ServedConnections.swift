import Glibc
import Logging
import SecureMemory
import SystemCalls

/// The connections the daemon's main thread serves itself, in its event loop: a request is read,
/// answered under the store's lock and its reply sent on the thread that was woken for it, so a
/// short-lived client (one `kvno`, one GSSAPI call: MIT opens a connection per cache handle) pays
/// no thread start and no second wake-up. Nothing here waits: reads and sends never block, and a
/// connection that must wait — a CCACHED_WATCH or CCACHED_RENEW, or a reply larger than its
/// socket takes at once — moves to a thread of its own (``ConnectionAdmission/serveOnThread``),
/// so one slow client still never delays another.
///
/// Used by the main thread only.
final class ServedConnections {
    private let poll: EventPoll
    private let admission: ConnectionAdmission
    private var connections: [Int32: AdmittedConnection] = [:]
    /// One read buffer for every connection, zeroed after each read. Left uninitialised: only the
    /// pages reads fill become resident.
    private var input = [UInt8](unsafeUninitializedCapacity: 65536) { _, count in count = 65536 }

    /// Tokens from this bit up are connections (the low 32 bits are the descriptor).
    static let tokenBase: UInt64 = 1 << 32

    init(poll: EventPoll, admission: ConnectionAdmission) {
        self.poll = poll
        self.admission = admission
    }

    deinit {
        input.wipeStorage()
    }

    /// How many connections the loop serves now.
    var count: Int { connections.count }

    /// The connection a token names, if the token is a connection's.
    static func descriptor(of token: UInt64) -> Int32? {
        token >= tokenBase ? Int32(bitPattern: UInt32(truncatingIfNeeded: token)) : nil
    }

    /// The connections between two requests: nothing of a request read, no reply left to send.
    /// What a re-exec hands over.
    var descriptorsBetweenRequests: [Int32] {
        connections.filter { $0.value.session.isBetweenRequests }.map(\.key)
    }

    /// Whether every connection is between two requests.
    var allBetweenRequests: Bool { connections.values.allSatisfy { $0.session.isBetweenRequests } }

    /// Starts serving an admitted connection.
    func add(_ connection: AdmittedConnection) {
        let fd = connection.fileDescriptor
        do throws(Errno) {
            try poll.add(fd, token: Self.tokenBase | UInt64(UInt32(bitPattern: fd)))
        } catch {
            connection.logger.error("cannot watch a connection (epoll: \(error)); closing it")
            admission.finish(connection)
            return
        }
        connections[fd] = connection
    }

    /// Reads what `fd` has and answers every request it completes.
    func serve(_ fd: Int32) {
        guard var connection = connections.removeValue(forKey: fd) else { return }
        let count: Int
        do throws(Errno) {
            count = try retryingInterrupts {
                input.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            }
        } catch  where error == .wouldBlock {
            connections[fd] = connection
            return
        } catch {
            end(connection)
            return
        }
        guard count > 0 else {
            end(connection)
            return
        }
        var backlog: [UInt8] = []
        let progress = connection.session.receiveWithoutWaiting(input[0..<count], now: MonotonicClock.seconds()) {
            frame in
            guard let sent = try? Socket.sendWithoutWaiting(fd, frame) else { return .failed }
            guard sent < frame.count else { return .sent }
            backlog = Array(frame[sent...])
            return .queued
        }
        input.withUnsafeMutableBytes { SecureArena.wipe($0.baseAddress!, count: count) }
        switch progress {
        case .open:
            connections[fd] = connection
        case .close:
            end(connection)
        case .needsThread:
            poll.remove(fd)
            _ = admission.serveOnThread(connection, backlog: backlog)
        }
    }

    /// Closes every connection whose request has been arriving for longer than
    /// `--request-timeout`. Called once a second.
    func closeStalled(now: UInt64) {
        for (fd, connection) in connections where connection.session.hasStalled(now: now) {
            connections[fd] = nil
            end(connection)
        }
    }

    /// Closes every connection (the daemon is stopping), zeroing what each holds.
    func closeAll() {
        for connection in connections.values { end(connection) }
        connections = [:]
    }

    private func end(_ connection: AdmittedConnection) {
        // Always taken out of the set before it is closed: epoll watches the open file, not the
        // number, and a socket's file can outlive this descriptor (one passed with SCM_RIGHTS has
        // other references), so a closed descriptor left in the set can go on reporting its
        // hang-up to nobody.
        poll.remove(connection.fileDescriptor)
        admission.finish(connection)
    }
}
