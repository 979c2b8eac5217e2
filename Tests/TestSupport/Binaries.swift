import Foundation

/// The repository's top directory, found from this file's path.
package let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

/// The ccached binary under test: `$CCACHED_BIN`, else the debug build next to the tests.
package let ccachedBinary: String = {
    if let path = ProcessInfo.processInfo.environment["CCACHED_BIN"], !path.isEmpty { return path }
    let testBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [testBundle, testBundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("ccached").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return repositoryRoot.appendingPathComponent(".build/debug/ccached").path
}()

/// The ccachectl built beside the ccached under test.
package let ccachectlBinary = URL(fileURLWithPath: ccachedBinary).deletingLastPathComponent()
    .appendingPathComponent("ccachectl").path
