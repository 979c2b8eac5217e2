import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// ccached and ccachectl are non-dumpable before any of their own code runs (issue 12, items 5 and
/// 7): a constructor in CEarlyHardening, not `Daemon.run()` 10 ms after `execve`. Seen from the
/// earliest point a debugger can stop the program's code — the entry to `main`, after the loader
/// and every constructor — in a process started as nobody.
@Suite("early non-dumpable")
struct EarlyHardeningTests {
    let binaries = URL(fileURLWithPath: ccachedBinary).deletingLastPathComponent()

    /// Runs `program` as nobody under gdb, stopped at `main`, and returns what it printed:
    /// `$1` = PR_GET_DUMPABLE, `$2` = the uid, and the owner of /proc/PID/environ (root when non-dumpable).
    func stateAtMain(_ program: String, _ arguments: [String]) throws -> (
        dumpable: Int?, uid: Int?, procOwner: Int?, log: String
    ) {
        let scratch = FileManager.default.temporaryDirectory
        let result = try runCommand(
            [
                "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "gdb", "-nx", "-batch",
                "-ex", "set startup-with-shell off", "-ex", "break main", "-ex", "run",
                "-ex", "print (int)prctl(3, 0, 0, 0, 0)", "-ex", "print (int)getuid()",
                "-ex",
                "python import os; print('procowner=%d' % os.stat('/proc/%d/environ' % gdb.selected_inferior().pid).st_uid)",
                "-ex", "kill", "--args", program,
            ] + arguments,
            environment: ["PATH": "/usr/bin:/bin"], scratch: scratch)
        func value(_ prefix: String) -> Int? {
            result.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }
                .flatMap { Int($0.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)) }
        }
        return (value("$1 = "), value("$2 = "), value("procowner="), "\(result)")
    }

    @Test(
        "ccached, ccachectl and ccached-door started as nobody are non-dumpable at main; a binary without the constructor is not",
        .requiresRoot("needs root: runs the programs as nobody under gdb"),
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/gdb"), "needs gdb (scripts/install-deps.sh)"))
    func nonDumpableAtMain() throws {
        for (name, arguments) in [
            ("ccached", ["--socket", "/nonexistent/ccached-test/sock"]), ("ccachectl", ["status", "--no-start"]),
            ("ccached-door", ["--help"]),
        ] {
            let state = try stateAtMain(binaries.appendingPathComponent(name).path, arguments)
            #expect(state.uid == 65534, "\(name) did not run as nobody:\n\(state.log)")
            #expect(state.dumpable == 0, "\(name) is dumpable when main starts:\n\(state.log)")
            #expect(state.procOwner == 0, "/proc/PID/environ of \(name) is not root's at main:\n\(state.log)")
        }
        // The control: the same probe on a program built without CEarlyHardening (a C program with
        // an empty main, compiled here) sees it dumpable, so the probe can tell the difference (this
        // is what ccached looked like before the fix).
        // nobody must be able to reach and run it: 0755.
        let scratch = try ScratchDirectory.make("ccached-hardening-control", mode: 0o755)
        defer { ScratchDirectory.remove(scratch) }
        let source = scratch.appendingPathComponent("control.c")
        try "int main(void) { return 0; }\n".write(to: source, atomically: true, encoding: .utf8)
        let program = scratch.appendingPathComponent("control").path
        let built = try runCommand(
            ["cc", "-g", "-o", program, source.path], environment: ["PATH": "/usr/bin:/bin"], scratch: scratch)
        try #require(built.status == 0, "cc failed: \(built)")
        let control = try stateAtMain(program, [])
        #expect(control.uid == 65534, "\(control.log)")
        #expect(control.dumpable == 1, "the control should be dumpable at main:\n\(control.log)")
        #expect(control.procOwner == 65534, "\(control.log)")
    }
}
