import CSupport
import Foundation
import KCM
import TestSupport
import Testing

@testable import CCacheClient

#if canImport(Glibc)
    import Glibc
#endif

/// The client library against real daemons it starts itself: spawn, races, reconnect, idle exit,
/// server authentication and process identity.
@Suite("CCacheContext", .serialized)
final class CCacheContextTests: ScratchSuite {
    @Test("a call with no daemon starts one, which then serves the CCAPI-style calls")
    func autoSpawn() throws {
        let context = try CCacheContext(options: .init(environment: scratch.environment(), idleTimeout: 5))
        #expect(!context.isDaemonRunning)
        let status = try context.status()
        #expect(processAlive(Int32(status.pid)))
        #expect(status.ownerUID == getuid())
        #expect(status.idleTimeout == 5)

        let alice = KCMPrincipal("alice@EXAMPLE.TEST")
        let name = try context.newUniqueName()
        #expect(name == KCMCacheName("\(getuid()):1"))
        let cache = context.cache(named: name)
        try cache.initialize(principal: alice)
        let ticket = KCMCredentialFields(
            client: alice, server: KCMPrincipal("host/a@EXAMPLE.TEST"), key: [1, 2, 3],
            times: KCMTicketTimes(endtime: 4_000_000_000),
            ticket: [9, 9, 9]
        ).credential()
        try cache.store(ticket)
        try cache.makeDefault()
        #expect(try context.defaultCacheName() == name)
        #expect(try context.cacheNames() == [name])
        #expect(try cache.principal() == alice)
        #expect(try cache.credentials().map(\.bytes) == [ticket.bytes])
        let found = try cache.retrieve(
            flags: [], template: KCMMatchTemplate(client: alice, server: KCMPrincipal("host/a@EXAMPLE.TEST")))
        #expect(found?.bytes == ticket.bytes)
        #expect(
            try cache.retrieve(flags: [], template: KCMMatchTemplate(server: KCMPrincipal("host/b@EXAMPLE.TEST")))
                == nil)
        try cache.setKDCOffset(7)
        #expect(try cache.kdcOffset() == 7)
        try cache.destroy()
        #expect(try !cache.exists())
        #expect(throws: CCacheClientError.daemon(.fccNoFile, operation: "read the principal of \(name)")) {
            try cache.principal()
        }
    }

    @Test("a daemon that cannot start gives an error saying why")
    func cannotStart() throws {
        var env = scratch.environment()
        env["CCACHED_DAEMON"] = scratch.path + "/no-such-ccached"
        let context = try CCacheContext(options: .init(environment: env))
        do {
            _ = try context.status()
            Issue.record("status succeeded without a daemon")
        } catch {
            #expect(error.description.contains("no-such-ccached is missing or not executable"))
        }
        // A daemon that fails at startup reports its reason through the readiness pipe.
        env["CCACHED_DAEMON"] = ccachedBinary
        let occupied = scratch.socketDirectory() + "/kcm.sock"
        #expect(FileManager.default.createFile(atPath: occupied, contents: Data("not a socket".utf8)))
        let blocked = try CCacheContext(options: .init(environment: env))
        do {
            _ = try blocked.status()
            Issue.record("status succeeded with a file in the socket's place")
        } catch {
            #expect(error.description.contains("could not start ccached for \(occupied)"), "\(error)")
            #expect(error.description.contains("exists and is not a socket"), "\(error)")
        }
        unlink(occupied)
        let refusedNoStart = try CCacheContext(options: .init(autoStart: false, environment: scratch.environment()))
        #expect(throws: CCacheClientError.notRunning(path: scratch.path + "/run/kcm.sock")) {
            try refusedNoStart.status()
        }
    }

    @Test("eight contexts racing to start the daemon end with one daemon")
    func racingSpawn() throws {
        let env = scratch.environment()
        let pids = Mutexed<[UInt32]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do {
                let context = try CCacheContext(options: .init(environment: env, idleTimeout: 5))
                pids.mutate { $0.append((try? context.status().pid) ?? 0) }
            } catch {
                pids.mutate { $0.append(0) }
            }
        }
        let seen = pids.value
        #expect(seen.count == 8)
        #expect(!seen.contains(0))
        #expect(Set(seen).count == 1, "\(seen)")
    }

    @Test("kill -9 of the daemon between two calls: the second call succeeds on a new daemon")
    func reconnectAfterKill() throws {
        let context = try CCacheContext(options: .init(environment: scratch.environment(), idleTimeout: 5))
        let first = try context.status().pid
        kill(Int32(first), SIGKILL)
        #expect(eventually(5) { !processAlive(Int32(first)) })
        let second = try context.status().pid
        #expect(second != first)
        #expect(processAlive(Int32(second)))
        // A request that changes state is not repeated blindly, but a fresh connection serves it.
        try context.cache(named: "x").initialize(principal: KCMPrincipal("a@B"))
        #expect(try context.cacheNames() == ["x"])
    }

    @Test("the daemon exits after its idle timeout with no caches, and never while it holds a cache")
    func idleExit() throws {
        let env = scratch.environment()
        var pid: UInt32 = 0
        do {
            let context = try CCacheContext(options: .init(environment: env, idleTimeout: 1))
            pid = try context.status().pid
            try context.cache(named: "kept").initialize(principal: KCMPrincipal("a@B"))
        }
        // The context is gone, so no connection is open; the cache keeps the daemon alive.
        usleep(3_000_000)
        #expect(processAlive(Int32(pid)))
        do {
            let context = try CCacheContext(options: .init(autoStart: false, environment: env))
            try context.cache(named: "kept").destroy()
        }
        #expect(eventually(6) { !processAlive(Int32(pid)) })
        #expect(!FileManager.default.fileExists(atPath: env["CCACHED_SOCKET"]!))
    }

    @Test(
        "a socket served by another uid is refused before anything is sent",
        .requiresRoot("needs root to run a daemon as the user nobody"))
    func squatterRefused() throws {
        let nobodyDirectory = scratch.path + "/nobody"
        mkdir(nobodyDirectory, 0o700)
        chmod(scratch.path, 0o711)
        chown(nobodyDirectory, 65534, 65534)
        let squatter = Process()
        squatter.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        squatter.arguments = [
            "--reuid=65534", "--regid=65534", "--clear-groups", "--", ccachedBinary, "--socket",
            nobodyDirectory + "/kcm.sock", "--idle-timeout", "0",
        ]
        squatter.standardError = FileHandle.nullDevice
        try squatter.run()
        defer {
            squatter.terminate()
            squatter.waitUntilExit()
        }
        #expect(eventually(10) { FileManager.default.fileExists(atPath: nobodyDirectory + "/kcm.sock") })
        // Move the squatter's socket where our client will look for its daemon.
        let ours = scratch.socketDirectory()
        #expect(rename(nobodyDirectory + "/kcm.sock", ours + "/kcm.sock") == 0)
        let context = try CCacheContext(options: .init(environment: scratch.environment()))
        #expect(throws: CCacheClientError.untrustedDaemon(path: ours + "/kcm.sock", uid: 65534)) {
            try context.status()
        }
    }

    @Test(
        "a thread that switched only its own uid reaches the process's daemon and keeps its identity",
        .requiresRoot("needs root to switch a thread's uid"))
    func threadImpersonation() throws {
        let env = scratch.environment()
        let processDaemon = try CCacheContext(options: .init(environment: env, idleTimeout: 5)).status().pid
        let outcome = Mutexed<String>("not run")
        let thread = Thread {
            guard ccached_thread_setresuid(65534, 65534, 0) == 0 else {
                outcome.mutate { $0 = "setresuid failed: \(errno)" }
                return
            }
            defer { _ = ccached_thread_setresuid(0, 0, 0) }
            var result: String
            do {
                let context = try CCacheContext(options: .init(environment: env))
                let status = try context.status()
                result = status.pid == processDaemon && status.ownerUID == 0 ? "same daemon" : "other daemon \(status)"
            } catch {
                result = "error: \(error)"
            }
            let after = ProcessIdentity.thread().uid
            if after != ProcessIdentity.IDs(real: 65534, effective: 65534, saved: 0) {
                result += "; identity after the call was \(after)"
            }
            outcome.mutate { $0 = result }
        }
        thread.start()
        #expect(eventually(20) { outcome.value != "not run" })
        #expect(outcome.value == "same daemon")
        #expect(getuid() == 0 && geteuid() == 0)
    }
}
