import CSupport
import Glibc
import KCM
import SystemCalls

/// One blocking connection to a daemon, authenticated before anything is sent: the daemon's
/// `SO_PEERCRED` uid must be ours or root's.
final class KCMClientConnection {
    let path: String
    let fd: Int32
    /// The daemon's process id, as the kernel reports it.
    let daemonPID: Int32

    /// What trying to connect found.
    enum Attempt {
        case connected(KCMClientConnection)
        /// Nobody listens there (no file, or a stale socket).
        case noDaemon
        case failed(CCacheClientError)
    }

    /// Tries to connect and authenticate the daemon.
    static func attempt(path: String, expectedUID: UInt32) -> Attempt {
        do throws(ConnectError) {
            return .connected(try KCMClientConnection(path: path, expectedUID: expectedUID))
        } catch {
            switch error {
            case .noDaemon: return .noDaemon
            case .failed(let failure): return .failed(failure)
            }
        }
    }

    /// Connects, throwing the client error for anything but "no daemon" (which yields nil).
    static func connectIfRunning(path: String, expectedUID: UInt32) throws(CCacheClientError) -> KCMClientConnection? {
        switch attempt(path: path, expectedUID: expectedUID) {
        case .connected(let connection): return connection
        case .noDaemon: return nil
        case .failed(let error): throw error
        }
    }

    private enum ConnectError: Error {
        case noDaemon
        case failed(CCacheClientError)
    }

    private init(path: String, expectedUID: UInt32) throws(ConnectError) {
        let fd = ccached_unix_stream_socket()
        guard fd >= 0 else { throw .failed(.connection(path: path, reason: Errno.current.message)) }
        if ccached_connect_unix(fd, path) != 0 {
            let code = Errno.current
            Glibc.close(fd)
            if code == .noSuchFile || code == .connectionRefused { throw .noDaemon }
            throw .failed(.connection(path: path, reason: code.message))
        }
        let daemon: PeerCredentials
        do throws(Errno) {
            daemon = try PeerCredentials(socket: fd)
        } catch {
            Glibc.close(fd)
            throw .failed(.connection(path: path, reason: "cannot identify the daemon: \(error.message)"))
        }
        guard daemon.uid == expectedUID || daemon.uid == 0 else {
            Glibc.close(fd)
            throw .failed(.untrustedDaemon(path: path, uid: daemon.uid))
        }
        self.path = path
        self.fd = fd
        self.daemonPID = daemon.pid
    }

    deinit { Glibc.close(fd) }

    /// How a call ended, which decides whether it may be retried on a new connection.
    enum CallOutcome {
        case reply(KCMStatus, [UInt8])
        /// Nothing reached the daemon (the write failed): always safe to retry.
        case notSent(String)
        /// The request was sent but no reply came back.
        case noReply(String)
    }

    /// Sends one request frame and reads its reply.
    func call(_ frame: [UInt8]) -> CallOutcome {
        do throws(CallError) {
            let (status, payload) = try exchange(frame)
            return .reply(status, payload)
        } catch {
            switch error {
            case .notSent(let reason): return .notSent(reason)
            case .noReply(let reason): return .noReply(reason)
            }
        }
    }

    private enum CallError: Error {
        case notSent(String)
        case noReply(String)
    }

    private func exchange(_ frame: [UInt8]) throws(CallError) -> (KCMStatus, [UInt8]) {
        do throws(Errno) {
            try Socket.sendAll(fd, frame)
        } catch {
            // A request cut short is never applied: the daemon answers only whole frames.
            throw .notSent(error.message)
        }
        let bytes = try receive(KCMReplyHeader.length)
        let header: KCMReplyHeader
        do {
            header = try KCMReplyHeader(decoding: bytes)
        } catch {
            throw .noReply(error.description)
        }
        guard header.replyLength <= 64 << 20 else { throw .noReply("reply length \(header.replyLength) out of range") }
        let payload = try receive(header.payloadLength)
        // A transport error carries no payload the client may read (KCMReplyHeader.effectiveStatus).
        if header.transport != 0 { return (header.effectiveStatus, []) }
        return (header.status, payload)
    }

    /// Waits until the daemon closes the connection (end of file), up to `milliseconds`.
    func waitForClose(milliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Int64(MonotonicClock.milliseconds()) + Int64(milliseconds)
        var scratch = [UInt8](repeating: 0, count: 256)
        while true {
            let left = deadline - Int64(MonotonicClock.milliseconds())
            guard left > 0 else { return false }
            if poll(&descriptor, 1, Int32(left)) <= 0 { continue }
            let received: Int
            do throws(Errno) {
                received = try retryingInterrupts {
                    scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                }
            } catch  where error == .wouldBlock {
                continue
            } catch {
                return true
            }
            if received == 0 { return true }
        }
    }

    private func receive(_ count: Int) throws(CallError) -> [UInt8] {
        let bytes: [UInt8]
        do throws(Errno) {
            bytes = try Socket.receive(fd, exactly: count)
        } catch  where error.rawValue == ECONNRESET {
            // A reset means the daemon closed the socket with our request still unread in it, or
            // never accepted it (a daemon that died, exited with it still queued, or refused it):
            // it was never applied, so it may be sent again on a new connection, whatever it is.
            throw .notSent(error.message)
        } catch {
            throw .noReply(error.message)
        }
        guard bytes.count == count else { throw .noReply("the daemon closed the connection") }
        return bytes
    }
}
