import CCacheClient
import Foundation
import KCM
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The client against a daemon caught halfway through dying: its main thread has exited (so the
/// process looks gone to `kill(pid, 0)` and `/proc/PID/stat`) while another thread still holds its
/// sockets. That is what a daemon killed with SIGKILL looks like for as long as the scheduler keeps
/// its last thread waiting, and what made `reconnectAfterKill` fail under load: every connection it
/// took was reset. Here the state is made to last, so the test does not depend on timing.
@Suite("Dying daemon")
final class DyingDaemonTests: ScratchSuite {
    /// A stand-in for the dying daemon (python3, which the end-to-end tests need anyway): it listens
    /// at the socket path, lets its main thread alone exit (the raw `exit` system call, not
    /// `exit_group`), then, from its other thread, accepts every connection and closes it unread
    /// once the request has arrived — the reset a dying daemon's sockets give. It logs each reset.
    static let dyingDaemon = #"""
        import ctypes, os, select, socket, sys, threading, time
        path, log = sys.argv[1], sys.argv[2]
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(16)
        def note(word):
            with open(log, "a") as f:
                f.write(word + "\n")
        def serve():
            while open("/proc/self/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                time.sleep(0.001)
            note("dying")
            while True:
                connection, _ = listener.accept()
                select.select([connection], [], [])
                note("reset")
                connection.close()
        threading.Thread(target=serve).start()
        exit_thread = {"x86_64": 60, "aarch64": 93}[os.uname().machine]
        ctypes.CDLL(None).syscall(exit_thread, 0)
        """#

    /// The outcome of a call made on another thread.
    final class Outcome: Sendable {
        let result = Mutex<Result<UInt32, CCacheClientError>?>(nil)
        let done = DispatchSemaphore(value: 0)
    }

    @Test("a dying daemon is waited out until it is gone, then a new one serves the call")
    func dyingDaemonWaitedOut() throws {
        _ = scratch.socketDirectory()
        let environment = scratch.environment()
        let socket = try #require(environment["CCACHED_SOCKET"])
        let log = scratch.path + "/dying.log"
        let dying = Process()
        dying.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        dying.arguments = ["-c", Self.dyingDaemon, socket, log]
        try dying.run()
        let dyingPID = dying.processIdentifier
        // Signalled once only: until then it cannot have been reaped (its other thread keeps it
        // from exiting), so its pid is still its own; after that Foundation may reap it at any
        // moment and the pid may go to another process.
        var killed = false
        let killDying = {
            if !killed && dying.isRunning { kill(dyingPID, SIGKILL) }
            killed = true
        }
        defer {
            killDying()
            dying.waitUntilExit()
        }
        let lines = { (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n") ?? [] }
        try #require(eventually(10) { lines().contains("dying") }, "the stand-in's main thread did not exit")

        let context = try CCacheContext(options: .init(environment: environment, idleTimeout: 5))
        let outcome = Outcome()
        Thread.detachNewThread {
            let result = Result { () throws(CCacheClientError) -> UInt32 in try context.status().pid }
            outcome.result.withLock { $0 = result }
            outcome.done.signal()
        }
        // The evidence that the client waits for the dying process, rather than reconnecting into
        // it: this process (the client) holds a pidfd for it. Without the wait the call fails
        // within a few resets instead.
        let finished = { outcome.result.withLock { $0 != nil } }
        #expect(eventually(10) { finished() || holdsPidfd(for: dyingPID) })
        let early = outcome.result.withLock { $0 }.map { "\($0)" } ?? "still calling"
        #expect(holdsPidfd(for: dyingPID), "the client did not wait for the dying daemon: \(early)")
        #expect(lines().filter { $0 == "reset" }.count == 1)

        // Its last thread goes: now nothing of it answers, and the client starts a real daemon.
        killDying()
        #expect(outcome.done.wait(timeout: .now() + 30) == .success, "the call never returned")
        switch outcome.result.withLock({ $0 }) {
        case .success(let pid):
            #expect(Int32(pid) != dyingPID)
            #expect(processAlive(Int32(pid)))
        case .failure(let error):
            Issue.record("the call failed: \(error)")
        case nil:
            Issue.record("the call never returned")
        }
        // It reconnected only once the dying daemon was gone: one reset in all.
        #expect(lines().filter { $0 == "reset" }.count == 1)
    }

    /// Whether this process has a pidfd open for `pid` (its `/proc/self/fdinfo` says `Pid: <pid>`).
    func holdsPidfd(for pid: Int32) -> Bool {
        guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else {
            return false
        }
        for descriptor in descriptors {
            let link = "/proc/self/fd/\(descriptor)"
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link),
                target.contains("pidfd"),
                let info = try? String(contentsOfFile: "/proc/self/fdinfo/\(descriptor)", encoding: .utf8)
            else { continue }
            if info.split(separator: "\n").contains("Pid:\t\(pid)") { return true }
        }
        return false
    }
}
