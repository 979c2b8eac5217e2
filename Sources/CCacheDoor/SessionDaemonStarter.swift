import CSupport
import Glibc
import SessionRuntime
import SystemCalls

/// Starts the `ccached` for one (user, session), in one of two ways:
///
/// - where systemd runs the system, as a transient unit in the user's slice (``startUnit``):
///   systemd does the privilege drop and the sandbox, and `systemd-run` returns once the daemon
///   sent READY=1;
/// - elsewhere, as the door's own child (``start``) with a full privilege drop, waiting until it
///   reports on `--ready-fd`. Everything that reads files or allocates (passwd, groups, argv,
///   environment) happens here, in the door; the forked child only makes system calls
///   (``ccached_spawn_as_user``): it first closes every descriptor but the ready pipe with every
///   signal blocked (but for the session's state file, which becomes descriptor 4, `--state-fd 4`),
///   then setgroups, setresgid, setresuid, checks all three ids and that root cannot
///   be regained, creates the session directories as the user, and execs with a clean environment.
package struct SessionDaemonStarter: Sendable {
    /// The `ccached` binary.
    package let daemonPath: String
    /// Extra arguments for every daemon (tests: e.g. `--idle-timeout`).
    package let extraArguments: [String]
    /// `--log-target journal` when the journal is there (a daemon's stderr is /dev/null).
    package let logToJournal: Bool

    package init(daemonPath: String, extraArguments: [String] = [], logToJournal: Bool) {
        self.daemonPath = daemonPath
        self.extraArguments = extraArguments
        self.logToJournal = logToJournal
    }

    /// What the daemon said.
    package enum Readiness: Equatable, Sendable {
        /// It listens now.
        case ready
        /// Another daemon already answered on the socket.
        case exists
    }

    /// Where the session's state file comes from (Docs/state.md).
    package enum StateSource: Equatable, Sendable {
        /// The daemon makes its own (nothing outside it holds it).
        case daemon
        /// Inherited as this descriptor: `--state-fd N`.
        case descriptor(Int32)
        /// Sent over the hand-off socket once the unit runs: `--state-from-door`.
        case door
    }

    /// The daemon's argv (argv[0] included); `readyDescriptor` nil for a systemd unit (which
    /// reports with sd_notify instead).
    package func arguments(
        location: SessionDaemonLocation, session: SessionIdentity, readyDescriptor: Int32? = 3,
        state: StateSource = .daemon
    ) -> [String] {
        var arguments = [daemonPath, "--socket", location.socket]
        if let readyDescriptor { arguments += ["--ready-fd", "\(readyDescriptor)"] }
        // A door-started daemon is not inside what it serves: it is told what ends it.
        if let lifetime = session.route?.lifetime {
            arguments += lifetime.daemonArguments
        } else if session.source == .logind {
            arguments += ["--login-session", session.key]
        }
        switch state {
        case .daemon: break
        case .descriptor(let fd): arguments += ["--state-fd", "\(fd)"]
        case .door: arguments.append("--state-from-door")
        }
        if logToJournal { arguments += ["--log-target", "journal"] }
        return arguments + extraArguments
    }

    /// The transient unit a daemon runs in when systemd starts it: one per (uid, session key).
    package static func unitName(uid: UInt32, session: SessionIdentity) -> String {
        "ccached-\(uid)-\(session.key).service"
    }

    /// `systemd-run`'s arguments for a daemon of its own unit in the user's slice, after argv[0].
    ///
    /// The unit gets the user's ids from systemd (User=, Group=, and the user's groups), lives in
    /// `user-UID.slice` (the user's limits apply; a door restart or upgrade never touches it), and a
    /// sandbox of its own: unlike the door it may reach a KDC, since it renews tickets.
    package func unitArguments(
        account: UserAccount, session: SessionIdentity, location: SessionDaemonLocation, stateFromDoor: Bool = false
    ) -> [String] {
        var arguments = [
            "--quiet", "--no-ask-password", "--collect",
            "--unit=\(Self.unitName(uid: account.uid, session: session))",
            "--slice=user-\(account.uid).slice", "--uid=\(account.uid)", "--gid=\(account.gid)",
            "--service-type=notify", "--description=ccached for uid \(account.uid), session \(session.key)",
        ]
        for variable in environment(account: account, location: location) {
            arguments.append("--setenv=\(variable)")
        }
        for property in Self.unitProperties(location: location) + [stopCommand(location: location)] {
            arguments += ["--property", property]
        }
        return arguments + ["--"]
            + self.arguments(
                location: location, session: session, readyDescriptor: nil, state: stateFromDoor ? .door : .daemon)
    }

    /// The sandbox of a daemon's unit, and why: it reads nothing but libraries, /etc (krb5.conf) and
    /// its own runtime directory; writes only there; needs Unix sockets, and IPv4/IPv6 for the KDC.
    static func unitProperties(location: SessionDaemonLocation) -> [String] {
        [
            "NoNewPrivileges=yes", "LimitCORE=0", "UMask=0077", "TimeoutStartSec=10",
            "ProtectSystem=strict", "ReadWritePaths=\(location.base)", "InaccessiblePaths=-/home -/root",
            "PrivateTmp=yes", "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
            "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK", "RestrictNamespaces=yes",
            "RestrictRealtime=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes", "MemoryDenyWriteExecute=yes",
            "SystemCallArchitectures=native", "CapabilityBoundingSet=",
        ]
    }

    /// What the unit runs once the daemon is gone, however it went: a daemon killed (SIGKILL from
    /// `loginctl terminate-user`, the OOM killer) leaves its sockets behind, and nothing may name a
    /// dead daemon. Only sockets nobody listens on are removed.
    func stopCommand(location: SessionDaemonLocation) -> String {
        "ExecStopPost=\(daemonPath) --remove-stale --socket \(location.socket)"
    }

    /// Starts the daemon as a transient unit with `systemd-run` (as root), which returns once the
    /// daemon reported READY=1, or failed; waits at most `timeoutMilliseconds`. With `stateFromDoor`
    /// the daemon then waits for its state file on the hand-off socket (``HandoffClient/sendStateFile``).
    package func startUnit(
        systemdRun: String, account: UserAccount, session: SessionIdentity, location: SessionDaemonLocation,
        stateFromDoor: Bool = false, timeoutMilliseconds: Int32
    ) throws(DoorError) -> Readiness {
        let argv =
            [systemdRun]
            + unitArguments(account: account, session: session, location: location, stateFromDoor: stateFromDoor)
        let deadline = Int64(MonotonicClock.milliseconds()) + Int64(timeoutMilliseconds)
        let unit = Self.unitName(uid: account.uid, session: session)
        var status = try runHelper(argv, deadline: deadline)
        // A unit of that name still loaded — a daemon that was killed leaves it failed, or still
        // running its ExecStopPost, until systemd collects it — makes systemd-run fail at once: reset
        // a failed one and try again shortly, a few times.
        let systemctl = String(systemdRun.dropLast("systemd-run".count)) + "systemctl"
        var attempts = 0
        while status != 0, attempts < 5, Int64(MonotonicClock.milliseconds()) + 300 < deadline {
            attempts += 1
            _ = try? runHelper([systemctl, "reset-failed", "--quiet", unit], deadline: deadline)
            usleep(200_000)
            status = try runHelper(argv, deadline: deadline)
        }
        guard status == 0 else {
            throw .daemonStart("systemd-run could not start \(unit) (see 'journalctl -u \(unit)')")
        }
        return .ready
    }

    /// Runs a helper (`systemd-run`, `systemctl`) as a child and waits for it until `deadline`
    /// (monotonic milliseconds; then it is killed): its exit status, or -1 when it did not exit
    /// normally.
    private func runHelper(_ argv: [String], deadline: Int64) throws(DoorError) -> Int32 {
        var pid: pid_t = 0
        let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        let result = withCStrings(argv) { argvPointers in
            withCStrings(environment) { envPointers in
                ccached_spawn_helper(argv[0], argvPointers, envPointers, &pid)
            }
        }
        guard result == 0 else { throw .system(operation: "starting \(argv[0])", errno: Errno(rawValue: result)) }
        // Woken the moment it exits (its pidfd becomes readable), not at the next tick of a sleep:
        // systemd-run returns as soon as the daemon is ready, and a client waits for that.
        let exited = ccached_pidfd_open(pid)
        defer { if exited >= 0 { close(exited) } }
        var status: Int32 = 0
        while true {
            let reaped: pid_t
            do throws(Errno) {
                reaped = try retryingInterrupts { waitpid(pid, &status, WNOHANG) }
            } catch {
                throw .system(operation: "waitpid(systemd-run)", errno: error)
            }
            if reaped == pid { break }
            let left = deadline - Int64(MonotonicClock.milliseconds())
            if left <= 0 {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                throw .daemonStart("\(argv[0]) did not return in time")
            }
            Self.waitForExit(pidfd: exited, atMostMilliseconds: left)
        }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : -1
    }

    /// Waits until the process of `pidfd` exits or `milliseconds` pass; without a pidfd (a kernel
    /// before 5.3, or a filter refusing pidfd_open) a millisecond at most, as a poll of waitpid.
    static func waitForExit(pidfd: Int32, atMostMilliseconds milliseconds: Int64) {
        guard pidfd >= 0 else {
            usleep(UInt32(clamping: min(milliseconds, 1) * 1000))
            return
        }
        var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        // An interrupted poll only ends this wait early (the caller checks waitpid again); one that
        // fails otherwise waits a millisecond, as without a pidfd, so the caller never spins.
        if poll(&descriptor, 1, Int32(clamping: milliseconds)) < 0 && errno != EINTR { usleep(1_000) }
    }

    /// The daemon's whole environment: nothing of the door's.
    package func environment(account: UserAccount, location: SessionDaemonLocation) -> [String] {
        var environment = [
            "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=\(account.home)", "USER=\(account.name)",
            "LOGNAME=\(account.name)",
        ]
        if location.isUserRuntimeDirectory { environment.append("XDG_RUNTIME_DIR=\(location.base)") }
        return environment
    }

    /// Starts the daemon and waits (at most `timeoutMilliseconds`) for its readiness line; with a
    /// `stateFile`, the daemon gets it as descriptor 4 (`--state-fd 4`; the caller keeps its copy).
    package func start(
        account: UserAccount, session: SessionIdentity, location: SessionDaemonLocation, stateFile: Int32? = nil,
        timeoutMilliseconds: Int32
    ) throws(DoorError) -> Readiness {
        var pipeEnds: [Int32] = [-1, -1]
        guard ccached_pipe_cloexec(&pipeEnds) == 0 else { throw .system(operation: "pipe2", errno: .current) }
        defer { close(pipeEnds[0]) }
        let argv = arguments(
            location: location, session: session, state: stateFile.map { _ in .descriptor(4) } ?? .daemon)
        let envp = environment(account: account, location: location)
        let directories = [location.base + "/ccached", location.directory]
        let groups = account.groups
        let result = withCStrings(argv) { argvPointers in
            withCStrings(envp) { envPointers in
                withCStrings(directories) { directoryPointers in
                    let constDirectories = directoryPointers.map { $0.map { UnsafePointer($0) } }
                    return ccached_spawn_as_user_with_state(
                        daemonPath, argvPointers, envPointers, account.uid, account.gid, groups,
                        Int32(groups.count), constDirectories, account.home, pipeEnds[1], stateFile ?? -1)
                }
            }
        }
        close(pipeEnds[1])
        guard result == 0 else { throw .system(operation: "starting \(daemonPath)", errno: Errno(rawValue: result)) }
        let line = try readLine(from: pipeEnds[0], timeoutMilliseconds: timeoutMilliseconds)
        switch line {
        case "READY": return .ready
        case "EXISTS": return .exists
        case let text where text.hasPrefix("ERROR "): throw .daemonStart(String(text.dropFirst(6)))
        case "": throw .daemonStart("\(daemonPath) exited without reporting (see its log)")
        default: throw .daemonStart("unexpected readiness line '\(line)'")
        }
    }

    /// One line (at most 1 KiB), or "" at end of file.
    private func readLine(from fd: Int32, timeoutMilliseconds: Int32) throws(DoorError) -> String {
        var bytes: [UInt8] = []
        let deadline = Int64(MonotonicClock.milliseconds()) + Int64(timeoutMilliseconds)
        var chunk = [UInt8](repeating: 0, count: 256)
        while bytes.count < 1024 {
            guard deadline > Int64(MonotonicClock.milliseconds()) else {
                throw .daemonStart("no readiness report within \(timeoutMilliseconds) ms")
            }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready: Int32
            do throws(Errno) {
                ready = try retryingInterrupts {
                    poll(&descriptor, 1, Int32(clamping: max(0, deadline - Int64(MonotonicClock.milliseconds()))))
                }
            } catch {
                throw .system(operation: "poll", errno: error)
            }
            if ready == 0 { continue }
            let count: Int
            do throws(Errno) {
                count = try retryingInterrupts { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            } catch {
                throw .system(operation: "read(ready pipe)", errno: error)
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
            if bytes.contains(0x0A) { break }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }
}

/// Runs `body` with a NULL-terminated C array of copies of `strings`, freed afterwards.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
