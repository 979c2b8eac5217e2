import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A pipe for ccached's `--ready-fd`: the child gets the write end, the test reads the one line
/// ccached writes there (`READY`, `EXISTS` or `ERROR <why>`) and so knows the daemon listens,
/// without polling the socket or sleeping.
package final class ReadinessPipe {
    /// The end the test reads.
    package let readEnd: Int32
    /// The end the child inherits (as a numbered descriptor); -1 once closed here.
    package private(set) var writeEnd: Int32

    /// Opens the pipe. Both ends are close-on-exec, so no other child started meanwhile keeps one.
    package init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EMFILE) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    /// Closes this process's copy of the write end, once the child has its own: then a child
    /// that dies without a word shows up as end-of-file.
    package func closeWriteEnd() {
        if writeEnd >= 0 { close(writeEnd) }
        writeEnd = -1
    }

    /// The first line the child wrote (without its newline), or nil if it closed the pipe without
    /// one or wrote nothing for `seconds` (a bound against a hung daemon, not a timing check).
    package func readLine(within seconds: Double = 10) -> String? {
        closeWriteEnd()
        let deadline = Date().addingTimeInterval(seconds)
        var bytes: [UInt8] = []
        while bytes.count < 4096 {
            let remaining = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
            var descriptor = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, remaining)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return nil }
            var byte: UInt8 = 0
            let count = read(readEnd, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return nil
    }

    deinit {
        closeWriteEnd()
        close(readEnd)
    }
}
