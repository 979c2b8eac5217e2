import CSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A listening socket in a directory of its own, and another process (python3) that connects
/// to it running `after` (Python, once connected).
final class ConnectingChild {
    let directory: URL
    let listener: Int32
    let pid: pid_t
    /// Once reaped, its pid may belong to another process: never signal it again.
    private var reaped = false

    init(after: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("door-peer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("s").path
        listener = ccached_unix_stream_socket()
        #expect(ccached_bind_unix(listener, path) == 0)
        #expect(listen(listener, 4) == 0)
        var pid: pid_t = 0
        let script = "import socket, time; s = socket.socket(socket.AF_UNIX); s.connect('\(path)'); \(after)"
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("python3"), strdup("-c"), strdup(script), nil]
        defer { for pointer in argv { free(pointer) } }
        #expect(posix_spawnp(&pid, "python3", nil, nil, argv, environ) == 0)
        self.pid = pid
    }

    /// Waits for the child to exit (it is reaped); its exit status.
    func reap() -> Int32 {
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        reaped = true
        return status
    }

    deinit {
        if !reaped {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        close(listener)
        try? FileManager.default.removeItem(at: directory)
    }
}
