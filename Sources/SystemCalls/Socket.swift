import Glibc

/// Whole-message I/O on a connected stream socket.
public enum Socket {
    /// Sends every byte (`MSG_NOSIGNAL`: a vanished peer is an error, not a SIGPIPE).
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        var sent = 0
        while sent < bytes.count {
            let offset = sent
            sent += try retryingInterrupts {
                bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            }
        }
    }

    /// Sends as many of `bytes` as the socket takes without waiting (`MSG_DONTWAIT | MSG_NOSIGNAL`)
    /// and returns how many that was: `bytes.count` when all went, fewer when its buffer is full.
    public static func sendWithoutWaiting(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) -> Int {
        var sent = 0
        while sent < bytes.count {
            let offset = sent
            do throws(Errno) {
                sent += try retryingInterrupts {
                    bytes.withUnsafeBytes {
                        send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                    }
                }
            } catch  where error == .wouldBlock {
                return sent
            }
        }
        return sent
    }

    /// Receives exactly `count` bytes. Returns fewer only when the peer closed first.
    public static func receive(_ fd: Int32, exactly count: Int) throws(Errno) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let offset = got
            let n = try retryingInterrupts {
                buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            }
            if n == 0 { return Array(buffer[0..<got]) }
            got += n
        }
        return buffer
    }
}
