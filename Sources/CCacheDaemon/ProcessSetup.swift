import CSupport
import Glibc
import Logging
import SecureMemory
import SystemCalls

/// What the daemon's process needs before it holds a credential: no core dumps or tracing by its
/// own uid, no SIGPIPE, a word when memory cannot be locked, enough descriptors.
enum ProcessSetup {
    static func prepare(configuration: DaemonConfiguration, logger: Logger) throws(DaemonError) {
        // No core file, and no ptrace or /proc/PID/mem by our own uid.
        if ccached_forbid_core_dumps() != 0 {
            throw .system(operation: "prctl(PR_SET_DUMPABLE, 0)", errno: .current)
        }
        signal(SIGPIPE, SIG_IGN)
        SecureArena.shared.setLockFailureHandler { [logger] error, limit in
            if SecureArena.shared.backing == .secret {
                logger.warning("\(secretMapFailureMessage(errno: error, memlockLimit: limit))")
            } else {
                logger.warning("\(lockFailureMessage(errno: error, memlockLimit: limit))")
            }
        }
        if configuration.secretMemory {
            // Before the first credential: the arena's backing is chosen once.
            if let error = SecureArena.shared.useSecretMemory() {
                logger.warning("\(secretMemoryRefusedMessage(errno: error, memlockLimit: SecureArena.memlockLimit))")
            } else {
                logger.notice("\(secretMemoryLine)")
            }
        }
        let fileLimit = ccached_raise_descriptor_limit()
        if fileLimit >= 0 && fileLimit < configuration.maximumConnections + 16 {
            logger.notice(
                "only \(fileLimit) open files are allowed (RLIMIT_NOFILE); fewer than --max-connections \(configuration.maximumConnections) connections can be served"
            )
        }
    }

    /// What a daemon with `--secret-memory` logs when the kernel made its secret memory.
    static let secretMemoryLine =
        "secret memory: tickets in memfd_secret pages; no state file, so a crash loses them and an upgrade does not move this daemon"

    /// The warning when `--secret-memory` was asked for and the kernel refused it: what happened,
    /// what to do, and that the daemon serves anyway, as without the option.
    static func secretMemoryRefusedMessage(errno error: Int32, memlockLimit limit: UInt64?) -> String {
        let what =
            "no secret memory (memfd_secret: \(Errno(rawValue: error))): tickets in locked anonymous memory, with a state file, as without --secret-memory."
        switch error {
        case ENOSYS:
            return what
                + " This kernel lacks memfd_secret or has it off: boot with secretmem.enable=1 (Linux 5.14 to 6.4; on from 6.5)."
        case EAGAIN, ENOMEM:
            let allowed = limit.map { "\($0 / 1024) KiB" } ?? "unlimited"
            return what
                + " RLIMIT_MEMLOCK (\(allowed)) refused it: raise it (LimitMEMLOCK= in the unit, or ulimit -l)."
        default:
            return what + " A seccomp filter or the container may refuse the call: allow memfd_secret."
        }
    }

    /// The one warning logged when a secret mapping first cannot be made: the arena maps ordinary
    /// memory instead.
    static func secretMapFailureMessage(errno error: Int32, memlockLimit limit: UInt64?) -> String {
        let allowed = limit.map { "\($0 / 1024) KiB" } ?? "unlimited"
        return
            "cannot map more secret memory for credentials (\(Errno(rawValue: error)); RLIMIT_MEMLOCK is \(allowed)): credentials stored from now on are in ordinary memory, unlocked, and may be written to swap. Raise the limit (LimitMEMLOCK= in the unit, or ulimit -l)."
    }

    /// The one warning logged when `mlock` first fails, with what to do about it. ENOMEM (or
    /// EAGAIN) is the limit reached: raise it. EPERM under a limit above 0 is not the limit: the
    /// kernel refuses mlock with EPERM only when the limit is 0, so something else denied the call
    /// — a seccomp filter, typically a container's (systemd-nspawn refuses mlock to everything in
    /// a container not given CAP_IPC_LOCK).
    static func lockFailureMessage(errno error: Int32, memlockLimit limit: UInt64?) -> String {
        let allowed = limit.map { "\($0 / 1024) KiB" } ?? "unlimited"
        let what =
            "cannot lock more credential memory in RAM (\(Errno(rawValue: error)); RLIMIT_MEMLOCK is \(allowed)): credentials stored from now on may be written to swap."
        if error == EPERM && limit != 0 {
            return what
                + " The limit is not what refused it: a seccomp filter did (a SystemCallFilter= without @memlock, or a container: systemd-nspawn needs --capability=CAP_IPC_LOCK). Allow mlock, or keep swap off or encrypted."
        }
        return what + " Raise the limit (LimitMEMLOCK= in the unit, or ulimit -l) to keep them in RAM."
    }
}
