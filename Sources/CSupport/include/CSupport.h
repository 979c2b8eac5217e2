#ifndef CCACHED_CSUPPORT_H
#define CCACHED_CSUPPORT_H

#include <spawn.h>
#include <sys/types.h>

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

/// Reads one signal from a signalfd; returns its number, or -1 with errno set.
int ccached_read_signalfd(int fd);

/// Starts a detached thread with a small stack running `body(context)`. Returns 0 or an errno value.
int ccached_spawn_thread(void *(*body)(void *), void *context, size_t stack_size);

/// Starts `path` with `argv` fully detached: double fork, a new session, standard streams on
/// /dev/null, every descriptor closed but `keep_fd` (moved to descriptor 3 when >= 0), so the
/// caller never has a child to reap. Returns 0, or an errno value.
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

/// Adds "close every descriptor from `fd` up" to spawn file actions (glibc's
/// posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not export).
/// Returns 0 or an errno value.
int ccached_spawn_actions_close_from(posix_spawn_file_actions_t *actions, int fd);

#endif
