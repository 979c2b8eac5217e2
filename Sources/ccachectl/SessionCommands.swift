import ArgumentParser
import CCacheClient
import Glibc
import KCM
import SessionRuntime

extension CCacheCtl {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the session, its socket and the daemon: pid, uptime, caches, credentials, bytes held.",
            discussion: "Starts the daemon if it is not running, unless --no-start (then exit status 1 when none runs).")

        @Flag(name: .long, help: "Do not start a daemon; report that none runs instead.")
        var noStart = false

        @Flag(name: .long, help: "Print JSON for scripts.")
        var json = false

        func run() throws {
            let context = try openContext(autoStart: !noStart)
            let session = context.paths.session.map(\.description) ?? "(CCACHED_SOCKET)"
            if noStart && !context.isDaemonRunning {
                if json {
                    print("{\"running\":false,\"session\":\(Display.json(session)),\"socket\":\(Display.json(context.paths.socket))}")
                } else {
                    print("session:      \(session)\nsocket:       \(context.paths.socket)\ndaemon:       not running")
                }
                throw ExitCode(1)
            }
            let status = try reporting { try context.status() }
            let uptime = UInt64(max(0, Int64(time(nil)) - Int64(status.startedAt)))
            if json {
                print(
                    "{\"running\":true,\"session\":\(Display.json(session)),\"socket\":\(Display.json(context.paths.socket)),"
                        + "\"pid\":\(status.pid),\"owner_uid\":\(status.ownerUID),\"uptime_seconds\":\(uptime),"
                        + "\"caches\":\(status.caches),\"credentials\":\(status.credentials),"
                        + "\"credential_bytes\":\(status.credentialBytes),\"connections\":\(status.connections),"
                        + "\"idle_timeout_seconds\":\(status.idleTimeout)}")
                return
            }
            print(
                """
                session:      \(session)
                socket:       \(context.paths.socket)
                daemon:       pid \(status.pid), uid \(status.ownerUID), up \(Display.duration(uptime))
                caches:       \(status.caches)
                credentials:  \(status.credentials) (\(status.credentialBytes) bytes)
                connections:  \(status.connections) open
                idle exit:    \(status.idleTimeout == 0 ? "never" : "after \(status.idleTimeout) s with no caches and no connections")
                """)
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
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

    struct Env: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the shell lines that point Kerberos tools at this session's daemon.",
            discussion: """
                Use it like ssh-agent: eval "$(ccachectl env)". Starts the daemon (with no idle exit) and \
                writes the session's krb5.conf fragment; sets KRB5CCNAME=KCM:, KRB5_CONFIG (the fragment \
                first, then the existing value or /etc/krb5.conf), HEIM_IPC_DIR and CCACHED_SOCKET.
                """)

        enum Shell: String, ExpressibleByArgument, CaseIterable {
            case sh, csh, fish, plain
        }

        @Option(
            name: .long,
            help: "The syntax: sh (also bash, zsh), csh, fish, or plain NAME=value lines (for pam_putenv, EnvironmentFile).")
        var shell: Shell = .sh

        @Flag(name: .long, help: "Only print; do not start the daemon.")
        var noStart = false

        func run() throws {
            let context = try openContext(idleTimeout: 0)
            try reporting {
                try context.paths.writeKrb5Fragment()
                if !noStart { try context.start() }
            }
            let environment = ProcessEnvironment.current()
            let existing = environment["KRB5_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/krb5.conf"
            let others = existing.split(separator: ":").map(String.init).filter { $0 != context.paths.krb5Fragment }
            let variables: [(String, String)] = [
                ("KRB5CCNAME", "KCM:"),
                ("KRB5_CONFIG", ([context.paths.krb5Fragment] + others).joined(separator: ":")),
                ("HEIM_IPC_DIR", context.paths.directory),
                ("CCACHED_SOCKET", context.paths.socket),
            ]
            for (name, value) in variables { print(Self.line(name, value, shell: shell)) }
        }

        static func quote(_ value: String) -> String {
            "'" + value.replacingAll("'", with: "'\\''") + "'"
        }

        static func line(_ name: String, _ value: String, shell: Shell) -> String {
            switch shell {
            case .sh: "\(name)=\(quote(value)); export \(name);"
            case .csh: "setenv \(name) \(quote(value));"
            case .fish: "set -gx \(name) \(quote(value).replacingAll("\\'", with: "\\\\'"));"
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
