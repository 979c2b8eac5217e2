import ArgumentParser
import CSupport
import Glibc
import SystemCalls

/// `ccached-bench echo-server --socket PATH`: the floor's other end. Echoes length-prefixed
/// messages (`u32` big-endian length, then the bytes) on a Unix socket, one blocking thread per
/// connection, each reading up to 64 KiB at a time as ccached does. Stopped by SIGTERM.
///
/// An 8-byte message `BULK` + `u32 L` is answered with an L-byte message instead: the floor for a
/// reply as large as a GET_CRED_LIST one.
struct EchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server", abstract: "Internal: the raw Unix-socket echo server (the floor).",
        shouldDisplay: false)

    @OptionGroup var listening: ListeningSocket

    func run() throws {
        let listener = try listening.listen()
        while true {
            let fd: Int32
            do {
                fd = try retryingInterrupts { ccached_accept_cloexec(listener) }
            } catch {
                throw ValidationError("accept failed: \(error.message)")
            }
            let result = ccached_spawn_thread(
                { context in
                    EchoServerCommand.serve(Int32(Int(bitPattern: context) - 1))
                    return nil
                }, UnsafeMutableRawPointer(bitPattern: Int(fd) + 1), 256 * 1024)
            if result != 0 { close(fd) }
        }
    }

    /// Answers every complete frame with the same frame until the peer closes.
    static func serve(_ fd: Int32) {
        defer { close(fd) }
        let capacity = 65536
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        defer { buffer.deallocate() }
        var filled = 0
        var bulk: UnsafeMutableRawPointer?
        var bulkCapacity = 0
        defer { bulk?.deallocate() }
        while true {
            let offset = filled
            guard let count = try? retryingInterrupts({ read(fd, buffer + offset, capacity - offset) }), count > 0
            else { return }
            filled += count
            var start = 0
            while filled - start >= 4 {
                let length = Int(UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
                guard length <= capacity - 4 else { return }
                guard filled - start >= 4 + length else { break }
                if length == 8, buffer.loadUnaligned(fromByteOffset: start + 4, as: UInt32.self) == bulkMagic {
                    let replyLength = Int(
                        UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: start + 8, as: UInt32.self)))
                    if bulkCapacity < 4 + replyLength {
                        bulk?.deallocate()
                        bulkCapacity = 4 + replyLength
                        bulk = .allocate(byteCount: bulkCapacity, alignment: 8)
                        bulk!.initializeMemory(as: UInt8.self, repeating: 0, count: bulkCapacity)
                    }
                    bulk!.storeBytes(of: UInt32(replyLength).bigEndian, as: UInt32.self)
                    guard UnixSocketClient.writeAll(fd, bulk!, 4 + replyLength) else { return }
                } else {
                    guard UnixSocketClient.writeAll(fd, buffer + start, 4 + length) else { return }
                }
                start += 4 + length
            }
            if start > 0 {
                (buffer).copyMemory(from: buffer + start, byteCount: filled - start)
                filled -= start
            }
        }
    }
}

/// `BULK` as the first four bytes of a message, in memory order.
let bulkMagic = UInt32(littleEndian: 0x4B4C_5542)

/// The client side of the floor: one connection, 64-byte messages, one round trip at a time.
final class EchoClient {
    static let messageLength = 64
    private let fd: Int32
    private let message: UnsafeMutableRawPointer
    private let reply: UnsafeMutableRawPointer
    private var bulkReply: [UInt8] = []

    init?(socketPath: String) {
        guard let fd = UnixSocketClient.connect(socketPath) else { return nil }
        self.fd = fd
        message = .allocate(byteCount: 4 + Self.messageLength, alignment: 8)
        reply = .allocate(byteCount: 4 + Self.messageLength, alignment: 8)
        message.storeBytes(of: UInt32(Self.messageLength).bigEndian, as: UInt32.self)
        for index in 0..<Self.messageLength {
            message.storeBytes(of: UInt8(index), toByteOffset: 4 + index, as: UInt8.self)
        }
    }

    deinit {
        close(fd)
        message.deallocate()
        reply.deallocate()
    }

    /// A 12-byte request answered with a `replyLength`-byte message; false if the connection broke.
    func bulkRoundTrip(replyLength: Int) -> Bool {
        var request: (UInt32, UInt32, UInt32) = (UInt32(8).bigEndian, bulkMagic, UInt32(replyLength).bigEndian)
        guard withUnsafeBytes(of: &request, { UnixSocketClient.writeAll(fd, $0.baseAddress!, 12) }) else {
            return false
        }
        if bulkReply.count < 4 + replyLength { bulkReply = [UInt8](repeating: 0, count: 4 + replyLength) }
        return bulkReply.withUnsafeMutableBytes { UnixSocketClient.readExactly(fd, $0.baseAddress!, 4 + replyLength) }
    }

    /// One request and its echo; false if the connection broke.
    func roundTrip() -> Bool {
        UnixSocketClient.writeAll(fd, message, 4 + Self.messageLength)
            && UnixSocketClient.readExactly(fd, reply, 4 + Self.messageLength)
    }
}
