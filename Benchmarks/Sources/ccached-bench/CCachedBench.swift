import ArgumentParser

/// `ccached-bench`: ccached against its peers, FILE, KEYRING, MEMORY and a raw socket round trip,
/// through the MIT client library every krb5 program uses; and the probes the scripts run.
@main
struct CCachedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccached-bench",
        abstract: "Benchmark ccached (KCM) against the FILE, KEYRING and MEMORY ccache types.",
        subcommands: [
            RunCommand.self, ConnectCommand.self, ColdStartCommand.self, DoorCommand.self, LatencyCommand.self,
            SoakCommand.self, WorkerCommand.self, EchoServerCommand.self, ReplayServerCommand.self,
            SoakClientCommand.self, StateCommand.self,
        ],
        defaultSubcommand: RunCommand.self)
}
