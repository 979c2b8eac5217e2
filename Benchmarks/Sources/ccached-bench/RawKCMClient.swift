import Glibc

/// A KCM client with no libkrb5 in the way: one connection, hand-built frames. The benchmark uses
/// it to split an iteration's cost into the daemon plus the socket (this) and MIT's client work
/// (the rest).
final class RawKCMClient {
    private let fd: Int32
    private var reply: [UInt8] = []

    init?(socketPath: String) {
        guard let fd = UnixSocketClient.connect(socketPath) else { return nil }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Sends one request (`opcode` and `arguments`) and reads the whole reply. Returns the status
    /// word and the payload length, or nil if the connection broke.
    func call(opcode: UInt16, arguments: [UInt8]) -> (status: Int32, payloadLength: Int)? {
        let length = UInt32(4 + arguments.count)
        var frame: [UInt8] = [
            UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
            2, 0, UInt8(opcode >> 8), UInt8(opcode & 0xFF),
        ]
        frame += arguments
        guard frame.withUnsafeBytes({ UnixSocketClient.writeAll(fd, $0.baseAddress!, $0.count) }) else { return nil }
        var header = [UInt8](repeating: 0, count: 12)
        guard header.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress!, 12) }) else {
            return nil
        }
        let replyLength = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        let status = Int32(
            bitPattern: UInt32(header[8]) << 24 | UInt32(header[9]) << 16 | UInt32(header[10]) << 8 | UInt32(header[11])
        )
        let payload = replyLength - 4
        if reply.count < payload { reply = [UInt8](repeating: 0, count: payload) }
        if payload > 0 {
            guard reply.withUnsafeMutableBytes({ UnixSocketClient.readExactly(fd, $0.baseAddress!, payload) }) else {
                return nil
            }
        }
        return (status, payload)
    }

    /// GET_CRED_LIST (13001) of the cache `name` (without `KCM:`).
    func credentialList(cache name: String) -> (status: Int32, payloadLength: Int)? {
        call(opcode: 13001, arguments: Array(name.utf8) + [0])
    }
}
