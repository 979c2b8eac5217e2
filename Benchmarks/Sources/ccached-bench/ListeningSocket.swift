import ArgumentParser
import CSupport
import Glibc
import SystemCalls

/// `--socket PATH` of the bench's internal servers (the echo floor, the replay bound), and the
/// listening socket made there.
struct ListeningSocket: ParsableArguments {
    @Option(help: "The Unix socket to listen on.")
    var socket: String

    /// Binds and listens at `socket`, with SIGPIPE ignored: a client may vanish mid-reply.
    func listen() throws -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let listener = ccached_unix_stream_socket()
        guard listener >= 0, ccached_bind_unix(listener, socket) == 0, Glibc.listen(listener, 64) == 0 else {
            throw ValidationError("cannot listen on \(socket): \(Errno.current.message)")
        }
        return listener
    }
}
