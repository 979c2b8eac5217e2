import Glibc
import Testing

@testable import CCacheDaemon

/// The warning a daemon logs when it first cannot lock credential memory says what to do, and
/// that depends on why mlock failed.
@Suite("ProcessSetup")
struct ProcessSetupTests {
    @Test("over the limit (ENOMEM), the warning says to raise RLIMIT_MEMLOCK")
    func overTheLimit() {
        let message = ProcessSetup.lockFailureMessage(errno: ENOMEM, memlockLimit: 8 << 20)
        #expect(message.contains("RLIMIT_MEMLOCK is 8192 KiB"))
        #expect(message.contains("may be written to swap"))
        #expect(message.contains("Raise the limit (LimitMEMLOCK="))
        #expect(!message.contains("seccomp"))
    }

    @Test("a limit of 0 (EPERM) is still the limit to raise")
    func zeroLimit() {
        let message = ProcessSetup.lockFailureMessage(errno: EPERM, memlockLimit: 0)
        #expect(message.contains("RLIMIT_MEMLOCK is 0 KiB"))
        #expect(message.contains("Raise the limit"))
    }

    @Test("EPERM under a limit above 0 names a seccomp filter or container, not the limit")
    func refusedByAFilter() {
        // What a booted systemd-nspawn container without CAP_IPC_LOCK gives every process.
        let message = ProcessSetup.lockFailureMessage(errno: EPERM, memlockLimit: 8 << 20)
        #expect(message.contains("RLIMIT_MEMLOCK is 8192 KiB"))
        #expect(message.contains("seccomp"))
        #expect(message.contains("--capability=CAP_IPC_LOCK"))
        #expect(!message.contains("Raise the limit"))
    }
}
