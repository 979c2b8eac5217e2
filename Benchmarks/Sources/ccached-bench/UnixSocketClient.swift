import CSupport
import Glibc
import SystemCalls

/// Connecting to a Unix socket path, the process on the other end, and whole-buffer I/O straight
/// from raw memory (the timed paths reuse their buffers; `Socket` in SystemCalls works on arrays).
enum UnixSocketClient {
    /// A connected descriptor, or nil when nobody accepts on `path` (yet).
    static func connect(_ path: String) -> Int32? {
        let fd = ccached_unix_stream_socket()
        guard fd >= 0 else { return nil }
        guard ccached_connect_unix(fd, path) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Whether something accepts connections on `path`.
    static func isListening(_ path: String) -> Bool {
        guard let fd = connect(path) else { return false }
        close(fd)
        return true
    }

    /// The pid of the process that listens on `path` (its peer credentials), if any.
    static func listenerPID(_ path: String) -> pid_t? {
        guard let fd = connect(path) else { return nil }
        defer { close(fd) }
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard ccached_peer_credentials(fd, &pid, &uid, &gid) == 0 else { return nil }
        return pid
    }

    /// Writes all of `count` bytes.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Bool {
        repeatUntilAll(count) { offset in write(fd, bytes + offset, count - offset) }
    }

    /// Writes all of `bytes`.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0.baseAddress!, $0.count) }
    }

    /// Reads exactly `count` bytes.
    static func readExactly(_ fd: Int32, _ bytes: UnsafeMutableRawPointer, _ count: Int) -> Bool {
        repeatUntilAll(count) { offset in read(fd, bytes + offset, count - offset) }
    }

    /// Calls `transfer` (a read or a write from `offset` on) until `count` bytes moved, retrying
    /// EINTR; false at end of file or on an error.
    private static func repeatUntilAll(_ count: Int, _ transfer: (_ offset: Int) -> Int) -> Bool {
        var done = 0
        while done < count {
            let offset = done
            guard let n = try? retryingInterrupts({ transfer(offset) }), n > 0 else { return false }
            done += n
        }
        return true
    }
}
