import CSupport
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

    /// Sends `head`, then each of `fields` as a KCM `data` field (a big-endian `u32` length, then
    /// the bytes), in gathered writes (`sendmsg`, `MSG_NOSIGNAL`) straight from where the bytes
    /// are: a large reply goes out without being copied into one buffer first.
    public static func sendAll(_ fd: Int32, _ head: [UInt8], dataFields fields: [UnsafeRawBufferPointer]) throws(Errno)
    {
        var lengths = [UInt8](repeating: 0, count: 4 * fields.count)
        for (index, field) in fields.enumerated() {
            let length = UInt32(truncatingIfNeeded: field.count)
            lengths[4 * index] = UInt8(truncatingIfNeeded: length >> 24)
            lengths[4 * index + 1] = UInt8(truncatingIfNeeded: length >> 16)
            lengths[4 * index + 2] = UInt8(truncatingIfNeeded: length >> 8)
            lengths[4 * index + 3] = UInt8(truncatingIfNeeded: length)
        }
        // Array's withUnsafeBytes rethrows untyped errors: the typed one is carried out by hand.
        let result: Result<Void, Errno> = head.withUnsafeBytes { head in
            lengths.withUnsafeBytes { lengths in
                var pieces: [UnsafeRawBufferPointer] = [head]
                pieces.reserveCapacity(1 + 2 * fields.count)
                for (index, field) in fields.enumerated() {
                    pieces.append(UnsafeRawBufferPointer(rebasing: lengths[(4 * index)..<(4 * index + 4)]))
                    if field.count > 0 { pieces.append(field) }
                }
                do throws(Errno) {
                    return .success(try sendAll(fd, pieces: pieces))
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
    }

    /// Sends every byte of `pieces`, in order, at most `maximumPieces` to a `sendmsg`.
    private static func sendAll(_ fd: Int32, pieces: [UnsafeRawBufferPointer]) throws(Errno) {
        let maximumPieces = 1024
        var first = 0
        // Bytes of pieces[first] already sent.
        var offset = 0
        var vectors: [iovec] = []
        vectors.reserveCapacity(min(pieces.count, maximumPieces))
        while first < pieces.count {
            vectors.removeAll(keepingCapacity: true)
            for index in first..<min(pieces.count, first + maximumPieces) {
                let skip = index == first ? offset : 0
                let piece = pieces[index]
                vectors.append(
                    iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: piece.baseAddress.map { $0 + skip }),
                        iov_len: piece.count - skip))
            }
            let result: Result<Int, Errno> = vectors.withUnsafeMutableBufferPointer { vectors in
                var message = msghdr()
                message.msg_iov = vectors.baseAddress
                message.msg_iovlen = vectors.count
                do throws(Errno) {
                    return .success(try retryingInterrupts { sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) })
                } catch {
                    return .failure(error)
                }
            }
            var sent = try result.get()
            // Advance past what went.
            while first < pieces.count, sent >= pieces[first].count - offset {
                sent -= pieces[first].count - offset
                first += 1
                offset = 0
            }
            offset += sent
        }
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

extension Socket {
    /// Accepts one connection on a listening socket (`accept4`, `SOCK_CLOEXEC`). Nil when there is
    /// nothing to take after all and the caller should simply poll again: a signal came
    /// (`EINTR`; the listener blocks, so it is not retried here), the queue was empty (`EAGAIN`),
    /// or the connection was aborted before it was taken (`ECONNABORTED`, `EPROTO`).
    public static func accept(_ listening: Int32) throws(Errno) -> Int32? {
        let fd = ccached_accept_cloexec(listening)
        if fd >= 0 { return fd }
        let error = Errno.current
        if error == .interrupted || error == .wouldBlock || error == .connectionAborted || error == .protocolError {
            return nil
        }
        throw error
    }
}
