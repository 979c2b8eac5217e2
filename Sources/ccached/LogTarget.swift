import CCacheDaemon
import Glibc

/// Where the daemon's log lines go (`--log-target`).
enum LogTarget: String {
    case stderr
    case journal
    case syslog

    /// The journal's native socket: present whenever journald runs.
    static let journalSocket = "/run/systemd/journal/socket"

    /// What `--log-target auto` means for this process. The journal when standard error is the
    /// journal (a unit's stream); standard error when someone reads it (a terminal, a file, a pipe,
    /// a socket); otherwise (it is /dev/null or closed, as for a daemon that ccachectl or the PAM
    /// module started detached) the journal when journald runs, else syslog. Without this a
    /// detached daemon's refusals, purges and wipes would reach nobody.
    static func automatic() -> LogTarget {
        if JournalLogHandler.standardErrorIsJournal { return .journal }
        if standardErrorHasReader() { return .stderr }
        var info = stat()
        if lstat(journalSocket, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { return .journal }
        return .syslog
    }

    /// Whether anything can read what is written to descriptor 2: false when it is closed or is
    /// /dev/null (the same character device), true for anything else.
    static func standardErrorHasReader() -> Bool {
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        guard info.st_mode & S_IFMT == S_IFCHR else { return true }
        if isatty(2) != 0 { return true }
        var null = stat()
        guard stat("/dev/null", &null) == 0, null.st_mode & S_IFMT == S_IFCHR else { return true }
        return info.st_rdev != null.st_rdev
    }
}
