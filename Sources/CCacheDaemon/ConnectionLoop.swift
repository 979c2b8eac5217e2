import Glibc
import KCM
import Logging
import SecureMemory
import SystemCalls

/// Serves one connected socket on the calling thread: reads, hands the bytes to its
/// ``ConnectionSession``, sends what it answers, until the peer closes or the session says stop.
/// The daemon's event loop hands a connection here when it must wait (``ServedConnections``):
/// `backlog` is the rest of a reply the socket did not take, sent first; a frame the session set
/// aside is answered next.
enum ConnectionLoop {
    static func serve(
        _ fd: Int32, session: inout ConnectionSession, backlog: [UInt8], requestTimeout: UInt32,
        logger: Logger
    ) {
        // Nothing this connection received or sent outlives it.
        defer { session.wipe() }
        logger.debug("connection on a thread of its own")
        let backlogSent = (try? Socket.sendAll(fd, backlog)) != nil
        backlog.wipeStorage()
        guard backlogSent else { return }
        // Left uninitialised: only the pages a read actually fills become resident, so a thousand
        // idle connections do not cost a thousand zeroed 64 KiB buffers.
        var input = [UInt8](unsafeUninitializedCapacity: 65536) { _, count in count = 65536 }
        defer { input.wipeStorage() }
        // Reads wake at least this often, so that a request left half-sent can be timed out.
        if requestTimeout > 0 {
            var timeout = timeval(tv_sec: Int(requestTimeout), tv_usec: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        let send = { (frame: ReplyFrame) in (try? ConnectionLoop.send(frame, to: fd)) != nil }
        let wait = { (beacon: Int32?, milliseconds: Int32) in waitForChange(socket: fd, beacon: beacon, milliseconds) }
        // What the event loop left: a frame set aside, frames behind it.
        guard session.receive([], now: MonotonicClock.seconds(), sendFrame: send, waitForChange: wait) else { return }
        while true {
            let count: Int
            do throws(Errno) {
                count = try retryingInterrupts { input.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            } catch  where error == .wouldBlock {
                // Idle between requests is fine; a request stalled midway is not.
                if session.hasStalled(now: MonotonicClock.seconds()) { return }
                continue
            } catch {
                break
            }
            guard count > 0 else { break }
            let open = session.receive(
                input[0..<count], now: MonotonicClock.seconds(), sendFrame: send, waitForChange: wait)
            input.withUnsafeMutableBytes { SecureArena.wipe($0.baseAddress!, count: count) }
            guard open else { return }
        }
    }

    /// Sends a whole reply: a large credential list gathered from where the store keeps it.
    private static func send(_ frame: ReplyFrame, to fd: Int32) throws(Errno) {
        guard !frame.credentials.isEmpty else { return try Socket.sendAll(fd, frame.head) }
        let result: Result<Void, Errno> = SecureBytes.withUnsafeBytes(of: frame.credentials.map(\.bytes)) { fields in
            do throws(Errno) {
                return .success(try Socket.sendAll(fd, frame.head, dataFields: fields))
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Sleeps in poll until the beacon fires, the peer hangs up or speaks, or the time passes: a
    /// waiting watcher costs a sleeping thread, and one that disconnects is noticed at once.
    private static func waitForChange(
        socket fd: Int32, beacon: Int32?, _ milliseconds: Int32
    ) -> ConnectionSession.Wake {
        // POLLRDHUP (0x2000) is Linux's "the peer shut down its side"; Glibc's module hides it.
        let hangUp = Int16(POLLHUP | POLLERR) | 0x2000
        var descriptors = [pollfd(fd: fd, events: Int16(POLLIN) | 0x2000, revents: 0)]
        if let beacon { descriptors.append(pollfd(fd: beacon, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
        if ready < 0 { return Errno.current == .interrupted ? .changed : .timedOut }
        if descriptors[0].revents & hangUp != 0 { return .peerGone }
        if descriptors.count > 1, descriptors[1].revents != 0 { return .changed }
        if descriptors[0].revents != 0 { return .peerSpoke }
        return .timedOut
    }
}
