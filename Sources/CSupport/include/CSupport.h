#ifndef CCACHED_CSUPPORT_H
#define CCACHED_CSUPPORT_H

#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "CSupportEpoll.h"
#include "ccached_privilege.h"
#include "ccached_private_directory.h"

/// Reads the peer's process, user and group id of a connected Unix socket (SO_PEERCRED).
/// Returns 0, or -1 with errno set.
int ccached_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/// accept4 with SOCK_CLOEXEC. Returns the new descriptor, or -1 with errno set.
int ccached_accept_cloexec(int fd);

/// Creates a Unix stream socket with SOCK_CLOEXEC. Returns the descriptor, or -1 with errno set.
int ccached_unix_stream_socket(void);

/// Binds `fd` to `path`. Returns 0, or -1 with errno set (ENAMETOOLONG when the path does not fit).
int ccached_bind_unix(int fd, const char *path);

/// Connects `fd` to `path`. Returns 0, or -1 with errno set (ENAMETOOLONG when the path does not fit).
int ccached_connect_unix(int fd, const char *path);

/// A signalfd for SIGTERM, SIGINT and SIGHUP, after blocking them in the calling thread (threads
/// created later inherit the mask). Returns the descriptor, or -1 with errno set.
int ccached_termination_signalfd(void);

/// Adds SIGUSR2 (re-execute the installed binary: an upgrade) to the signals the signalfd `fd` of
/// ccached_termination_signalfd takes, blocking it first. Returns 0, or -1 with errno set.
int ccached_signalfd_add_reexec(int fd);

/// Reads one signal from a signalfd; returns its number, or -1 with errno set.
int ccached_read_signalfd(int fd);

/// Starts a detached thread with a small stack running `body(context)`. Returns 0 or an errno value.
int ccached_spawn_thread(void *(*body)(void *), void *context, size_t stack_size);

/// Starts `path` with `argv` fully detached: double fork, a new session, standard streams on
/// /dev/null, every descriptor closed but `keep_fd` (moved to descriptor 3 when >= 0), so the
/// caller never has a child to reap. The child starts with every signal blocked and closes the
/// descriptors first thing; every signal action is reset to the default and the mask emptied just
/// before exec. A failure in the child is written to `keep_fd` as "ERROR <why>" (spawn.c shares
/// these steps with ``ccached_spawn_as_user``). Returns 0, or an errno value.
int ccached_spawn_detached(const char *path, char *const argv[], int keep_fd);

/// This thread's own real, effective and saved uid / gid (the raw syscalls: glibc's wrappers
/// would be the same, but setresuid's wrapper changes every thread, which we must not do).
int ccached_thread_getresuid(uid_t *real, uid_t *effective, uid_t *saved);
int ccached_thread_getresgid(gid_t *real, gid_t *effective, gid_t *saved);
/// Changes this thread's ids only (the raw syscalls). Return 0, or -1 with errno set.
int ccached_thread_setresuid(uid_t real, uid_t effective, uid_t saved);
int ccached_thread_setresgid(gid_t real, gid_t effective, gid_t saved);

/// Makes the process non-dumpable (no core dump, no ptrace or /proc/PID/mem access by the same
/// uid: PR_SET_DUMPABLE 0) and sets the core size limit to 0. Returns 0, or -1 with errno set.
int ccached_forbid_core_dumps(void);

/// Raises the soft limit on open descriptors to the hard limit (each connection holds one).
/// Returns the new soft limit, or -1 with errno set.
long ccached_raise_descriptor_limit(void);

/// Caps glibc's malloc arenas at `arenas` (mallopt M_ARENA_MAX); call before any thread starts.
/// 0, or -1 when glibc refused.
int ccached_limit_malloc_arenas(int arenas);

/// Adds "close every descriptor from `fd` up" to spawn file actions (glibc's
/// posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not export).
/// Returns 0 or an errno value.
int ccached_spawn_actions_close_from(posix_spawn_file_actions_t *actions, int fd);

// ---- The front door (ccached-door) and the daemon's hand-off socket ----

