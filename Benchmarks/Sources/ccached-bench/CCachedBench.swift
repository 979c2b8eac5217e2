import ArgumentParser

/// `ccached-bench`: ccached against FILE, KEYRING, MEMORY and a raw socket round trip, through the
/// MIT client library every krb5 program uses.
@main
struct CCachedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccached-bench",
        abstract: "Benchmark ccached (KCM) against the FILE, KEYRING and MEMORY ccache types.",
        subcommands: [RunCommand.self, WorkerCommand.self, EchoServerCommand.self, ReplayServerCommand.self],
        defaultSubcommand: RunCommand.self)
}
