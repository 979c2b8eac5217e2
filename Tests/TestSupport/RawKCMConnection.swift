import CSupport
import Foundation
import KCM

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal blocking KCM client over a Unix socket, for tests that need to send exact (or
/// deliberately broken) bytes and read the exact reply.
package final class RawKCMConnection {
    /// The connected socket.
    package let fd: Int32

    /// Connects to the daemon's socket at `path`.
    package init(path: String) throws {
        fd = ccached_unix_stream_socket()
        guard fd >= 0 else { throw POSIXError(.EIO) }
        guard ccached_connect_unix(fd, path) == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    deinit { close(fd) }

    /// Writes all of `bytes`.
    package func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw POSIXError(.EPIPE) }
            sent += n
        }
    }

    /// Reads exactly `count` bytes.
    package func receive(exactly count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            guard n > 0 else { throw POSIXError(.ECONNRESET) }
            got += n
        }
        return buffer
    }

    /// Reads one reply frame: (transport word, status, payload).
    package func receiveReply() throws -> (transport: UInt32, status: KCMStatus, payload: [UInt8]) {
        let header = try KCMReplyHeader(decoding: try receive(exactly: KCMReplyHeader.length))
        return (header.transport, header.status, try receive(exactly: header.payloadLength))
    }

    /// Sends a request and returns its reply.
    package func call(_ request: KCMRequest) throws -> (status: KCMStatus, payload: [UInt8]) {
        try send(request.encodedFrame())
        let reply = try receiveReply()
        return (reply.status, reply.payload)
    }

    /// The daemon's CCACHED_STATUS reply, decoded: its counters (e.g. how often it refused
    /// something) are what tests assert on, rather than the wording of its log.
    package func daemonStatus() throws -> KCMDaemonStatus {
        let reply = try call(.daemonStatus)
        guard reply.status == .success else { throw StatusReplyError(status: reply.status) }
        guard case .daemonStatus(let status) = try KCMReply(payload: reply.payload, for: .daemonStatus) else {
            throw StatusReplyError(status: reply.status)
        }
        return status
    }

    /// A CCACHED_STATUS request that did not come back as a status.
    package struct StatusReplyError: Error, CustomStringConvertible {
        /// The reply's status code.
        package var status: KCMStatus
        package var description: String { "CCACHED_STATUS did not return a daemon status (reply status \(status))" }
    }
}
