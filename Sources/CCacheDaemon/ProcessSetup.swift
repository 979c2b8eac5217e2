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
            throw .system(operation: "prctl(PR_SET_DUMPABLE, 0)", errno: errno)
        }
        signal(SIGPIPE, SIG_IGN)
        SecureArena.shared.setLockFailureHandler { [logger] error, limit in
            let allowed = limit.map { "\($0 / 1024) KiB" } ?? "unlimited"
            logger.warning(
                "cannot lock more credential memory in RAM (\(Errno(rawValue: error)); RLIMIT_MEMLOCK is \(allowed)): credentials stored from now on may be written to swap. Raise the limit (LimitMEMLOCK= in the unit, or ulimit -l) to keep them in RAM."
            )
        }
        let fileLimit = ccached_raise_descriptor_limit()
        if fileLimit >= 0 && fileLimit < configuration.maximumConnections + 16 {
            logger.notice(
                "only \(fileLimit) open files are allowed (RLIMIT_NOFILE); fewer than --max-connections \(configuration.maximumConnections) connections can be served"
            )
        }
    }
}
