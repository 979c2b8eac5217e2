import CSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What a program started by CSupport's spawners inherits from the parent (issue 24, item 7):
/// only the standard streams on /dev/null and the one descriptor it is given, no blocked or
/// ignored signal. (Before the exec — the window in which the door's child already runs as the
/// user — is checked on the real door under strace: scripts/test-door.sh, "the door's child …".)
@Suite("Spawners: a started program inherits nothing of its parent's", .serialized)
struct SpawnerTests {
    static let isRoot: Bool = {
        if getuid() != 0 { print("SpawnerTests: root-only cases SKIPPED, NOT RUN: they start a program as uid 4242") }
        return getuid() == 0
    }()

    /// What /proc says about a process.
    struct Inherited {
        var descriptors: [Int32: String] = [:]
        var status: [String: String] = [:]

        init(pid: Int32) {
            let directory = "/proc/\(pid)/fd"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                guard let fd = Int32(name) else { continue }
                descriptors[fd] =
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + name)) ?? "?"
            }
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 {
                    status[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
    }

    /// Reads the pid the started shell writes on descriptor 3 (the pipe), then waits until it has
    /// become `sleep` and is sleeping.
    func startedPid(readingFrom fd: Int32) -> Int32? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while bytes.count < 32, poll(&descriptor, 1, 5000) > 0, read(fd, &byte, 1) == 1, byte != 0x0A {
            bytes.append(byte)
        }
        guard let pid = Int32(String(decoding: bytes, as: UTF8.self)) else { return nil }
        for _ in 0..<200 {
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
            if comm.hasPrefix("sleep") {
                // Past sleep's own start-up (which opens and closes locale files).
                usleep(300_000)
                return pid
            }
            usleep(10_000)
        }
        return nil
    }

    /// A descriptor the parent holds (not close-on-exec) and ignored SIGPIPE, as the door does.
    func parentState() -> (marker: Int32, markerPath: String) {
        signal(SIGPIPE, SIG_IGN)
        let markerPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "spawner-marker-\(UUID().uuidString.prefix(8))"
        ).path
        let marker = open(markerPath, O_CREAT | O_RDWR, 0o600)
        #expect(marker >= 0)
        return (marker, markerPath)
    }

    func expectClean(_ inherited: Inherited, markerPath: String) {
        #expect(Set(inherited.descriptors.keys) == [0, 1, 2, 3], "\(inherited.descriptors)")
        for fd: Int32 in [0, 1, 2] { #expect(inherited.descriptors[fd] == "/dev/null") }
        #expect(inherited.descriptors[3]?.hasPrefix("pipe:") == true)
        #expect(!inherited.descriptors.values.contains(markerPath))
        #expect(inherited.status["SigBlk"] == "0000000000000000")
        #expect(inherited.status["SigIgn"] == "0000000000000000")
    }

    let script = ["/bin/sh", "-c", "echo $$ >&3; exec sleep 30"]

    @Test("a program ccachectl starts detached gets only /dev/null and its pipe, no blocked or ignored signal")
    func detached() throws {
        let (marker, markerPath) = parentState()
        defer {
            close(marker)
            unlink(markerPath)
        }
        var ends: [Int32] = [-1, -1]
        #expect(ccached_pipe_cloexec(&ends) == 0)
        defer { close(ends[0]) }
        var argv: [UnsafeMutablePointer<CChar>?] = script.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        #expect(ccached_spawn_detached("/bin/sh", &argv, ends[1]) == 0)
        close(ends[1])
        guard let pid = startedPid(readingFrom: ends[0]) else {
            Issue.record("the started shell did not report its pid")
            return
        }
        defer { kill(pid, SIGKILL) }
        expectClean(Inherited(pid: pid), markerPath: markerPath)
    }

    @Test("a program ccachectl cannot execute is reported on the ready pipe, as the door's spawner reports it")
    func detachedExecFailure() throws {
        var ends: [Int32] = [-1, -1]
        #expect(ccached_pipe_cloexec(&ends) == 0)
        defer { close(ends[0]) }
        let missing = "/nonexistent/ccached-\(getpid())"
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(missing), nil]
        defer { for pointer in argv { free(pointer) } }
        #expect(ccached_spawn_detached(missing, &argv, ends[1]) == 0)
        close(ends[1])
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        var descriptor = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
        while bytes.count < 256, poll(&descriptor, 1, 5000) > 0, read(ends[0], &byte, 1) == 1, byte != 0x0A {
            bytes.append(byte)
        }
        #expect(String(decoding: bytes, as: UTF8.self) == "ERROR \(missing): ENOENT")
    }

    /// Starts `script` as uid/gid 4242 with `groups` through the door's spawner; the started pid.
    func startAsUser(groups: [gid_t]) -> pid_t? {
        var ends: [Int32] = [-1, -1]
        #expect(ccached_pipe_cloexec(&ends) == 0)
        defer { close(ends[0]) }
        var argv: [UnsafeMutablePointer<CChar>?] = script.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { for pointer in argv + envp { free(pointer) } }
        let directories: [UnsafePointer<CChar>?] = [nil]
        let started = ccached_spawn_as_user(
            "/bin/sh", &argv, &envp, 4242, 4242, groups, Int32(groups.count), directories, "/", ends[1])
        #expect(started == 0)
        close(ends[1])
        return startedPid(readingFrom: ends[0])
    }

    @Test(
        "a program the door starts as a user gets only /dev/null and its ready pipe, no blocked or ignored signal",
        .enabled(if: isRoot))
    func asUser() throws {
        let (marker, markerPath) = parentState()
        defer {
            close(marker)
            unlink(markerPath)
        }
        guard let pid = startAsUser(groups: [4242]) else {
            Issue.record("the started shell did not report its pid")
            return
        }
        defer { kill(pid, SIGKILL) }
        let inherited = Inherited(pid: pid)
        expectClean(inherited, markerPath: markerPath)
        #expect(inherited.status["Uid"]?.split(separator: "\t").allSatisfy { $0 == "4242" } == true)
    }

    @Test(
        "a user with supplementary groups, listed primary first as getgrouplist does, is started",
        .enabled(if: isRoot))
    func unsortedGroups() throws {
        // The kernel sorts what setgroups gets; the check after the drop must not mistake that for
        // a failed drop (it did: "the supplementary groups did not change: EPERM" for every user in
        // an extra group, such as sudo's).
        guard let pid = startAsUser(groups: [4242, 27, 100]) else {
            Issue.record("the started shell did not report its pid: the drop to groups [4242, 27, 100] failed")
            return
        }
        defer { kill(pid, SIGKILL) }
        let listed = Inherited(pid: pid).status["Groups"]?.split(separator: " ").compactMap { UInt32($0) }.sorted()
        #expect(listed == [27, 100, 4242])
    }
}
