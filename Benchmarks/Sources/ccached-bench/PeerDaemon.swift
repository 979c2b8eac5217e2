import Glibc

/// Heimdal's `kcm` and `sssd_kcm`, the KCM servers a user could run instead of ccached, started on
/// private sockets. Both have their paths compiled in (Debian's Heimdal kcm binds
/// `/var/run/.heim_org.h5l.kcm-socket` whatever `-s` says; sssd keeps its databases under
/// `/var/lib/sss`), so each runs in a private mount namespace (`unshare -m`) with a fresh directory
/// bound over `/run` (and, for sssd, over `/var`). The host's `/run` and `/var` are never touched.
///
/// The binaries come from the host when the packages are installed, otherwise from the tree that
/// `scripts/bench-deps.sh` unpacks (`dpkg -x`) into `.build/peers/root`, laid over `/usr` inside
/// the namespace with overlayfs so that their compiled-in library and data paths resolve.
struct PeerDaemon {
    let kind: CacheKind
    /// The unpacked packages (`…/root`, holding `usr/`), or nil.
    let unpackedRoot: String?

    private var relativeBinary: String { kind == .heimdal ? "/usr/sbin/kcm" : "/usr/libexec/sssd/sssd_kcm" }
    private var package: String { kind == .heimdal ? "heimdal-kcm" : "sssd-kcm" }

    /// Whether the binaries are on the host (no overlay needed).
    private var onHost: Bool {
        access(relativeBinary, X_OK) == 0 && (kind == .heimdal || access("/usr/sbin/sssd", X_OK) == 0)
    }

    private var unpacked: Bool {
        guard let unpackedRoot else { return false }
        return access(unpackedRoot + relativeBinary, X_OK) == 0
    }

    /// Why this peer cannot run here, or nil when it can.
    var unavailableReason: String? {
        guard onHost || unpacked else {
            return "\(package) is neither installed nor unpacked in \(unpackedRoot ?? "(no --peers directory)")"
                + " (run scripts/bench-deps.sh)"
        }
        guard geteuid() == 0 else { return "a private mount namespace (unshare -m) needs root" }
        guard access("/usr/bin/unshare", X_OK) == 0 else { return "/usr/bin/unshare is missing (util-linux)" }
        return nil
    }

    /// The socket a peer started in `directory` listens on (its `/run` inside the namespace).
    static func socketPath(in directory: String) -> String { directory + "/run/.heim_org.h5l.kcm-socket" }

    /// Starts the peer with its state in `directory` (created here, fresh), standard error to
    /// `logPath`. The returned process is the daemon itself (`unshare` and `sh` exec into it), so
    /// stopping it by pid stops the daemon, and the namespace goes with it.
    func start(in directory: String, logPath: String) throws -> DaemonProcess {
        for sub in [
            "/run", "/var/lib/sss/db", "/var/lib/sss/secrets", "/var/lib/sss/pipes/private",
            "/var/lib/sss/pubconf", "/var/lib/sss/mc", "/var/log/sssd", "/etc",
        ] {
            try Workspace.makeDirectories(directory + sub)
        }
        var script = "set -e\n"
        if !onHost, let unpackedRoot {
            script += "mount -t overlay overlay -o lowerdir=\(unpackedRoot)/usr:/usr /usr\n"
        }
        script += "mount --bind \(directory)/run /run\n"
        switch kind {
        case .heimdal:
            script += "exec \(relativeBinary)\n"
        default:
            let config = directory + "/etc/sssd.conf"
            try Self.writeFile(
                config,
                """
                [sssd]
                services = kcm
                domains =

                [kcm]
                socket_path = /run/.heim_org.h5l.kcm-socket
                # Stay up between requests: an idle exit would measure sssd's start-up instead.
                responder_idle_timeout = 0

                """)
            // What sssd-kcm.service does: build the config database from [kcm], then start the
            // responder (it creates socket_path itself when not socket-activated).
            script += "mount --bind \(directory)/var /var\n"
            script += "/usr/sbin/sssd -c \(config) --genconf-section=kcm --logger=stderr\n"
            script += "exec \(relativeBinary) --uid 0 --gid 0 --logger=stderr\n"
        }
        let socket = Self.socketPath(in: directory)
        return try DaemonProcess.start(
            "/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script], socketPath: socket,
            logPath: logPath, timeoutSeconds: 20)
    }

    /// Writes `text` to a new file readable by root only (sssd refuses a config others can read).
    private static func writeFile(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonProcess.StartError(description: "cannot write \(path)") }
        defer { close(fd) }
        _ = text.withCString { UnixSocketClient.writeAll(fd, $0, strlen($0)) }
    }
}
