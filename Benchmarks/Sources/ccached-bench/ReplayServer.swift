import ArgumentParser
import CSupport
import Glibc
import SystemCalls

/// `ccached-bench replay-server --socket PATH --upstream PATH`: the bound on what any KCM server can
/// do. It forwards each request to ccached (upstream) and records the reply; a read-only request
/// whose exact bytes it has seen since the last write is answered from memory with the recorded
/// bytes, without asking ccached. So a repeated iteration through it costs the client's work plus
/// the socket and nothing else: no decoding, no store, no encoding.
///
/// One thread, `poll` over every connection; a frame is read whole once its connection is readable
/// (the benchmark's clients send each request in one write). A stand-in for measuring only: it
/// trusts its clients and is never installed.
struct ReplayServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay-server", abstract: "Internal: the record-and-replay KCM stand-in (the bound).",
        shouldDisplay: false)

    @Option(help: "The Unix socket to listen on.")
    var socket: String

    @Option(help: "ccached's socket, asked the first time a request is seen.")
    var upstream: String

    /// Opcodes that change nothing: GET_NAME, GET_PRINCIPAL, GET_CRED_UUID_LIST, GET_CRED_BY_UUID,
    /// RETRIEVE, GET_CACHE_UUID_LIST, GET_CACHE_BY_UUID, GET_DEFAULT_CACHE, GET_KDC_OFFSET and MIT's
    /// GET_CRED_LIST. NOOP is left out: it is answered by forwarding, like every write.
    static let readOnly: Set<UInt16> = [1, 8, 9, 10, 7, 18, 19, 20, 22, 13001]

    /// Frames larger than this are refused (MIT's own reply limit is 10 MiB).
    static let maximumFrame = 16 << 20

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let listener = ccached_unix_stream_socket()
        guard listener >= 0, ccached_bind_unix(listener, socket) == 0, listen(listener, 64) == 0 else {
            throw ValidationError("cannot listen on \(socket): \(Errno.current.message)")
        }
        var replies: [[UInt8]: [UInt8]] = [:]
        // Client descriptor → its own upstream connection (opened on its first forwarded request).
        var upstreams: [Int32: Int32] = [:]
        var clients: [Int32] = []
        while true {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            fds += clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            do {
                _ = try retryingInterrupts { poll(&fds, nfds_t(fds.count), -1) }
            } catch {
                throw ValidationError("poll failed: \(error.message)")
            }
            if fds[0].revents & Int16(POLLIN) != 0 {
                let fd = ccached_accept_cloexec(listener)
                if fd >= 0 { clients.append(fd) }
            }
            var closed: [Int32] = []
            for entry in fds.dropFirst() where entry.revents != 0 {
                let fd = entry.fd
                guard let request = Self.readFrame(fd) else {
                    closed.append(fd)
                    continue
                }
                let opcode = request.count >= 4 ? UInt16(request[2]) << 8 | UInt16(request[3]) : 0
                if Self.readOnly.contains(opcode), let reply = replies[request] {
                    if !reply.withUnsafeBytes({ UnixSocketClient.writeAll(fd, $0.baseAddress!, $0.count) }) {
                        closed.append(fd)
                    }
                    continue
                }
                if !Self.readOnly.contains(opcode) { replies.removeAll(keepingCapacity: true) }
                if upstreams[fd] == nil { upstreams[fd] = UnixSocketClient.connect(upstream) }
                guard let up = upstreams[fd], let reply = Self.forward(request, to: up) else {
                    closed.append(fd)
                    continue
                }
                if Self.readOnly.contains(opcode) { replies[request] = reply }
                if !reply.withUnsafeBytes({ UnixSocketClient.writeAll(fd, $0.baseAddress!, $0.count) }) {
                    closed.append(fd)
                }
            }
            for fd in closed {
                close(fd)
                if let up = upstreams.removeValue(forKey: fd) { close(up) }
                clients.removeAll { $0 == fd }
            }
        }
    }

    /// One request body (after its length word), or nil at end of file or on an oversized frame.
    private static func readFrame(_ fd: Int32) -> [UInt8]? {
        var header: UInt32 = 0
        guard UnixSocketClient.readExactly(fd, &header, 4) else { return nil }
        let length = Int(UInt32(bigEndian: header))
        guard length <= maximumFrame else { return nil }
        var body = [UInt8](repeating: 0, count: length)
        if length > 0 {
            guard body.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress!, length) }) else {
                return nil
            }
        }
        return body
    }

    /// Sends `request` upstream and returns the whole reply frame, length word included.
    private static func forward(_ request: [UInt8], to fd: Int32) -> [UInt8]? {
        var frame = [UInt8](repeating: 0, count: 4 + request.count)
        let length = UInt32(request.count)
        frame[0] = UInt8(length >> 24)
        frame[1] = UInt8(length >> 16 & 0xFF)
        frame[2] = UInt8(length >> 8 & 0xFF)
        frame[3] = UInt8(length & 0xFF)
        frame.replaceSubrange(4..., with: request)
        guard frame.withUnsafeBytes({ UnixSocketClient.writeAll(fd, $0.baseAddress!, $0.count) }) else { return nil }
        var header: UInt32 = 0
        guard UnixSocketClient.readExactly(fd, &header, 4) else { return nil }
        // A reply is `u32 L`, a `u32 0` word that L does not count, then L bytes (status, payload).
        let rest = 4 + Int(UInt32(bigEndian: header))
        guard rest <= maximumFrame else { return nil }
        var reply = [UInt8](repeating: 0, count: 4 + rest)
        reply.withUnsafeMutableBytes { $0.storeBytes(of: header, as: UInt32.self) }
        guard reply.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress! + 4, rest) }) else {
            return nil
        }
        return reply
    }
}
