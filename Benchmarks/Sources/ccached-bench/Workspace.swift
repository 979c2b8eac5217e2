import ArgumentParser
import Glibc
import SystemCalls

/// The run's private temporary directory: the krb5.conf fragment that points libkrb5 at the
/// benchmark's ccached, the sockets, FILE caches and ccached's log. Nothing outside it is touched.
struct Workspace {
    let path: String

    var krb5ConfigPath: String { path + "/krb5.conf" }
    /// ccached creates the directory (0700) itself.
    var kcmSocketPath: String { path + "/kcm/socket" }
    var echoSocketPath: String { path + "/echo.socket" }

    static func create() throws -> Workspace {
        var template = Array("/tmp/ccached-bench.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ValidationError("cannot create a temporary directory: \(Errno.current.message)")
        }
        let workspace = Workspace(path: String(cString: made))
        let config = """
            [libdefaults]
                default_realm = BENCH.TEST
                kcm_socket = \(workspace.kcmSocketPath)
                dns_lookup_kdc = false
                dns_lookup_realm = false

            """
        let fd = open(workspace.krb5ConfigPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot write \(workspace.krb5ConfigPath)") }
        defer { close(fd) }
        _ = config.withCString { UnixSocketClient.writeAll(fd, $0, strlen($0)) }
        return workspace
    }

    /// Writes a krb5.conf fragment named `name` in the workspace that points libkrb5's KCM client at
    /// `socket`; returns its path.
    func writeKCMConfig(name: String, socket: String) throws -> String {
        let configPath = path + "/" + name
        let config = """
            [libdefaults]
                default_realm = BENCH.TEST
                kcm_socket = \(socket)
                dns_lookup_kdc = false
                dns_lookup_realm = false

            """
        let fd = open(configPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot write \(configPath)") }
        defer { close(fd) }
        _ = config.withCString { UnixSocketClient.writeAll(fd, $0, strlen($0)) }
        return configPath
    }

    /// Removes the directory and everything in it (no symbolic links are followed).
    func remove() {
        Self.removeTree(path)
    }

    private static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            if let directory = opendir(path) {
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) {
                        String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name == "." || name == ".." { continue }
                    removeTree(path + "/" + name)
                }
                closedir(directory)
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String) throws {
        guard !path.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw ValidationError("cannot create \(current): \(Errno.current.message)")
            }
        }
    }
}
