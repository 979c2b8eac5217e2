import CSupport
import CSecretMemory
import CStateFile
import Foundation
import KCM
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Whether this kernel gives this process secret memory: memfd_secret, sized and mapped, as the
/// daemon's arena tries it.
let kernelMakesSecretMemory: Bool = {
    let fd = ccached_memfd_secret()
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    guard ftruncate(fd, off_t(page)) == 0, let mapped = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
        mapped != MAP_FAILED
    else { return false }
    munmap(mapped, page)
    return true
}()

/// Issue 22, item 4: `ccached --secret-memory` holds the tickets in memfd_secret pages and keeps no
/// state file; `ccachectl status` says which memory holds them.
@Suite("secret memory backing")
struct SecretMemoryBackingTests {
    /// The mappings of `pid` that /proc/PID/maps names `/secretmem (deleted)`.
    func secretMappings(of pid: pid_t) throws -> [Substring] {
        try readProcFile("/proc/\(pid)/maps").split(separator: "\n").filter { $0.hasSuffix(" /secretmem (deleted)") }
    }

    /// `ccachectl status` and `ccachectl status --json` against the testbed's daemon.
    func ctlStatus(_ bed: KerberosTestbed) throws -> (text: String, json: [String: Any]) {
        let ctl = ["CCACHED_SOCKET": bed.socketPath]
        let text = try bed.run([ccachectlBinary, "status", "--no-start"], extra: ctl)
        #expect(text.succeeded, "\(text)")
        let json = try bed.run([ccachectlBinary, "status", "--json", "--no-start"], extra: ctl)
        #expect(json.succeeded, "\(json)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        return (text.stdout, try #require(object, "\(json)"))
    }

    @Test(
        "ccached --secret-memory holds a stored ticket in /secretmem mappings that even root cannot read, empties the state file it was given, and status says secret memory, no state file",
        .requiresRoot("needs root to read the non-dumpable daemon's /proc/PID/mem"),
        .enabled(
            if: kernelMakesSecretMemory, "SKIPPED: this kernel makes no memfd_secret (secretmem.enable=1 before 6.5)"))
    func secretDaemon() throws {
        let bed = try KerberosTestbed(services: 1)
        defer { bed.stop() }
        // A state file with something in it, as the door hands one over after a crash.
        let state = ccached_state_memfd_create("ccached-test-state")
        try #require(state >= 0, "memfd_create: \(errno)")
        defer { close(state) }
        #expect(ftruncate(state, 65536) == 0)
        #expect(pwrite(state, "old tickets", 11, 4096) == 11)
        bed.stopDaemon()
        try bed.startDaemon(extraArguments: ["--secret-memory"], stateDescriptor: state)
        let pid = try #require(bed.daemon?.processIdentifier)
        let log = bed.daemonLogText
        #expect(
            log.contains(
                "secret memory: tickets in memfd_secret pages; no state file, so a crash loses them and an upgrade does not move this daemon"
            ), "\(log)")
        #expect(log.contains("emptied the state file handed over (65536 bytes) unread"), "\(log)")
        var file = stat()
        #expect(fstat(state, &file) == 0 && file.st_size == 0, "the state file handed over is emptied")

        try bed.kinit("alice")
        try bed.expectSuccess("kvno", "host/localhost")
        let connection = try RawKCMConnection(path: bed.socketPath)
        let name = KCMCacheName("\(getuid())")
        let marker = randomMarker()
        let credential = try markedCredential(
            client: "alice@CCACHED.TEST", server: "marker/localhost@CCACHED.TEST", marker: marker)
        #expect(try connection.call(.store(name: name, credential: credential)).status == .success)
        var template = KCMMatchTemplate()
        template.server = KCMPrincipal("marker/localhost@CCACHED.TEST")
        let retrieved = try connection.call(.retrieve(name: name, flags: [], template: template))
        #expect(retrieved.status == .success)
        #expect(retrieved.payload.count == credential.bytes.count)
        // One more round trip: the daemon has finished with the reply above (and wiped its buffer).
        #expect(try connection.call(.getDefaultCache).status == .success)

        let mappings = try secretMappings(of: pid)
        #expect(!mappings.isEmpty, "no /secretmem mapping in /proc/\(pid)/maps")
        let smaps = try readProcFile("/proc/\(pid)/smaps")
        #expect(smaps.contains("/secretmem (deleted)"))
        // Stored (RETRIEVE found it), yet nowhere /proc/PID/mem reads: the ticket is only in secret pages.
        let scan = try countInMemory(of: pid, marker)
        print(
            "memory scan of ccached --secret-memory pid \(pid): \(scan.hits) occurrence(s) in \(scan.scanned / 1024) KiB"
        )
        #expect(scan.hits == 0, "a stored ticket's bytes are readable through /proc/\(pid)/mem")

        let status = try bed.daemonStatus()
        #expect(status.memoryKind == .secret)
        #expect(status.keepsStateFile == false)
        #expect(status.limits.lockedMemoryBytes == status.limits.credentialMemoryBytes)
        let (text, json) = try ctlStatus(bed)
        #expect(text.contains("tickets in:   secret memory (memfd_secret), no state file"), "\(text)")
        #expect(json["memory"] as? String == "secret", "\(json)")
        #expect(json["state_file"] as? Bool == false, "\(json)")

