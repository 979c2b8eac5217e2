import SystemCalls

/// Decides which peers a daemon serves: its owner, and root unless configured otherwise (so that
/// PAM and sshd, running as root, can hand tickets over). Everyone else gets KRB5_FCC_PERM.
public struct PeerAuthorizer: Sendable {
    public let ownerUID: UInt32
    public let allowsRoot: Bool

    public init(ownerUID: UInt32, allowsRoot: Bool = true) {
        self.ownerUID = ownerUID
        self.allowsRoot = allowsRoot
    }

    public func isAuthorized(_ peer: PeerCredentials) -> Bool {
        peer.uid == ownerUID || (allowsRoot && peer.uid == 0)
    }
}
