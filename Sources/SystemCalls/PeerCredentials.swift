import CSupport
import Glibc

/// Who is at the other end of a Unix socket, as the kernel recorded it at `connect` (SO_PEERCRED):
/// for a setuid program, its effective ids at that moment. Read once per accepted socket and passed
/// on as a value.
public struct PeerCredentials: Hashable, Sendable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// Reads the peer credentials of a connected Unix socket
    /// (`getsockopt(fd, SOL_SOCKET, SO_PEERCRED, …)`).
    public init(socket fd: Int32) throws(Errno) {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard ccached_peer_credentials(fd, &pid, &uid, &gid) == 0 else { throw .current }
        self.init(pid: pid, uid: uid, gid: gid)
    }

    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}
