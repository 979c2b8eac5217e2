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
}
