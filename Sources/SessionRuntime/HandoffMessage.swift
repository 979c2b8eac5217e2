/// The hand-off protocol between ccached-door (root) and a session daemon's `<socket>.handoff`
/// socket, defined once for both ends (Docs/protocol.md, "The hand-off socket").
///
/// Every message is one byte, with at most one descriptor attached (SCM_RIGHTS). The door sends;
/// the daemon answers each message with one message, in order. The door waits for each answer
/// before it sends again, except for ``handOff`` from its accept thread, which leaves up to 8
/// unanswered (the daemon's answers then wait, a few bytes, in the door's receive queue). The daemon
/// accepts a hand-off connection only from a peer whose SO_PEERCRED uid is 0; the door connects
/// only to a socket owned and served by the session's user.
public enum HandoffMessage: UInt8, Sendable, CaseIterable {
    /// Door → daemon, with the client's connection: serve it. Answer: ``accepted`` or ``refused``.
    case handOff = 0x48  // 'H'
    /// Door → daemon, with the session's state file (a memfd): restore it. The first message to a
    /// daemon started with `--state-from-door`, which serves no connection before it (connections
    /// handed off meanwhile wait). Answer: ``accepted`` (restored, or found empty) or ``refused``
    /// (the daemon is not waiting for one; the descriptor is closed).
    case stateFile = 0x53  // 'S'
    /// Door → daemon, no descriptor: send me a descriptor of your state file (the door recovers
    /// them after it restarted). Answer: ``stateFileCopy`` with it, or ``refused`` (none).
    case stateFileRequest = 0x44  // 'D'
    /// Daemon → door, with the daemon's state file: the answer to ``stateFileRequest``.
    case stateFileCopy = 0x46  // 'F'
    /// Daemon → door: the message is done (the client is served; the state file is restored).
    case accepted = 0x41  // 'A'
    /// Daemon → door: the message is refused (e.g. over --max-connections); a client is closed.
    case refused = 0x52  // 'R'

    /// The byte on the wire.
    public var byte: UInt8 { rawValue }
}