        // No state file, so SIGUSR2 does not move it: it says why and serves on.
        kill(pid, SIGUSR2)
        #expect(
            eventually(10) { bed.daemonLogText.contains("not re-executing: there is no state file") },
            "\(bed.daemonLogText)")
        try bed.expectSuccess("klist")
        #expect(bed.daemon?.isRunning == true)
    }

    @Test("the default daemon holds its tickets in locked anonymous memory with a state file, and status says so")
    func defaultDaemon() throws {
        let bed = try KerberosTestbed(services: 1)
        defer { bed.stop() }
        try bed.kinit("alice")
        let pid = try #require(bed.daemon?.processIdentifier)
        #expect(try secretMappings(of: pid).isEmpty)
        #expect(!bed.daemonLogText.contains("secret memory"), "\(bed.daemonLogText)")
        let status = try bed.daemonStatus()
        #expect(status.memoryKind == .anonymous)
        #expect(status.keepsStateFile == true)
        let (text, json) = try ctlStatus(bed)
        #expect(text.contains("tickets in:   locked memory; state file: memfd (survives a crash)"), "\(text)")
        #expect(json["memory"] as? String == "locked", "\(json)")
        #expect(json["state_file"] as? Bool == true, "\(json)")
    }

    @Test(
        "past RLIMIT_MEMLOCK a --secret-memory daemon stores on in ordinary memory, says so once, and status shows it",
        .requiresRoot("needs root to run the daemon as nobody under a small memlock limit"),
        .enabled(
            if: kernelMakesSecretMemory, "SKIPPED: this kernel makes no memfd_secret (secretmem.enable=1 before 6.5)"))
    func pastTheMemlockLimit() throws {
        // 128 KiB of secret memory at most (each mapping is charged in full when it is made).
        let nobody = try NobodyDaemon(prefix: ["prlimit", "--memlock=131072:131072"], arguments: ["--secret-memory"])
        let daemon = nobody.connection
        // 300 tickets: 12 slabs of 64 KiB, far over 128 KiB.
        #expect(try storeMarkedCredentials(into: daemon) == 300, "every credential is kept past the limit")
        let text = nobody.logText
        #expect(text.contains("secret memory: tickets in memfd_secret pages"), "\(text)")
        let warnings = text.components(separatedBy: "cannot map more secret memory for credentials").count - 1
        #expect(warnings == 1, "\(text)")
        #expect(!text.contains("cannot lock more credential memory"), "\(text)")
        let reply = try daemon.call(.daemonStatus)
        var reader = KCMReader(reply.payload)
        let status = try KCMDaemonStatus.read(from: &reader)
        #expect(status.memoryKind == .secret)
        #expect(status.keepsStateFile == false)
        #expect(status.limits.lockedMemoryBytes <= 131072)
        #expect(status.limits.unlockedMappings > 0)
        #expect(status.limits.credentialMemoryBytes > status.limits.lockedMemoryBytes)
    }

    @Test(
        "a --secret-memory --state-from-door daemon takes the door's state file, answers A, restores nothing, empties it and leaves it unheld; D is answered R",
        .requiresRoot("needs root: the hand-off socket answers only root"),
        .enabled(
            if: kernelMakesSecretMemory, "SKIPPED: this kernel makes no memfd_secret (secretmem.enable=1 before 6.5)"))
    func stateFromTheDoor() throws {
        let bed = try KerberosTestbed(services: 1)
        defer { bed.stop() }
        // A crashed ordinary daemon's file, with a ticket in it.
        let state = try bed.restartWithStateFile()
        defer { close(state) }
        try bed.kinit("alice")
        bed.killDaemon()
        var file = stat()
        #expect(fstat(state, &file) == 0 && file.st_size > 0)

        try bed.startDaemon(extraArguments: ["--secret-memory", "--state-from-door"])
        // READY comes before the hand-off socket is bound (and the killed daemon's is still there):
        // connect once it is.
        var handoff: Int32 = -1
        for _ in 0..<200 {
            handoff = ccached_unix_stream_socket()
            try #require(handoff >= 0)
            _ = ccached_socket_timeouts(handoff, 5000)
            if ccached_connect_unix(handoff, bed.socketPath + ".handoff") == 0 { break }
            close(handoff)
            handoff = -1
            usleep(10_000)
        }
        try #require(handoff >= 0, "no hand-off socket answered within 2 s")
        defer { close(handoff) }
        #expect(ccached_send_descriptor(handoff, 0x53, state) == 0)
        var answer: UInt8 = 0
        #expect(read(handoff, &answer, 1) == 1 && answer == 0x41, "answer \(answer)")
        // Served now, from an empty store: the ordinary memfd's ticket was not taken into secret memory.
        #expect(try bed.run("klist", "-s").status != 0, "a ticket came back from the state file")
        #expect(fstat(state, &file) == 0 && file.st_size == 0, "the door's file is not emptied")
        #expect(ccached_state_in_use(state) == 0, "the daemon still holds the door's file")
        #expect(bed.daemonLogText.contains("emptied the state file handed over"), "\(bed.daemonLogText)")
        var request: UInt8 = 0x44
        #expect(send(handoff, &request, 1, Int32(MSG_NOSIGNAL)) == 1)
        var copy: Int32 = -1
        #expect(ccached_receive_descriptor(handoff, &answer, &copy) == 1 && answer == 0x52, "answer \(answer)")
        #expect(copy < 0)
        #expect(try bed.daemonStatus().keepsStateFile == false)
    }
}