/// A pidfd for the process that connected the socket (SO_PEERPIDFD, Linux 6.5+), with O_CLOEXEC.
/// Returns the descriptor, or -1 with errno set (ENOPROTOOPT on older kernels).
int ccached_peer_pidfd(int fd);

/// pidfd_send_signal(pidfd, signal, NULL, 0). Signal 0 only checks that the process still exists
/// (a zombie still counts: its pid is not reused before it is reaped). Returns 0, or -1 with errno.
int ccached_pidfd_send_signal(int pidfd, int signal);

/// The pid (in this pid namespace) a pidfd refers to, from PIDFD_GET_INFO (Linux 6.13+) or else
/// /proc/self/fdinfo ("Pid:"); 0 when the process is in a pid namespace this one cannot see, -1
/// when it has been reaped or on error.
int ccached_pidfd_pid(int pidfd);

/// The inode number of a pidfd (fstat's st_ino), or 0 when fstat fails. On pidfs (Linux 6.9+,
/// 64-bit: see ccached_pidfd_on_pidfs) it is a number no other process ever has.
unsigned long long ccached_pidfd_inode(int pidfd);

/// 1 when the pidfd lives on pidfs (fstatfs gives PID_FS_MAGIC), else 0 (older kernels give every
/// pidfd the one anonymous inode).
int ccached_pidfd_on_pidfs(int pidfd);

/// A pidfd for `pid` (pidfd_open, O_CLOEXEC is implied), or -1 with errno.
int ccached_pidfd_open(int pid);

/// Sends one data byte with exactly one descriptor attached (SCM_RIGHTS, MSG_NOSIGNAL).
/// Returns 0, or -1 with errno set.
int ccached_send_descriptor(int socket, unsigned char byte, int fd);

/// Receives one message of at most one data byte and at most one descriptor (recvmsg with
/// MSG_CMSG_CLOEXEC). Returns 1 with `*byte` set and `*fd` the descriptor (or -1 when the message
/// carried none, more than one, or was truncated: extra descriptors are closed), 0 at end of file,
/// or -1 with errno set.
int ccached_receive_descriptor(int socket, unsigned char *byte, int *fd);

/// Whether `fd` is a connected (not listening) AF_UNIX stream socket: 1, 0, or -1 with errno.
int ccached_is_connected_unix_stream(int fd);

/// Opens the Unix socket at the absolute `path` for ``ccached_connect_unix_at`` without following
/// any link: each component is opened with O_PATH|O_NOFOLLOW relative to the one before, from /.
/// Every directory on the way must be owned by root or `uid`, and the socket itself by `uid`.
/// Returns an O_PATH descriptor (O_CLOEXEC) of the socket, or -1 with errno set: ENOENT (something
/// is missing), ELOOP (a link), ENOTDIR (a component is no directory), ENOTSOCK (the last one is
/// no socket), EPERM (another owner: `*owner` says which), EINVAL (not absolute, "." or "..").
/// `*failed_length` is then the length of the prefix of `path` that names the offending component.
int ccached_open_socket_nofollow(const char *path, uid_t uid, uid_t *owner, size_t *failed_length);

/// Connects `fd` to the socket that `path_fd` (from ``ccached_open_socket_nofollow``) refers to,
/// through /proc/self/fd: the very inode checked, whatever is at its path by now.
/// Returns 0, or -1 with errno set.
int ccached_connect_unix_at(int fd, int path_fd);

/// pipe2(ends, O_CLOEXEC). Returns 0, or -1 with errno set.
int ccached_pipe_cloexec(int ends[2]);

/// Sets SO_RCVTIMEO and SO_SNDTIMEO (the latter also bounds connect on a Unix socket).
/// Returns 0, or -1 with errno set.
int ccached_socket_timeouts(int fd, int milliseconds);

