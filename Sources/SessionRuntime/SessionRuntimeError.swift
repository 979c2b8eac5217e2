/// Why the session's runtime location cannot be used, worded for the person who sees it.
public enum SessionRuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `CCACHED_SESSION` is not usable as a directory name.
    case invalidSessionName(String)
    /// A directory on the way to the socket is unsafe or unusable.
    case unsafePath(path: String, problem: String)
    /// A file could not be written.
    case cannotWrite(path: String, problem: String)

    public var description: String {
        switch self {
        case .invalidSessionName(let name):
            "CCACHED_SESSION='\(name)' is not a valid session name: use 1 to 64 letters, digits, '.', '_' or '-'"
        case .unsafePath(let path, let problem):
            "refusing to use \(path): \(problem). ccached keeps its socket only in a directory that "
                + "belongs to you alone (mode 0700); fix or remove that path"
        case .cannotWrite(let path, let problem): "cannot write \(path): \(problem)"
        }
    }
}
