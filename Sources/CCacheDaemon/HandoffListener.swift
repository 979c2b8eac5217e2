import CSupport
import Glibc
import Logging
import SystemCalls

/// The daemon's hand-off socket, `<socket>.handoff` (0600, beside the daemon's socket): where
/// `ccached-door` passes connections it accepted on the standard KCM path.
///
/// Protocol (one connection, any number of messages): the door sends 1 byte 'H' with exactly one
/// descriptor (SCM_RIGHTS); the daemon answers 'A' when it serves that connection, 'R' when it
/// refuses it. Anything else ends the hand-off connection. Only a peer whose SO_PEERCRED uid is 0
/// is accepted; a received descriptor that is not a connected AF_UNIX stream socket is closed and
/// refused. The daemon then serves the descriptor like its own accept — including the SO_PEERCRED
/// check, which names the original client, not the door.
public final class HandoffListener: Sendable {
    public static let handoffByte: UInt8 = 0x48
    public static let acceptedByte: UInt8 = 0x41
    public static let refusedByte: UInt8 = 0x52
    /// A hand-off connection idle this long is closed (the door sends at once).
    static let idleSeconds = 30

    private let listener: UnixSocketListener
    private let logger: Logger
    public var fileDescriptor: Int32 { listener.fileDescriptor }
    public var path: String { listener.path }

    private init(listener: UnixSocketListener, logger: Logger) {
        self.listener = listener
        self.logger = logger
    }

    /// Binds `<daemonSocket>.handoff` (created like the daemon socket: 0600, linked into place
    /// only once listening, removed on close only if still ours).
    public static func bind(besides daemonSocket: String, logger: Logger) throws(DaemonError) -> HandoffListener {
        HandoffListener(listener: try UnixSocketListener.bind(path: daemonSocket + ".handoff"), logger: logger)
    }

    /// After poll said the socket is readable: accepts one hand-off connection. A peer that is not
    /// root is closed at once; root's is served on its own thread, each received descriptor going
    /// to `serve`, which returns whether it serves it ('A') or refused it ('R'). `serve` owns the
    /// descriptor either way and closes one it refuses, as the daemon's own accept path does.
    public func acceptOne(serve: @escaping @Sendable (Int32) -> Bool) {
        guard let connection = try? listener.accept() else { return }
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard ccached_peer_credentials(connection, &pid, &uid, &gid) == 0, uid == 0 else {
            logger.warning(
                "refusing a hand-off connection from uid \(uid) pid \(pid): only root (ccached-door) may hand off")
            Glibc.close(connection)
            return
        }
        var limit = timeval(tv_sec: Self.idleSeconds, tv_usec: 0)
        _ = setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let logger = self.logger
        // The connections' stack size: a parked thread may serve either kind next (ConnectionThread).
        let started = ConnectionThread.start(stackSize: 512 << 10) {
            Self.receive(on: connection, serve: serve, logger: logger)
        }
        if started != 0 {
            logger.error("cannot start a thread for a hand-off connection: \(Errno(rawValue: started))")
            Glibc.close(connection)
        }
    }

    /// Receives descriptors until the door closes the connection or breaks the protocol.
    private static func receive(on connection: Int32, serve: (Int32) -> Bool, logger: Logger) {
        defer { Glibc.close(connection) }
        while true {
            var byte: UInt8 = 0
            var fd: Int32 = -1
            let result = ccached_receive_descriptor(connection, &byte, &fd)
            guard result == 1 else { return }  // end of file, timeout or error
            guard byte == handoffByte else {
                if fd >= 0 { Glibc.close(fd) }
                logger.warning("closing a hand-off connection that sent byte \(byte) instead of 'H'")
                return
            }
            var answer = refusedByte
            if fd < 0 {
                logger.warning("a hand-off message carried no single descriptor; refused")
            } else if ccached_is_connected_unix_stream(fd) != 1 {
                logger.warning("a handed-off descriptor is not a connected Unix stream socket; refused")
                Glibc.close(fd)
            } else if serve(fd) {
                answer = acceptedByte
            }
            guard write(connection, &answer, 1) == 1 else { return }
        }
    }

    /// Stops listening and removes the path if it is still ours.
    public func close() { listener.close() }
}
