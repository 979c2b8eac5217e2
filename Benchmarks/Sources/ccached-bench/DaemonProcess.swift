import Glibc
import SystemCalls

/// A `ccached` (or any server on a Unix socket) that the benchmark started, ready once its socket
/// accepts connections.
struct DaemonProcess {
    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    let process: ChildProcess
    let socketPath: String
    /// From exec to the first successful connect, in nanoseconds.
    let startupNanoseconds: UInt64

    /// Starts `executable arguments…` with standard error appended to `logPath` and waits until
    /// `socketPath` accepts a connection (polling every 50 µs, for at most `timeoutSeconds`).
    static func start(
        _ executable: String, _ arguments: [String], socketPath: String, logPath: String? = nil,
        timeoutSeconds: Double = 10
    ) throws(StartError) -> DaemonProcess {
        let log = logPath.map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) } ?? -1
        defer { if log >= 0 { close(log) } }
        let started = MonotonicClock.nanoseconds()
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(executable, arguments, standardError: log >= 0 ? log : nil)
        } catch {
            throw StartError(description: error.description)
        }
        let deadline = started + UInt64(timeoutSeconds * 1e9)
        while true {
            if UnixSocketClient.isListening(socketPath) {
                return DaemonProcess(
                    process: process, socketPath: socketPath, startupNanoseconds: MonotonicClock.nanoseconds() - started
                )
            }
            if process.hasExited() {
                throw StartError(description: "\(executable) exited before \(socketPath) accepted connections")
            }
            if MonotonicClock.nanoseconds() > deadline {
                process.terminate()
                throw StartError(description: "\(socketPath) did not accept connections within \(timeoutSeconds) s")
            }
            MonotonicClock.sleep(microseconds: 50)
        }
    }

    var memory: ProcessMemory? { ProcessMemory.of(process.pid) }

    /// SIGTERM and wait: ccached removes its socket and wipes its store.
    func stop() { process.terminate() }
}
