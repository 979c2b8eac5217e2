import ArgumentParser
import CSupport
import Glibc
import KCM
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

    @OptionGroup var listening: ListeningSocket

    @Option(help: "ccached's socket, asked the first time a request is seen.")
    var upstream: String

    /// Opcodes that change nothing: GET_NAME, GET_PRINCIPAL, GET_CRED_UUID_LIST, GET_CRED_BY_UUID,
    /// RETRIEVE, GET_CACHE_UUID_LIST, GET_CACHE_BY_UUID, GET_DEFAULT_CACHE, GET_KDC_OFFSET and MIT's
    /// GET_CRED_LIST. NOOP is left out: it is answered by forwarding, like every write.
    static let readOnly: Set<UInt16> = Set(
        [
            KCMOpcode.getName, .getPrincipal, .getCredUUIDList, .getCredByUUID, .retrieve, .getCacheUUIDList,
            .getCacheByUUID, .getDefaultCache, .getKDCOffset, .getCredList,
        ].map(\.rawValue))

    /// Frames larger than this are refused (MIT's own reply limit is 10 MiB).
    static let maximumFrame = 16 << 20

    func run() throws {
        let listener = try listening.listen()
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
                var body = KCMReader(request, offset: 4)
                let opcode = (try? KCMRequest.readHeader(from: &body)) ?? KCMOpcode.noop.rawValue
                if Self.readOnly.contains(opcode), let reply = replies[request] {
                    if !UnixSocketClient.writeAll(fd, reply) {
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
                if !UnixSocketClient.writeAll(fd, reply) {
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

    /// One request frame, its length word included, or nil at end of file or on an oversized frame.
    private static func readFrame(_ fd: Int32) -> [UInt8]? {
        var lengthWord = [UInt8](repeating: 0, count: 4)
        guard lengthWord.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress!, 4) }) else {
            return nil
        }
        var reader = KCMReader(lengthWord)
        guard let length = try? Int(reader.readUInt32()), length <= maximumFrame else { return nil }
        var frame = lengthWord + [UInt8](repeating: 0, count: length)
        if length > 0 {
            guard frame.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress! + 4, length) }) else {
                return nil
            }
        }
        return frame
    }

    /// Sends `request` (a whole frame) upstream and returns the whole reply frame.
    private static func forward(_ request: [UInt8], to fd: Int32) -> [UInt8]? {
        guard UnixSocketClient.writeAll(fd, request) else { return nil }
        var header = [UInt8](repeating: 0, count: KCMReplyHeader.length)
        guard header.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress!, $0.count) }),
            let decoded = try? KCMReplyHeader(decoding: header), decoded.payloadLength <= maximumFrame
        else { return nil }
        var reply = header + [UInt8](repeating: 0, count: decoded.payloadLength)
        guard
            reply.withUnsafeMutableBytes({
                UnixSocketClient.readExactly(fd, $0.baseAddress! + KCMReplyHeader.length, decoded.payloadLength)
            })
        else { return nil }
        return reply
    }
}
