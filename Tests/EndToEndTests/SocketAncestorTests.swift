import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon checks every ancestor of its socket directory, not only the parent (issue 12, item 6).
@Suite("socket ancestors")
struct SocketAncestorTests {
    @Test(
        "root's ccached --socket /tmp/x/rootsub/sock with /tmp/x another user's is refused, naming /tmp/x",
        .requiresRoot("needs root: gives a directory to nobody and runs ccached as root")
    )
    func foreignAncestorRefused() throws {
        let x = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ccached-x-\(UUID().uuidString.prefix(8))"
        ).path
        defer { _ = try? FileManager.default.removeItem(atPath: x) }
        // The layout: /tmp/x is nobody's; rootsub inside it is root's and private, so the
        // parent check alone passed while nobody could rename rootsub and put their own in its place.
        #expect(mkdir(x, 0o755) == 0 && chown(x, 65534, 65534) == 0)
        #expect(mkdir(x + "/rootsub", 0o700) == 0)
        let socket = x + "/rootsub/sock"
        let result = try runCommand(
            [ccachedBinary, "--socket", socket], environment: ["PATH": "/usr/bin:/bin"],
            scratch: FileManager.default.temporaryDirectory)
        #expect(!result.succeeded, "ccached accepted a socket below another user's directory:\n\(result)")
        #expect(
            result.stderr.contains(
                "refusing to use the socket directory \(x): it is owned by uid 65534, neither root nor uid 0"),
            "\(result)")
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket was bound")

        // The same tree given back to root is accepted: the refusal was the ancestor's owner.
        #expect(chown(x, 0, 0) == 0)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: ccachedBinary)
        daemon.arguments = ["--socket", socket, "--idle-timeout", "5"]
        try daemon.run()
        defer {
            if daemon.isRunning { daemon.terminate() }
            daemon.waitUntilExit()
        }
        #expect(waitUntil { FileManager.default.fileExists(atPath: socket) }, "ccached did not bind \(socket)")
    }
}
