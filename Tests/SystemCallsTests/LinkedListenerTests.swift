import Foundation
import Glibc
import SystemCalls
import TestSupport
import Testing

@Suite("LinkedListener")
final class LinkedListenerTests {
    /// Each test's own private directory (Swift Testing makes one instance per test), removed with
    /// the instance.
    let directory: URL

    init() throws {
        directory = try ScratchDirectory.make("ccached-syscalls")
    }

    deinit { ScratchDirectory.remove(directory) }

    @Test("bind makes the socket the given mode, accepts, and never displaces a live listener")
    func modeAndLiveListener() throws {
        let path = directory.path + "/door.sock"
        let listener = try LinkedListener.bind(path: path, temporary: path + ".new", mode: 0o666)
        defer { listener.close() }
        var info = stat()
        #expect(lstat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o666)
        // Nothing is waiting yet: accept says "poll again" rather than blocking or failing.
        let flags = fcntl(listener.fileDescriptor, F_GETFL)
        #expect(fcntl(listener.fileDescriptor, F_SETFL, flags | O_NONBLOCK) == 0)
        #expect(try listener.accept() == nil)
        #expect(throws: LinkedListener.Failure.answered) {
            try LinkedListener.bind(path: path, temporary: path + ".other", mode: 0o600)
        }
        // The second bind's probe is what reached the live listener.
        let probe = try listener.accept()
        #expect(probe != nil)
        if let probe { close(probe) }
    }

    @Test("a stale socket is replaced; a file that is not a socket is refused")
    func staleAndForeign() throws {
        let path = directory.path + "/kcm.sock"
        // A listener whose process died leaves its file: close the descriptor, keep the path.
        let dead = try LinkedListener.bind(path: path, temporary: path + ".new", mode: 0o600)
        close(dead.fileDescriptor)
        let fresh = try LinkedListener.bind(path: path, temporary: path + ".new", mode: 0o600)
        #expect(fresh.isInPlace)
        fresh.close()
        #expect(!FileManager.default.fileExists(atPath: path))

        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        #expect(throws: LinkedListener.Failure.notASocket) {
            try LinkedListener.bind(path: path, temporary: path + ".new", mode: 0o600)
        }
    }

    @Test("the caller's directory rule is asked before anything is bound")
    func directoryRule() throws {
        let path = directory.path + "/kcm.sock"
        #expect(throws: LinkedListener.Failure.unsafeDirectory(path: directory.path, problem: "no")) {
            try LinkedListener.bind(path: path, temporary: path + ".new", mode: 0o600) {
                () throws(LinkedListener.Failure) in
                throw .unsafeDirectory(path: directory.path, problem: "no")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
