import Foundation

/// What a finished command printed and how it exited.
struct CommandResult: CustomStringConvertible {
    var arguments: [String]
    var status: Int32
    var stdout: String
    var stderr: String

    var succeeded: Bool { status == 0 }

    var description: String {
        "$ \(arguments.joined(separator: " "))\n[exit \(status)]\n--- stdout\n\(stdout)--- stderr\n\(stderr)"
    }
}

/// Runs a program to completion with its output captured in files (no pipe can fill and block).
func runCommand(
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

/// The repository's top directory, found from this file's path.
let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

/// The ccached binary under test: `$CCACHED_BIN`, else the debug build next to the tests.
let ccachedBinary: String = {
    if let path = ProcessInfo.processInfo.environment["CCACHED_BIN"], !path.isEmpty { return path }
    let testBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [testBundle, testBundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("ccached").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return repositoryRoot.appendingPathComponent(".build/debug/ccached").path
}()

/// The ccachectl built beside the ccached under test.
let ccachectlBinary = URL(fileURLWithPath: ccachedBinary).deletingLastPathComponent().appendingPathComponent("ccachectl").path
