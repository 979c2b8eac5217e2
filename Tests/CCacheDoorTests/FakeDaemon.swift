import CSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A stand-in for a session daemon's hand-off socket at `path`: accepts as many connections as are
/// made and gives each message it receives, with the descriptor it carried (-1: none), to `reply`,
/// which owns that descriptor and says what to do. By default it answers 'A' to every 'H' (closing
/// the client it was given) and hangs up on anything else. Runs as `uid` (the listening thread's
/// own ids, so the socket and its SO_PEERCRED say that uid).
final class FakeDaemon: @unchecked Sendable {
    /// What the daemon does with one message.
    enum Reply {
        /// Sends this byte back.
        case answer(UInt8)
        /// Sends nothing, and goes on reading the connection.
        case silence
        /// Closes the connection.
        case hangUp
    }

    let path: String
    let accepted = Atomic<Int>(0)
    let answered = Atomic<Int>(0)
    private let reply: @Sendable (_ message: UInt8, _ descriptor: Int32) -> Reply
    private let wake: [Int32]
    private let done = DispatchSemaphore(value: 0)

    /// Makes `directory` (0700, `uid`'s) and listens at `directory/kcm.handoff`.
    convenience init(directory: String, uid: UInt32 = getuid()) {
        #expect(mkdir(directory, 0o700) == 0)
        if uid != getuid() { #expect(chown(directory, uid, uid) == 0) }
        self.init(path: directory + "/kcm.handoff", uid: uid)
    }

    init(
        path: String, uid: UInt32 = getuid(),
        reply: @escaping @Sendable (_ message: UInt8, _ descriptor: Int32) -> Reply = FakeDaemon.answerHandOffs
    ) {
        self.path = path
        self.reply = reply
        var ends: [Int32] = [-1, -1]
        #expect(ccached_pipe_cloexec(&ends) == 0)
        wake = ends
        let bound = DispatchSemaphore(value: 0)
        final class Flag: @unchecked Sendable { var value = false }  // handed over by the semaphore
        let listening = Flag()
        Thread.detachNewThread { [self] in
            // Only this thread's ids change (raw syscalls); root stays the saved uid to return to.
            let switched = uid == getuid() || ccached_thread_setresuid(uid, uid, 0) == 0
            let listener = ccached_unix_stream_socket()
            let ok = switched && ccached_bind_unix(listener, path) == 0 && listen(listener, 64) == 0
            let restored = uid == getuid() || ccached_thread_setresuid(0, 0, 0) == 0
            listening.value = ok && restored
            bound.signal()
            if ok && restored { serve(listener) }
            close(listener)
            done.signal()
        }
        bound.wait()
        #expect(listening.value, "the fake daemon could not listen on \(path)")
    }

    /// The default reply: 'A' to a hand-off (its client closed), a hang-up to anything else.
    static func answerHandOffs(_ message: UInt8, _ descriptor: Int32) -> Reply {
        if descriptor >= 0 { close(descriptor) }
        return message == UInt8(ascii: "H") ? .answer(UInt8(ascii: "A")) : .hangUp
    }

    private func serve(_ listener: Int32) {
        var connections: [Int32] = []
        defer { for fd in connections { close(fd) } }
        while true {
            var descriptors = [
                pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0),
                pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            ]
            descriptors += connections.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&descriptors, nfds_t(descriptors.count), -1) > 0, descriptors[0].revents == 0 else {
                return
            }
            if descriptors[1].revents != 0 {
                let fd = ccached_accept_cloexec(listener)
                if fd >= 0 {
                    connections.append(fd)
                    accepted.add(1, ordering: .relaxed)
                }
            }
            for descriptor in descriptors.dropFirst(2) where descriptor.revents != 0 {
                var byte: UInt8 = 0
                var client: Int32 = -1
                let action: Reply =
                    ccached_receive_descriptor(descriptor.fd, &byte, &client) == 1 ? reply(byte, client) : .hangUp
                switch action {
                case .answer(var answer):
                    _ = write(descriptor.fd, &answer, 1)
                    answered.add(1, ordering: .relaxed)
                case .silence:
                    break
                case .hangUp:
                    close(descriptor.fd)
                    connections.removeAll { $0 == descriptor.fd }
                }
            }
        }
    }

    /// The daemon exits: its listener and every hand-off connection close.
    func stop() {
        var byte: UInt8 = 0
        _ = write(wake[1], &byte, 1)
        done.wait()
        unlink(path)
        close(wake[0])
        close(wake[1])
    }
}
