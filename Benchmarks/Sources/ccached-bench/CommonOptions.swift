import ArgumentParser
import Glibc

/// `--socket PATH`: the KCM socket a probe talks to (latency, soak and its clients).
struct KCMSocketOption: ParsableArguments {
    @Option(help: "The KCM socket: a daemon's own, or the door's.")
    var socket: String

    /// A new connection to it, or a validation error saying why there is none.
    func connect() throws -> RawKCMClient { try RawKCMClient.connecting(to: socket) }
}

/// `--bin DIR`: the ccached build the benchmark starts (run, coldstart).
struct CCachedBuildOption: ParsableArguments {
    @Option(
        help: "The directory holding ccached (and ccachectl, when built): a release build, as make bench builds it.")
    var bin: String

    var ccachedPath: String { bin + "/ccached" }

    func validate() throws {
        guard access(ccachedPath, X_OK) == 0 else {
            throw ValidationError(
                "no executable \(ccachedPath); build it as make bench does (RELEASE_FLAGS in the Makefile)")
        }
    }
}

/// The rule every count option keeps (connections, requests, runs, rounds, clients, phases): at
/// least 1. Called from `validate()` with the options' names; the error names the first one below.
func requirePositive(_ counts: KeyValuePairs<String, Int>) throws {
    for (option, count) in counts where count < 1 {
        throw ValidationError("\(option) takes a positive number")
    }
}
