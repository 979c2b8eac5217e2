import ArgumentParser
import Glibc
import KCM
import SystemCalls

/// A KCM client with no libkrb5 in the way: one connection, requests encoded by the KCM library and
/// replies read through ``KCMReplyHeader``. The benchmark uses it to split an iteration's cost into
/// the daemon plus the socket (this) and MIT's client work (the rest); the probes time it directly.
final class RawKCMClient {
    private(set) var fd: Int32
    private var header = [UInt8](repeating: 0, count: KCMReplyHeader.length)
    private var payload: [UInt8] = []

    init?(socketPath: String) {
        guard let fd = UnixSocketClient.connect(socketPath) else { return nil }
        self.fd = fd
    }

    /// Connects to `path`, or throws a validation error that says why it could not: a probe's first
    /// step.
    static func connecting(to path: String) throws -> RawKCMClient {
        guard let client = RawKCMClient(socketPath: path) else {
            throw ValidationError("cannot connect to \(path): \(Errno.current.message)")
        }
        return client
    }

    /// Takes over a connected descriptor.
    init(connected fd: Int32) { self.fd = fd }

    deinit { close() }

    /// Closes the connection (a probe times the close too).
    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends one encoded request (`KCMRequest.encodedFrame()`, made once outside a timed loop) and
    /// reads the whole reply into a buffer kept for the next call. Returns the reply's header, or
    /// nil if the connection broke or the reply was malformed.
    func call(frame: [UInt8]) -> KCMReplyHeader? {
        guard UnixSocketClient.writeAll(fd, frame) else { return nil }
        guard header.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress!, $0.count) }),
            let reply = try? KCMReplyHeader(decoding: header)
        else { return nil }
        let length = reply.payloadLength
        if payload.count < length { payload = [UInt8](repeating: 0, count: length) }
        if length > 0 {
            guard payload.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress!, length) }) else {
                return nil
            }
        }
        return reply
    }

    /// Sends `request` and returns the reply's header and a copy of its payload.
    func call(_ request: KCMRequest) -> (header: KCMReplyHeader, payload: [UInt8])? {
        guard let reply = call(frame: request.encodedFrame()) else { return nil }
        return (reply, Array(payload[0..<reply.payloadLength]))
    }

    /// The GET_CRED_LIST frame for the cache `name` (without `KCM:`).
    static func credentialListFrame(cache name: String) -> [UInt8] {
        KCMRequest.getCredList(name: KCMCacheName(name)).encodedFrame()
    }
}
