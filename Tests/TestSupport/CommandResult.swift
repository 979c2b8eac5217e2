import Foundation

/// What a finished command printed and how it exited.
package struct CommandResult: CustomStringConvertible, Sendable {
    /// The command line that ran.
    package var arguments: [String]
    /// Its exit status (128 + signal if a signal ended it).
    package var status: Int32
    /// Everything it wrote to standard output.
    package var stdout: String
    /// Everything it wrote to standard error.
    package var stderr: String

    /// A result made by hand, e.g. for a command that could not be started at all.
    package init(arguments: [String], status: Int32, stdout: String, stderr: String) {
        self.arguments = arguments
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Whether it exited 0.
    package var succeeded: Bool { status == 0 }

    /// The command, its status and its output, for a failed expectation's message.
    package var description: String {
        "$ \(arguments.joined(separator: " "))\n[exit \(status)]\n--- stdout\n\(stdout)--- stderr\n\(stderr)"
    }
}

/// Runs a program to completion with its output captured in files (no pipe can fill and block).
package func runCommand(
    _ arguments: [String], environment: [String: String], input: String? = nil, scratch: URL
) throws -> CommandResult {
    let id = UUID().uuidString
    let outURL = scratch.appendingPathComponent("out-\(id)")
    let errURL = scratch.appendingPathComponent("err-\(id)")
    let inURL = scratch.appendingPathComponent("in-\(id)")
    defer {
        for url in [outURL, errURL, inURL] { try? FileManager.default.removeItem(at: url) }
    }
    if let input { try Data(input.utf8).write(to: inURL) }
    let process = try SpawnedProcess(
        path: "/usr/bin/env", arguments: ["env"] + arguments, environment: environment,
        stdin: input == nil ? nil : inURL.path, stdout: outURL.path, stderr: errURL.path)
    process.waitUntilExit()
    return CommandResult(
        arguments: arguments, status: process.terminationStatus,
        stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}
