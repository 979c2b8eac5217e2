import Glibc
import SystemCalls

/// Where one session's daemon lives: its private directory, the socket, the spawn lock, and the
/// krb5.conf fragment that points MIT clients at it.
public struct SessionPaths: Hashable, Sendable {
    /// The socket's name: the one Heimdal clients look for in `$HEIM_IPC_DIR`.
    public static let socketName = ".heim_org.h5l.kcm-socket"

    public let session: SessionIdentity?
    /// The session's directory (0700, owned by the user).
    public let directory: String
    public let socket: String
    /// Held (flock) by a client while it starts the daemon, so racing clients start only one.
    public let spawnLock: String
    /// `[libdefaults] kcm_socket` and `default_ccache_name = KCM:` for this session.
    public let krb5Fragment: String
    /// Whether `CCACHED_SOCKET` chose the socket.
    public var isExplicitSocket: Bool { session == nil }

    public init(session: SessionIdentity?, directory: String, socket: String, spawnLock: String, krb5Fragment: String) {
        self.session = session
        self.directory = directory
        self.socket = socket
        self.spawnLock = spawnLock
        self.krb5Fragment = krb5Fragment
    }

    /// The paths for this process: `CCACHED_SOCKET` if set (its directory created 0700 if missing,
    /// else checked like the others); otherwise
    /// `<runtime>/ccached/<session>/` where `<runtime>` is the user's ``RuntimeBase`` (its doc comment
    /// gives the precedence: `$XDG_RUNTIME_DIR`, `/run/user/<uid>`, `/run/ccached/<uid>`).
    /// Creates missing directories 0700 and checks every one with `lstat`: a link, another owner or a
    /// group/world-writable mode is refused, and so is an unsafe ancestor (``AncestorCheck``).
    public static func resolve(environment: [String: String], uid: UInt32) throws(SessionRuntimeError)
        -> SessionPaths
    {
        if let socket = environment["CCACHED_SOCKET"], !socket.isEmpty {
            let directory = RuntimeDirectory.parent(of: socket)
            var info = stat()
            let found = lstat(directory, &info) == 0
            let code = errno
            if found, info.st_mode & S_IFMT == S_IFDIR, info.st_uid != uid, info.st_uid != 0, uid != 0 {
                throw .foreignSocket(path: socket, owner: info.st_uid, uid: uid)
            }
            if !found && code == ENOENT {
                try RuntimeDirectory.ensure(directory, uid: uid)
            } else {
                try RuntimeDirectory.check(directory, uid: uid, mustBePrivate: false)
            }
            // A socket with the standard name sits in a session-style directory (e.g. the systemd
            // user units' %t/ccached/user/): keep that directory's layout.
            if socket.hasSuffix("/" + socketName) {
                return SessionPaths(
                    session: nil, directory: directory, socket: socket, spawnLock: directory + "/spawn.lock",
                    krb5Fragment: directory + "/krb5.conf")
            }
            return SessionPaths(
                session: nil, directory: directory, socket: socket, spawnLock: socket + ".lock",
                krb5Fragment: socket + ".krb5.conf")
        }
        let session = try SessionIdentity.current(environment: environment)
        // Root may make its own /run/ccached/0 (and is the only one who can): the door's rule.
        let base = try RuntimeBase.locate(
            uid: uid, gid: 0, environment: environment, mayCreate: geteuid() == 0 && uid == 0
        ).path
        try RuntimeDirectory.ensure(base + "/ccached", uid: uid)
        let directory = sessionDirectory(base: base, sessionKey: session.key)
        try RuntimeDirectory.ensure(directory, uid: uid)
        if let unsafe = AncestorCheck.firstProblem(in: directory, uid: uid) {
            throw .unsafePath(path: unsafe.path, problem: unsafe.problem)
        }
        return SessionPaths(
            session: session, directory: directory, socket: directory + "/" + socketName,
            spawnLock: directory + "/spawn.lock", krb5Fragment: directory + "/krb5.conf")
    }

