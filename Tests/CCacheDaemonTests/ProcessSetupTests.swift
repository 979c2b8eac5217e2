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

/// What a daemon with --secret-memory logs when the kernel refuses it: why, and what to do.
@Suite("ProcessSetup, secret memory")
struct SecretMemoryMessageTests {
    @Test("ENOSYS names the boot parameter, and says the daemon runs on as without the option")
    func kernelWithoutIt() {
        let message = ProcessSetup.secretMemoryRefusedMessage(errno: ENOSYS, memlockLimit: 8 << 20)
        #expect(message.contains("secretmem.enable=1"))
        #expect(message.contains("as without --secret-memory"))
        #expect(!message.contains("RLIMIT_MEMLOCK"))
    }

    @Test("EAGAIN and ENOMEM name RLIMIT_MEMLOCK and its value", arguments: [EAGAIN, ENOMEM])
    func memlockLimit(error: Int32) {
        let message = ProcessSetup.secretMemoryRefusedMessage(errno: error, memlockLimit: 64 << 10)
        #expect(message.contains("RLIMIT_MEMLOCK (64 KiB)"))
        #expect(message.contains("LimitMEMLOCK="))
        #expect(!message.contains("secretmem.enable"))
    }

    @Test("another refusal (EPERM) points at a seccomp filter or container")
    func filtered() {
        #expect(ProcessSetup.secretMemoryRefusedMessage(errno: EPERM, memlockLimit: nil).contains("seccomp"))
    }
}

extension SecretMemoryMessageTests {
    @Test("past RLIMIT_MEMLOCK a secret daemon warns that further credentials are in ordinary memory")
    func pastTheLimit() {
        let message = ProcessSetup.secretMapFailureMessage(errno: EAGAIN, memlockLimit: 8 << 20)
        #expect(message.contains("RLIMIT_MEMLOCK is 8192 KiB"))
        #expect(message.contains("in ordinary memory"))
        #expect(message.contains("LimitMEMLOCK="))
    }
}
