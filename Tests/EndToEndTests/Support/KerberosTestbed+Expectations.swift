import CStateFile
import Glibc
import KCM
import TestSupport
import Testing

/// The testbed's expectations: run a command that must succeed, recording an issue with its output
/// and the daemon's log otherwise. Here rather than in TestSupport, which stays free of Swift Testing.
extension KerberosTestbed {
    /// Runs a command that must succeed; records a test issue with its output otherwise.
    @discardableResult
    func expectSuccess(
        _ arguments: String..., input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> CommandResult {
        let result = try run(arguments, input: input)
        #expect(result.succeeded, "\(result)\n--- ccached log\n\(daemonLogText)", sourceLocation: sourceLocation)
        return result
    }

    /// `kinit` with the test user's password on standard input.
    @discardableResult
    func kinit(_ user: String, _ options: String..., sourceLocation: SourceLocation = #_sourceLocation) throws
        -> CommandResult
    {
        let result = try run(["kinit"] + options + [user], input: "pw-\(user)\n")
        #expect(result.succeeded, "\(result)\n--- ccached log\n\(daemonLogText)", sourceLocation: sourceLocation)
        return result
    }

    /// Restarts the daemon with a fresh state memfd as its `--state-fd`; returns the descriptor,
    /// which the caller closes.
    func restartWithStateFile() throws -> Int32 {
        let state = ccached_state_memfd_create("ccached-test-state")
        try #require(state >= 0, "memfd_create: \(errno)")
        stopDaemon()
        try startDaemon(stateDescriptor: state)
        return state
    }
}

/// What the memlock-limit tests fill a 128 KiB limit with: 300 credentials with 2 KiB markers
/// (2,368-byte blocks: 12 slabs of 64 KiB) stored into nobody's cache "65534"; returns how many
/// the daemon keeps, by its UUID list.
func storeMarkedCredentials(into daemon: RawKCMConnection, count: Int = 300) throws -> Int {
    let name = KCMCacheName("65534")
    #expect(try daemon.call(.initialize(name: name, principal: KCMPrincipal("nobody@CCACHED.TEST"))).status == .success)
    for index in 0..<count {
        let credential = try markedCredential(
            client: "nobody@CCACHED.TEST", server: "svc\(index)/localhost@CCACHED.TEST",
            marker: Array(repeating: UInt8(index % 256), count: 2048))
        #expect(try daemon.call(.store(name: name, credential: credential)).status == .success)
    }
    return try daemon.call(.getCredUUIDList(name: name)).payload.count / 16
}