    /// A session's directory under a user's runtime base (``RuntimeBase``): `<base>/ccached/<key>`;
    /// its socket is ``socketName`` inside. The door and the client both place a daemon here.
    public static func sessionDirectory(base: String, sessionKey: String) -> String {
        base + "/ccached/" + sessionKey
    }

    /// The krb5.conf fragment's text.
    public var krb5FragmentText: String {
        """
        # Written by ccached: points MIT Kerberos at this session's credential cache daemon.
        # List it first in KRB5_CONFIG (the first file that sets a value wins).
        [libdefaults]
            default_ccache_name = KCM:
            kcm_socket = \(socket)

        """
    }

    /// Writes the fragment (0644, atomically) if it is missing or out of date.
    public func writeKrb5Fragment() throws(SessionRuntimeError) {
        let text = krb5FragmentText
        if readSmallFile(krb5Fragment) == text { return }
        let temporary = krb5Fragment + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw .cannotWrite(path: temporary, problem: Errno.current.message) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(temporary, krb5Fragment) == 0 else {
            let problem = Errno.current.message
            unlink(temporary)
            throw .cannotWrite(path: krb5Fragment, problem: problem)
        }
    }
}

/// A user's runtime base: the directory under which every daemon of theirs lives
/// (`<base>/ccached/<session>/`). The one definition the client, ccachectl and ccached-door share;
/// pam_ccached makes `/run/ccached/<uid>` by the same C function (`ccached_ensure_root_managed_base`).
public struct RuntimeBase: Hashable, Sendable {
    public let path: String
    /// Whether it is `/run/user/<uid>` (the door then also gives it as the daemon's `XDG_RUNTIME_DIR`).
    public let isUserRuntimeDirectory: Bool

    /// The base for `uid`, by this precedence (the first that applies wins):
    /// 1. `$XDG_RUNTIME_DIR` in `environment`, when absolute. Checked (a directory of the user's, not
    ///    writable by others); a bad one is refused, not skipped. The door passes no environment: a
    ///    client's is not its to trust.
    /// 2. `<runRoot>/user/<uid>` (logind's) when it is a directory owned by the user; a link or
    ///    another owner's does not count. Checked like 1.
    /// 3. `<runRoot>/ccached/<uid>`. When `mayCreate` (a root process: the door for any user, root's
    ///    client for itself) it is made if missing or checked, never following a link
    ///    (``RuntimeDirectory/ensureRootManaged(runRoot:uid:gid:)``); otherwise it must exist, under a
    ///    root-owned `ccached` not writable by others, and be the user's with mode 0700.
    /// 4. Otherwise ``SessionRuntimeError/noRuntimeDirectory(uid:)``, which says what to do.
    /// Never a predictable name in a world-writable directory: another user could create it first
    /// (issue 12, item 2). `runRoot` is `/run` outside tests.
    public static func locate(
        uid: UInt32, gid: UInt32, environment: [String: String], runRoot: String = "/run", mayCreate: Bool
    ) throws(SessionRuntimeError) -> RuntimeBase {
        if let xdg = environment["XDG_RUNTIME_DIR"], xdg.hasPrefix("/") {
            try RuntimeDirectory.check(xdg, uid: uid, mustBePrivate: false)
            return RuntimeBase(path: xdg, isUserRuntimeDirectory: false)
        }
        let runUser = runRoot + "/user/\(uid)"
        var info = stat()
        if lstat(runUser, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == uid {
            try RuntimeDirectory.check(runUser, uid: uid, mustBePrivate: false)
            return RuntimeBase(path: runUser, isUserRuntimeDirectory: true)
        }
        if mayCreate {
            return RuntimeBase(
                path: try RuntimeDirectory.ensureRootManaged(runRoot: runRoot, uid: uid, gid: gid),
                isUserRuntimeDirectory: false)
        }
        let managed = runRoot + "/ccached/\(uid)"
        if lstat(managed, &info) == 0 {
            try RuntimeDirectory.check(runRoot + "/ccached", uid: 0, mustBePrivate: false)
            try RuntimeDirectory.check(managed, uid: uid, mustBePrivate: true)
            return RuntimeBase(path: managed, isUserRuntimeDirectory: false)
        }
        throw .noRuntimeDirectory(uid: uid)
    }
}
