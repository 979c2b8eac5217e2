import ArgumentParser
import CCacheClient
import Glibc
import KCM
import SessionRuntime

extension CCacheCtl {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show the session, its socket and the daemon: pid, uptime, and usage against each of its limits.",
            discussion: """
                Each limit (caches, credentials per cache, stored bytes — credentials, cache names and \
                principals —, connections, request size and time, and the RLIMIT_MEMLOCK that bounds the \
                memory locked for credentials) is shown with \
                its usage, the ccached option that sets it, and how many requests or connections it refused \
                since the daemon started; --json has the same under "limits". "tickets in" says which memory \
                holds the credentials (locked memory, or secret memory with ccached --secret-memory) and \
                whether a state file keeps them over a crash ("memory" and "state_file" in --json). Starts the daemon if it is not running, unless --no-start (then exit status 1 \
                when none runs).
                """)

        @Flag(name: .long, help: "Do not start a daemon; report that none runs instead.")
        var noStart = false

        @Flag(name: .long, help: "Print JSON for scripts.")
        var json = false

        func run() throws {
            let context = try openContext(autoStart: !noStart)
            let session = context.paths.session.map(\.description) ?? "(CCACHED_SOCKET)"
            if noStart && !context.isDaemonRunning {
                if json {
                    print(JSONOutput.line(StatusJSON(session: session, socket: context.paths.socket, daemon: nil)))
                } else {
                    print("session:      \(session)\nsocket:       \(context.paths.socket)\ndaemon:       not running")
                }
                throw ExitCode(1)
            }
            let status = try reporting { try context.status() }
            let uptime = UInt64(max(0, Int64(time(nil)) - Int64(status.startedAt)))
            let usages = LimitUsage.all(of: status)
            let renewal = try? context.renewalState().worker
            if json {
                let daemon = (status, uptime, usages, renewal)
                print(JSONOutput.line(StatusJSON(session: session, socket: context.paths.socket, daemon: daemon)))
                return
            }
            let idleExit =
                status.idleTimeout == 0 ? "never" : "after \(status.idleTimeout) s with no caches and no connections"
            var lines = [
                ("session", "\(session)"), ("socket", context.paths.socket),
                ("daemon", "pid \(status.pid), uid \(status.ownerUID), up \(Display.duration(uptime))"),
            ]
            // The usage column is as wide as its widest entry, so the options line up after it.
            let width = usages.map(\.shown.count).max() ?? 0
            lines += usages.map { ($0.label, Display.pad($0.shown, width) + "  " + $0.option) }
            lines.append(("tickets in", CCacheCtl.ticketMemory(status)))
            lines.append(("idle exit", idleExit))
            // Login sessions sharing this daemon: only the last one's logout wipes it.
            lines.append(("sessions", "\(status.attachedSessions) attached (pam_ccached)"))
            if let renewal { lines.append(("renewal", RenewalDisplay.worker(renewal))) }
            let refusals = usages.compactMap(\.refusal)
            lines += (refusals.isEmpty ? ["none since the daemon started"] : refusals).enumerated().map {
                ($0.offset == 0 ? "refused" : "", $0.element)
            }
            for (label, value) in lines {
                print(Display.pad(label.isEmpty ? "" : label + ":", 14) + value)
            }
        }
    }

    /// `secret memory (memfd_secret), no state file`, `locked memory; state file: memfd (survives a
    /// crash)`: which memory holds the tickets, and whether a state file keeps them over a crash
    /// (not said for a daemon before status version 4, which does not tell).
    static func ticketMemory(_ status: KCMDaemonStatus) -> String {
        let memory =
            switch status.memoryKind {
            case .anonymous: "locked memory"
            case .secret: "secret memory (memfd_secret)" + Self.ordinaryPart(status.limits)
            case .other(let kind): "memory of kind \(kind)"
            }
        switch status.keepsStateFile {
        case true?: return memory + "; state file: memfd (survives a crash)"
        case false?: return memory + ", no state file"
        case nil: return memory
        }
    }

    /// `, 64 KiB in ordinary memory` when secret memory ran out (RLIMIT_MEMLOCK) and the daemon
    /// mapped ordinary memory for the rest.
    private static func ordinaryPart(_ limits: KCMDaemonStatus.Limits) -> String {
        let ordinary = limits.credentialMemoryBytes - min(limits.credentialMemoryBytes, limits.lockedMemoryBytes)
        return ordinary > 0 ? ", \(Display.bytes(ordinary)) in ordinary memory past RLIMIT_MEMLOCK" : ""
    }

    /// `"memory":"secret"` (or `"locked"`) in `status --json`.
    static func memoryKindName(_ kind: KCMDaemonStatus.MemoryKind) -> String {
        switch kind {
        case .anonymous: "locked"
        case .secret: "secret"
        case .other(let value): "\(value)"
        }
    }

    /// `status --json`: where the session's daemon listens, and what it reports while it runs.
    private struct StatusJSON: Encodable {
        var session: String
        var socket: String
        /// Nil when no daemon runs: then only `running`, `session` and `socket` are written.
        var daemon: (status: KCMDaemonStatus, uptime: UInt64, usages: [LimitUsage], renewal: KCMRenewalState.Worker?)?

        enum CodingKeys: String, CodingKey {
            case running, session, socket, pid, caches, credentials, connections, limits, renewal
            case ownerUID = "owner_uid", uptimeSeconds = "uptime_seconds", credentialBytes = "credential_bytes"
            case idleTimeoutSeconds = "idle_timeout_seconds", attachedSessions = "attached_sessions"
            case memory, stateFile = "state_file"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(daemon != nil, forKey: .running)
            try container.encode(session, forKey: .session)
            try container.encode(socket, forKey: .socket)
            guard let (status, uptime, usages, renewal) = daemon else { return }
            try container.encode(status.pid, forKey: .pid)
            try container.encode(status.ownerUID, forKey: .ownerUID)
            try container.encode(uptime, forKey: .uptimeSeconds)
            try container.encode(status.caches, forKey: .caches)
            try container.encode(status.credentials, forKey: .credentials)
            try container.encode(status.credentialBytes, forKey: .credentialBytes)
            try container.encode(status.connections, forKey: .connections)
            try container.encode(status.idleTimeout, forKey: .idleTimeoutSeconds)
            try container.encode(Dictionary(uniqueKeysWithValues: usages.map { ($0.key, $0.json) }), forKey: .limits)
            try container.encode(status.attachedSessions, forKey: .attachedSessions)
            // "locked" or "secret"; the state file true, false, or null from a daemon that does not say.
            try container.encode(CCacheCtl.memoryKindName(status.memoryKind), forKey: .memory)
            try container.encode(status.keepsStateFile, forKey: .stateFile)
            try container.encode(renewal, forKey: .renewal)  // null when the daemon reports none
        }
    }

    /// One limit of the daemon as `status` shows it: the usage against it and its refusals.
    struct LimitUsage {
        /// The key under "limits" in --json.
        let key: String
        /// The human output's label, and the ccached option that sets the limit.
        let label: String
        let option: String
        /// Nil when unlimited (only RLIMIT_MEMLOCK can be).
        let limit: UInt64?
        /// Nil for the request timeout, which has a limit but nothing to measure against it.
        let used: UInt64?
        /// The human form of the usage against the limit, e.g. `3 of 1024`.
        let shown: String
        let refused: UInt64
        /// What a refusal counts and how it met the limit: most limits refuse a request over them.
        var refusedNoun = "request"
        var refusedHow = "over"

        /// Every limit in the order `status` shows them.
        static func all(of status: KCMDaemonStatus) -> [LimitUsage] {
            let limits = status.limits
            let timeout = limits.requestTimeout
            let largestCache = "largest cache \(limits.largestCacheCredentials) of \(limits.maximumCredentialsPerCache)"
            let bytes = "\(Display.bytes(status.credentialBytes)) of \(Display.bytes(limits.maximumCredentialBytes))"
            let largestRequest =
                "largest \(Display.bytes(UInt64(limits.largestRequestBytes))) of \(Display.bytes(UInt64(limits.maximumRequestBytes)))"
            return [
                LimitUsage(
                    key: "caches", label: "caches", option: "--max-caches", limit: UInt64(limits.maximumCaches),
                    used: UInt64(status.caches), shown: "\(status.caches) of \(limits.maximumCaches)",
                    refused: limits.cacheRefusals),
                LimitUsage(
                    key: "credentials_per_cache", label: "credentials", option: "--max-credentials-per-cache",
                    limit: UInt64(limits.maximumCredentialsPerCache), used: UInt64(limits.largestCacheCredentials),
                    shown: "\(status.credentials), \(largestCache)",
                    refused: limits.credentialsPerCacheRefusals),
                LimitUsage(
                    key: "credential_bytes", label: "bytes", option: "--max-credential-bytes",
                    limit: limits.maximumCredentialBytes, used: status.credentialBytes,
                    shown: bytes,
                    refused: limits.credentialBytesRefusals),
                LimitUsage(
                    key: "connections", label: "connections", option: "--max-connections",
                    limit: UInt64(limits.maximumConnections), used: UInt64(status.connections),
                    shown: "\(status.connections) of \(limits.maximumConnections)",
                    refused: limits.connectionRefusals, refusedNoun: "connection"),
                LimitUsage(
                    key: "request_bytes", label: "request size", option: "--max-request-bytes",
                    limit: UInt64(limits.maximumRequestBytes), used: UInt64(limits.largestRequestBytes),
                    shown: largestRequest,
                    refused: limits.oversizedRequests),
                LimitUsage(
                    key: "request_timeout_seconds", label: "request time", option: "--request-timeout",
                    limit: UInt64(timeout), used: nil,
                    shown: timeout == 0 ? "no limit" : "at most \(timeout) s to arrive",
                    refused: limits.stalledRequests, refusedNoun: "connection", refusedHow: "stalled past"),
                LimitUsage(
                    key: "locked_memory", label: "memory", option: "RLIMIT_MEMLOCK",
                    limit: limits.memlockLimit == .max ? nil : limits.memlockLimit, used: limits.lockedMemoryBytes,
                    shown: lockedMemory(limits),
                    refused: limits.unlockedMappings, refusedNoun: "mapping", refusedHow: "left unlocked over"),
            ]
        }

        /// `64 KiB locked of 8 MiB`, and what is not locked when the limit was reached.
        private static func lockedMemory(_ limits: KCMDaemonStatus.Limits) -> String {
            let locked = Display.bytes(limits.lockedMemoryBytes) + " locked"
            let of = limits.memlockLimit == .max ? ", no limit" : " of \(Display.bytes(limits.memlockLimit))"
            let unlocked = limits.credentialMemoryBytes - min(limits.credentialMemoryBytes, limits.lockedMemoryBytes)
            return locked + of + (unlocked > 0 ? ", \(Display.bytes(unlocked)) not locked" : "")
        }

        /// `"caches":{"limit":1024,"option":"--max-caches","refused":0,"used":3}` under "limits"
        /// (no `used` for the request timeout, `limit` null when unlimited).
        struct JSON: Encodable {
            var option: String
            @NullWhenAbsent var limit: UInt64?
            var used: UInt64?
            var refused: UInt64
        }

        var json: JSON { JSON(option: option, limit: limit, used: used, refused: refused) }

        /// `2 requests over --max-caches`, or nil when this limit refused nothing.
        var refusal: String? {
            guard refused > 0 else { return nil }
            return "\(refused) \(refusedNoun)\(refused == 1 ? "" : "s") \(refusedHow) \(option)"
        }
    }

    struct Where: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "where",
            abstract: "Say which daemon this process reaches, and by which rule.",
            discussion: """
                Prints the daemon's key and the routing rule that chose it (ccached-door applies the same \
                rule to every connection on the standard socket), its socket, whether it runs, and whether \
                the standard KCM socket (KRB5CCNAME=KCM: with no per-session krb5.conf) reaches the same \
                daemon. Starts nothing.
                """)

        func run() throws {
            let context = try openContext(autoStart: false)
            let paths = context.paths
            let chosen: String
            if paths.isExplicitSocket {
                chosen = "the socket CCACHED_SOCKET names"
            } else if let session = paths.session {
                chosen =
                    session.route.map { "\(session.key) (\($0.rule))" } ?? "\(session.key) (from CCACHED_SESSION)"
            } else {
                chosen = "?"
            }
            print("daemon:  \(chosen)")
            print("socket:  \(paths.socket)")
            if let lifetime = paths.session?.route?.lifetime {
                let ends =
                    switch lifetime {
                    case .loginSession(let id): "with logind session \(id)"
                    case .auditSession(let number): "when the last process of audit session \(number) exits"
                    case .perUser: "when uid \(context.uid) has no login left and does not linger"
                    }
                print("ends:    \(ends)")
            }
            guard context.isDaemonRunning else {
                print("running: no")
                return
            }
            let pid = (try? context.status().pid).map { "yes (pid \($0))" } ?? "yes"
            print("running: \(pid)")
            print(
                "door:    "
                    + (context.isReachedThroughDoor()
                        ? "\(CCacheContext.standardSocket) reaches this daemon (KRB5CCNAME=KCM: is enough)"
                        : "\(CCacheContext.standardSocket) does not reach this daemon"))
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start",
            abstract: "Start this session's daemon (nothing to do if it runs).",
            discussion: """
                A daemon started here stays until 'ccachectl stop' or logout (--idle-timeout 0): the stock \
                MIT tools cannot start a daemon themselves, so one they rely on must not exit while idle.
                """)

        @Option(name: .long, help: "Seconds idle (no caches, no connections) before the daemon exits; 0 = never.")
        var idleTimeout: UInt32 = 0

        func run() throws {
            let context = try openContext(idleTimeout: idleTimeout)
            let wasRunning = context.isDaemonRunning
            let status = try reporting {
                try context.start()
                return try context.status()
            }
            print(wasRunning ? "ccached already running (pid \(status.pid))" : "ccached started (pid \(status.pid))")
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stop",
            abstract: "Stop this session's daemon; every ticket it holds is wiped.",
            discussion: "Exit status 1 if no daemon was running.")

        func run() throws {
            let context = try openContext(autoStart: false)
            let stopped = try reporting { try context.stopDaemon() }
            if !stopped {
                print("no ccached daemon is running for this session")
                throw ExitCode(1)
            }
            print("ccached stopped")
        }
    }

    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attach",
            abstract: "Count this login session as one using the daemon (pam_ccached runs it at login).",
            discussion: """
                Several login sessions can share one daemon (the per-user scope, when no session can be \
                told apart). Each attaches at login and detaches at logout; only the last detach wipes \
                the daemon. Starts the daemon if it is not running. pam_ccached runs 'attach \
                --idle-timeout N --print-env plain' at login: the start, the attach and the session's \
                variables in one run.
                """)

        @Option(
            name: .long,
            help: "Seconds idle (no caches, no connections) before a daemon this starts exits; 0 = never (as 'start').")
        var idleTimeout: UInt32?

        @Option(
            name: .long,
            help:
                "Then print the session's variables as 'ccachectl env --no-start --shell SHELL' does; the attach's own messages go to stderr."
        )
        var printEnv: Env.Shell?

        func run() throws {
            let context = try openContext(autoStart: true, idleTimeout: idleTimeout)
            // With --print-env, stdout carries only the variables (pam_ccached reads them).
            let say: (String) -> Void = printEnv == nil ? { print($0) } : { standardError($0) }
            let count = try reporting {
                if printEnv != nil { try context.paths.writeKrb5Fragment() }
                return try context.attachSession()
            }
            say("\(count) session\(count == 1 ? "" : "s") attached")
            adoptPerUserTickets(into: context, say: say)
            if let printEnv { Env.printVariables(of: context, shell: printEnv) }
        }

        /// A login that opens adopts what was stored for the user while they had no login: the caches
        /// of the per-user daemon (rule 3 sent writers outside any session there).
        func adoptPerUserTickets(into context: CCacheContext, say: (String) -> Void) {
            guard let session = context.paths.session, session.key != "user", session.route?.rule != .ownJob else {
                return
            }
            var environment = ProcessEnvironment.current()
            environment["CCACHED_SESSION"] = "user"
            environment["CCACHED_SOCKET"] = nil
            guard
                let perUser = try? CCacheContext(
                    options: CCacheContext.Options(autoStart: false, environment: environment)),
                perUser.paths.socket != context.paths.socket, perUser.isDaemonRunning
            else { return }
            do {
                let moved = try context.adoptCaches(from: perUser)
                if !moved.isEmpty {
                    let names = moved.map(\.description).joined(separator: ", ")
                    say("adopted \(moved.count) cache(s) stored before the login: \(names)")
                }
            } catch {
                standardError("ccachectl: could not adopt the per-user daemon's tickets: \(error)")
            }
        }
    }

    struct Detach: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "detach",
            abstract: "End this login session's use of the daemon (pam_ccached runs it at logout).",
            discussion: """
                When it was the last session attached, the daemon wipes every ticket and stops; otherwise \
                it keeps serving the others. Exit status 1 if no daemon was running.
                """)

        func run() throws {
            let context = try openContext(autoStart: false)
            guard let remaining = try reporting({ try context.detachSession() }) else {
                print("no ccached daemon is running for this session")
                throw ExitCode(1)
            }
            if remaining == 0 {
                print("last session detached: every ticket wiped, ccached stopped")
            } else {
                print("\(remaining) other session\(remaining == 1 ? "" : "s") still attached; ccached keeps running")
            }
        }
    }

    struct Env: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "env",
            abstract: "Print the shell lines that point Kerberos tools at this session's daemon.",
            discussion: """
                Use it like ssh-agent: eval "$(ccachectl env)". Starts the daemon (with no idle exit). When \
                ccached-door serves the standard KCM socket and routes this process to the same daemon, \
                prints only KRB5CCNAME=KCM: (and KRB5_CONFIG without any ccached fragment, if it named \
                one). Otherwise writes the session's krb5.conf fragment and sets KRB5CCNAME=KCM:, \
                KRB5_CONFIG (the fragment first, then the existing value or /etc/krb5.conf), HEIM_IPC_DIR \
                and CCACHED_SOCKET.
                """)

        enum Shell: String, ExpressibleByArgument, CaseIterable {
            case sh, csh, fish, plain
        }

        @Option(
            name: .long,
            help:
                "The syntax: sh (also bash, zsh), csh, fish, or plain NAME=value lines (for pam_putenv, EnvironmentFile)."
        )
        var shell: Shell = .sh

        @Flag(name: .long, help: "Only print; do not start the daemon.")
        var noStart = false

        func run() throws {
            let context = try openContext(idleTimeout: 0)
            try reporting {
                try context.paths.writeKrb5Fragment()
                if !noStart { try context.start() }
            }
            Self.printVariables(of: context, shell: shell)
        }

        /// The lines: KRB5CCNAME=KCM:, and what else this process needs to reach the session's daemon.
        static func printVariables(of context: CCacheContext, shell: Shell) {
            let environment = ProcessEnvironment.current()
            let existing = environment["KRB5_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/krb5.conf"
            // Every ccached fragment, this session's and any stale one inherited from an ended login.
            let others = existing.split(separator: ":").map(String.init).filter {
                $0 != context.paths.krb5Fragment && !Self.isSessionFragment($0)
            }
            var variables: [(String, String)] = [("KRB5CCNAME", "KCM:")]
            let throughDoor =
                !context.paths.isExplicitSocket && context.isDaemonRunning && context.isReachedThroughDoor()
            if throughDoor {
                // ccached-door routes this process to this daemon: the standard socket reaches it from
                // every program, so nothing may name a session's socket (a shell that outlives the
                // login, such as tmux, would keep naming a dead one).
                if others.joined(separator: ":") != existing, !others.isEmpty {
                    variables.append(("KRB5_CONFIG", others.joined(separator: ":")))
                }
            } else {
                variables += [
                    ("KRB5_CONFIG", ([context.paths.krb5Fragment] + others).joined(separator: ":")),
                    ("HEIM_IPC_DIR", context.paths.directory),
                    ("CCACHED_SOCKET", context.paths.socket),
                ]
            }
            for (name, value) in variables { print(line(name, value, shell: shell)) }
            // pam_ccached keeps (never exports) which daemon the session attached to, so that its
            // close_session detaches from that one; a comment for every other reader of plain lines.
            if throughDoor && shell == .plain { print("#CCACHED_SOCKET=\(context.paths.socket)") }
        }

        /// A per-session krb5.conf fragment ccached writes: `<runtime>/ccached/<session>/krb5.conf`.
        static func isSessionFragment(_ path: String) -> Bool {
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count >= 3 && parts[parts.count - 1] == "krb5.conf" && parts[parts.count - 3] == "ccached"
        }

        /// POSIX sh and csh: single quotes, each `'` closed, escaped and reopened.
        static func quote(_ value: String) -> String {
            "'" + value.replacingAll("'", with: "'\\''") + "'"
        }

        /// fish: inside single quotes only `\\` and `\'` are escapes, so both are escaped and the quote
        /// never closes early (sh's `'\''` trick leaves fish with an unbalanced quote).
        static func fishQuote(_ value: String) -> String {
            "'" + value.replacingAll("\\", with: "\\\\").replacingAll("'", with: "\\'") + "'"
        }

        static func line(_ name: String, _ value: String, shell: Shell) -> String {
            switch shell {
            case .sh: "\(name)=\(quote(value)); export \(name);"
            case .csh: "setenv \(name) \(quote(value));"
            case .fish: "set -gx \(name) \(fishQuote(value));"
            case .plain: "\(name)=\(value)"
            }
        }
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Substring.Index>? {
        guard !target.isEmpty, count >= target.count else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) { return index..<self.index(index, offsetBy: target.count) }
            index = self.index(after: index)
        }
        return nil
    }
}
