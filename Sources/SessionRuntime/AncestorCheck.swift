import Glibc
import SystemCalls

/// Checks every directory on the way to a socket, as ssh does for `authorized_keys`: a directory
/// that someone else can change lets them swap what lies below it, so checking only the socket's
/// parent is not enough (issue 12, item 6: root's `--socket /tmp/x/rootsub/sock` with `/tmp/x`
/// another user's let that user rename `rootsub` and receive root's tickets).
public enum AncestorCheck {
    /// The first directory on the way that fails the rules, and why.
    public struct Problem: Equatable, Sendable, CustomStringConvertible {
        public let path: String
        public let problem: String

        public var description: String { "\(path): \(problem)" }
    }

    /// Checks `directory` and each of its ancestors up to `/` with `lstat` (never following a link):
    /// each must be a directory (not a symbolic link), owned by root or `uid`, and not writable by
    /// group or others unless its sticky bit is set (as `/tmp`'s is: then only an entry's owner can
    /// rename or remove it). A relative `directory` is taken from the current directory, whose
    /// ancestors count too. Returns nil when every one passes.
    public static func firstProblem(in directory: String, uid: UInt32) -> Problem? {
        var absolute = directory
        if !absolute.hasPrefix("/") {
            guard let cwd = currentDirectory() else {
                return Problem(path: directory, problem: "the current directory cannot be read")
            }
            absolute = cwd == "/" ? "/" + directory : cwd + "/" + directory
        }
        // Every prefix as written, so `a/../b` is checked at each step the kernel takes.
        var prefixes = ["/"]
        var current = ""
        for component in absolute.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + component
            prefixes.append(current)
        }
        for path in prefixes {
            if let problem = check(path, uid: uid) { return Problem(path: path, problem: problem) }
        }
        return nil
    }

    /// Why one directory on the way is unsafe, or nil.
    static func check(_ path: String, uid: UInt32) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return Errno.current.message }
        let type = info.st_mode & S_IFMT
        if type == S_IFLNK { return "it is a symbolic link (name the real directory instead)" }
        guard type == S_IFDIR else { return "it is not a directory" }
        guard info.st_uid == 0 || info.st_uid == uid else {
            return
                "it is owned by uid \(info.st_uid), neither root nor uid \(uid), who could replace what lies below it"
        }
        let sticky = info.st_mode & S_ISVTX != 0
        if info.st_mode & 0o022 != 0 && !sticky {
            let mode = String(info.st_mode & 0o7777, radix: 8)
            return "it is writable by group or others (mode \(mode)) without the sticky bit"
        }
        return nil
    }

    private static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
