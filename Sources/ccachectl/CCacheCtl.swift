import ArgumentParser
import CCacheClient
import Glibc
import KCM

/// `ccachectl`: look at and manage this session's ccached credential caches.
@main
struct CCacheCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccachectl",
        abstract: "Manage the Kerberos tickets held by this session's ccached daemon.",
        discussion: """
            ccachectl finds this login session's daemon (CCACHED_SOCKET, else the session's runtime \
            directory), starting it if needed. Exit status: 0 on success; 1 when there is nothing to \
            show (no caches, no such cache, no daemon with --no-start), like 'klist -s'; 2 on errors.
            """,
        subcommands: [
            List.self, Status.self, Switch.self, Destroy.self, Import.self, Export.self, Env.self, Start.self,
            Stop.self, Attach.self, Detach.self, Watch.self, Renew.self, Where.self,
        ],
        defaultSubcommand: List.self)
}

/// Opens the session's context, turning setup errors into messages.
func openContext(autoStart: Bool = true, idleTimeout: UInt32? = nil) throws -> CCacheContext {
    do {
        return try CCacheContext(options: CCacheContext.Options(autoStart: autoStart, idleTimeout: idleTimeout))
    } catch {
        throw fail(error)
    }
}

/// Writes a line to stderr.
func standardError(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// Prints an error as a sentence and returns the exit to throw.
func fail(_ error: any Error) -> ExitCode {
    var code: Int32 = 2
    if let error = error as? CtlError { code = error.exitCode }
    if case .daemon(let status, _)? = error as? CCacheClientError, status == .fccNoFile { code = 1 }
    if case .notRunning? = error as? CCacheClientError { code = 1 }
    standardError("ccachectl: \(error)")
    return ExitCode(code)
}

/// Runs `body`, printing any error as a sentence and exiting with its code.
func reporting<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        throw fail(error)
    }
}

/// Accepts `KCM:name` or `name`.
func cacheName(_ text: String) -> KCMCacheName {
    KCMCacheName(text.hasPrefix("KCM:") ? String(text.dropFirst(4)) : text)
}

/// Finds a cache by name, or by principal when `text` names no cache but a principal.
func resolveCache(_ text: String, in context: CCacheContext) throws -> KCMCacheName {
    let name = cacheName(text)
    let names = try context.cacheNames()
    if names.contains(name) { return name }
    for candidate in names {
        let principal = try context.cache(named: candidate).principal().description
        if principal == text || principal.hasPrefix(text + "@") { return candidate }
    }
    throw CtlError("no cache named '\(text)' and none for a principal of that name (see 'ccachectl list')", exitCode: 1)
}

/// A command-line error: one sentence the user can act on.
struct CtlError: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32
    init(_ description: String, exitCode: Int32 = 2) {
        self.description = description
        self.exitCode = exitCode
    }
}