/// Starts `path` as user `uid`/`gid` with the supplementary groups `groups` (`group_count` of
/// them). The child is forked with every signal blocked, and first thing (still root, so no user
/// can signal it yet) moves `ready_fd` to descriptor 3, closes every other descriptor and puts the
/// standard streams on /dev/null; then resets every signal action to the default, starts a new
/// session, forks again, setgroups + setresgid + setresuid (raw syscalls, the child has one
/// thread), verified with getresuid/getresgid/getgroups and by setuid(0) failing for a non-root
/// uid (``ccached_drop_privileges``, shared with pam_ccached); then each of `directories`
/// (NULL-terminated) is created 0700 as that user if missing;
/// chdir `home` (else /); the signal mask is emptied and execve runs with exactly `envp`. So from
/// the moment the user may signal or stop it, the child holds nothing of the caller's. The
/// intermediate child exits at once (double fork), so the caller has no child to reap. A failure
/// in the child is written to `ready_fd` as "ERROR <why>". Returns 0, or an errno value.
int ccached_spawn_as_user(const char *path, char *const argv[], char *const envp[], uid_t uid, gid_t gid,
                          const gid_t *groups, int group_count, const char *const directories[],
                          const char *home, int ready_fd);

/// ``ccached_spawn_as_user`` that also gives the child `state_fd` (when >= 0) as descriptor 4:
/// the session's state file (Docs/state.md), passed as `--state-fd 4`.
int ccached_spawn_as_user_with_state(const char *path, char *const argv[], char *const envp[], uid_t uid, gid_t gid,
                                     const gid_t *groups, int group_count, const char *const directories[],
                                     const char *home, int ready_fd, int state_fd);

/// Starts `path` as a plain child of this process (posix_spawn): default signal mask and
/// dispositions, /dev/null as standard input and output, standard error kept, every other descriptor
/// closed. Returns 0 and the pid, or an errno value (spawn_root.c).
int ccached_spawn_helper(const char *path, char *const argv[], char *const envp[], pid_t *pid);

// ---- libsystemd, loaded on first real use (LazySystemd.c) ----
// Each function is libsystemd's of the same name without the ccached_ prefix, with its return
// values; what libsystemd would answer from the environment or /proc alone (no LISTEN_PID, no
// NOTIFY_SOCKET, no WATCHDOG_USEC, a process in no logind session) is answered without loading it.
// -ENOSYS when libsystemd.so.0 cannot be loaded.

/// A logind monitor (libsystemd's sd_login_monitor).
typedef struct ccached_login_monitor ccached_login_monitor;

/// The first descriptor systemd passes (sd-daemon.h's SD_LISTEN_FDS_START).
#define CCACHED_SD_LISTEN_FDS_START 3

int ccached_sd_listen_fds(int unset_environment);
int ccached_sd_is_socket_unix(int fd, int type, int listening, const char *path, size_t length);
int ccached_sd_notify(int unset_environment, const char *state);
int ccached_sd_watchdog_enabled(int unset_environment, uint64_t *usec);
int ccached_sd_journal_sendv(const struct iovec *iov, int count);
/// sd_pid_get_session: -ENODATA without loading libsystemd when /proc/PID/cgroup names no
/// "session-" scope (logind's sessions are their scope units).
int ccached_sd_pid_get_session(pid_t pid, char **session);
int ccached_sd_session_get_uid(const char *session, uid_t *uid);
int ccached_sd_session_get_state(const char *session, char **state);
int ccached_sd_session_get_class(const char *session, char **class_name);
int ccached_sd_session_get_type(const char *session, char **type);
int ccached_sd_uid_get_display(uid_t uid, char **session);
/// sd_uid_get_sessions: the count, and a NULL-terminated array the caller frees (each string, then
/// the array).
int ccached_sd_uid_get_sessions(uid_t uid, int require_active, char ***sessions);
int ccached_sd_login_monitor_new(const char *category, ccached_login_monitor **monitor);
int ccached_sd_login_monitor_get_fd(ccached_login_monitor *monitor);
int ccached_sd_login_monitor_flush(ccached_login_monitor *monitor);
ccached_login_monitor *ccached_sd_login_monitor_unref(ccached_login_monitor *monitor);

#endif
