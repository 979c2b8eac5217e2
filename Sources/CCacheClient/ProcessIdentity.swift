import CSupport
import Glibc
import SystemCalls

/// Acts with the process's identity even when the calling thread has switched its own uid/gid
/// (thread impersonation through the raw `setresuid` syscall, which glibc's wrapper would apply to
/// every thread): the classic CCAPI rule that a credential cache belongs to the process.
///
/// Linux records the *calling thread's* credentials in `SO_PEERCRED` at `connect`, and the
/// session's paths depend on the uid, so a call made while impersonating would otherwise reach
/// (or be refused by) the wrong daemon.
public enum ProcessIdentity {
    /// Real, effective and saved ids.
    public struct IDs: Equatable, Sendable, CustomStringConvertible {
        public var real: UInt32
        public var effective: UInt32
        public var saved: UInt32

        public var description: String { "\(real)/\(effective)/\(saved)" }
    }

    /// The process's uids and gids, as the kernel shows them for the thread-group leader.
    public static func process() -> (uid: IDs, gid: IDs)? {
        guard let status = readText("/proc/self/status") else { return nil }
        func ids(_ key: String) -> IDs? {
            for line in status.split(separator: "\n") where line.hasPrefix(key) {
                let numbers = line.dropFirst(key.count).split(whereSeparator: { $0 == "\t" || $0 == " " })
                    .compactMap { UInt32($0) }
                guard numbers.count >= 3 else { return nil }
                return IDs(real: numbers[0], effective: numbers[1], saved: numbers[2])
            }
            return nil
        }
        guard let uid = ids("Uid:"), let gid = ids("Gid:") else { return nil }
        return (uid, gid)
    }

    /// The calling thread's own uids and gids.
    public static func thread() -> (uid: IDs, gid: IDs) {
        var ur: uid_t = 0
        var ue: uid_t = 0
        var us: uid_t = 0
        var gr: gid_t = 0
        var ge: gid_t = 0
        var gs: gid_t = 0
        _ = ccached_thread_getresuid(&ur, &ue, &us)
        _ = ccached_thread_getresgid(&gr, &ge, &gs)
        return (IDs(real: ur, effective: ue, saved: us), IDs(real: gr, effective: ge, saved: gs))
    }

    /// The uid the process runs as (its real uid), whatever this thread has switched to.
    public static var processUID: UInt32 { process()?.uid.real ?? getuid() }

    /// Runs `body` with this thread's ids set to the process's, then puts the thread's own back.
    /// When they already agree (the usual case) this costs two small syscalls.
    public static func withProcessIdentity<T>(_ body: () throws(CCacheClientError) -> T) throws(CCacheClientError)
        -> T
    {
        let mine = thread()
        guard let process = process(), mine.uid != process.uid || mine.gid != process.gid else {
            return try body()
        }
        // The gid first while we may still have the privilege to change it, and back in reverse order.
        guard ccached_thread_setresgid(process.gid.real, process.gid.effective, process.gid.saved) == 0 else {
            throw .identity(
                "this thread runs as gid \(mine.gid) and cannot return to the process's gid \(process.gid): "
                    + Errno.current.message)
        }
        guard ccached_thread_setresuid(process.uid.real, process.uid.effective, process.uid.saved) == 0 else {
            let reason = Errno.current.message
            _ = ccached_thread_setresgid(mine.gid.real, mine.gid.effective, mine.gid.saved)
            throw .identity(
                "this thread runs as uid \(mine.uid) and cannot return to the process's uid \(process.uid): \(reason)")
        }
        defer {
            // gid first, while the thread still holds the process's (privileged) uid.
            _ = ccached_thread_setresgid(mine.gid.real, mine.gid.effective, mine.gid.saved)
            _ = ccached_thread_setresuid(mine.uid.real, mine.uid.effective, mine.uid.saved)
        }
        return try body()
    }

    private static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
    }
}
