// libsystemd, loaded the first time the daemon really needs it.
//
// Linked at start-up, libsystemd.so.0 and the six libraries it pulls in (libcap, libgcrypt,
// libgpg-error, liblzma, libzstd, liblz4) cost ccached about a millisecond of dynamic loading
// and symbol binding (-z now) on every start: the largest single item of its cold start (issue
// 14, Docs/performance.md "Cold start"). Most daemons never need it: without systemd there is no
// LISTEN_FDS, NOTIFY_SOCKET or WATCHDOG_USEC, and a process outside a logind session has no
// session to look up. So each wrapper below first answers what libsystemd itself would answer
// from the environment or /proc, and only otherwise loads the library (once, RTLD_NOW) and calls
// the real function. When it cannot be loaded, a wrapper returns -ENOSYS, as a libsystemd
// function returns a negative errno.

#include "CSupport.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    int (*listen_fds)(int);
    int (*is_socket_unix)(int, int, int, const char *, size_t);
    int (*notify)(int, const char *);
    int (*watchdog_enabled)(int, uint64_t *);
    int (*journal_sendv)(const struct iovec *, int);
    int (*pid_get_session)(pid_t, char **);
    int (*session_get_uid)(const char *, uid_t *);
    int (*session_get_state)(const char *, char **);
    int (*session_get_class)(const char *, char **);
    int (*session_get_type)(const char *, char **);
    int (*uid_get_display)(uid_t, char **);
    int (*uid_get_sessions)(uid_t, int, char ***);
    int (*login_monitor_new)(const char *, ccached_login_monitor **);
    int (*login_monitor_get_fd)(ccached_login_monitor *);
    int (*login_monitor_flush)(ccached_login_monitor *);
    ccached_login_monitor *(*login_monitor_unref)(ccached_login_monitor *);
} systemd;

static pthread_once_t systemd_once = PTHREAD_ONCE_INIT;
static int systemd_loaded;

static void load_systemd(void) {
    // The soname Debian's libsystemd0 installs, from the default library path only (no RPATH).
    void *library = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return;
    // Every symbol or none: a half-resolved table would call through NULL.
#define RESOLVE(field, name)                              \
    do {                                                  \
        *(void **)(&systemd.field) = dlsym(library, name); \
        if (systemd.field == NULL) return;                \
    } while (0)
    RESOLVE(listen_fds, "sd_listen_fds");
    RESOLVE(is_socket_unix, "sd_is_socket_unix");
    RESOLVE(notify, "sd_notify");
    RESOLVE(watchdog_enabled, "sd_watchdog_enabled");
    RESOLVE(journal_sendv, "sd_journal_sendv");
    RESOLVE(pid_get_session, "sd_pid_get_session");
    RESOLVE(session_get_uid, "sd_session_get_uid");
    RESOLVE(session_get_state, "sd_session_get_state");
    RESOLVE(session_get_class, "sd_session_get_class");
    RESOLVE(session_get_type, "sd_session_get_type");
    RESOLVE(uid_get_display, "sd_uid_get_display");
    RESOLVE(uid_get_sessions, "sd_uid_get_sessions");
    RESOLVE(login_monitor_new, "sd_login_monitor_new");
    RESOLVE(login_monitor_get_fd, "sd_login_monitor_get_fd");
    RESOLVE(login_monitor_flush, "sd_login_monitor_flush");
    RESOLVE(login_monitor_unref, "sd_login_monitor_unref");
#undef RESOLVE
    systemd_loaded = 1;
}

static int systemd_available(void) {
    pthread_once(&systemd_once, load_systemd);
    return systemd_loaded;
}

int ccached_sd_listen_fds(int unset_environment) {
    // sd_listen_fds returns 0 when LISTEN_PID is not set (systemd passed nothing).
    if (getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL) {
        if (unset_environment) unsetenv("LISTEN_FDNAMES");
        return 0;
    }
    if (!systemd_available()) return -ENOSYS;
    return systemd.listen_fds(unset_environment);
}

int ccached_sd_is_socket_unix(int fd, int type, int listening, const char *path, size_t length) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.is_socket_unix(fd, type, listening, path, length);
}

int ccached_sd_notify(int unset_environment, const char *state) {
    // sd_notify returns 0 ("not notified") when NOTIFY_SOCKET is not set.
    if (getenv("NOTIFY_SOCKET") == NULL) return 0;
    if (!systemd_available()) return -ENOSYS;
    return systemd.notify(unset_environment, state);
}

int ccached_sd_watchdog_enabled(int unset_environment, uint64_t *usec) {
    // sd_watchdog_enabled returns 0 (no watchdog) when WATCHDOG_USEC is not set.
    if (getenv("WATCHDOG_USEC") == NULL) {
        if (unset_environment) unsetenv("WATCHDOG_PID");
        return 0;
    }
    if (!systemd_available()) return -ENOSYS;
    return systemd.watchdog_enabled(unset_environment, usec);
}

int ccached_sd_journal_sendv(const struct iovec *iov, int count) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.journal_sendv(iov, count);
}

// 1 when the cgroup file of `pid` (0: this process) was read and names no logind session scope,
// 0 when it names one or could not be read. logind puts a session's processes in its scope unit
// "session-<id>.scope", and sd_pid_get_session derives the session from that unit name alone
// (cg_path_get_session: the unit must start with "session-"), so a cgroup path without
// "/session-" has no session. Reading fails only for an unusual /proc: then libsystemd decides.
static int cgroup_has_no_session(pid_t pid) {
    char path[64];
    if (pid == 0) {
        snprintf(path, sizeof(path), "/proc/self/cgroup");
    } else {
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    // A few hundred bytes in practice (one line per hierarchy); bounded, and a file that does not
    // fit is left to libsystemd rather than judged from its beginning.
    char text[16384];
    size_t length = 0;
    for (;;) {
        ssize_t got = read(fd, text + length, sizeof(text) - 1 - length);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            close(fd);
            return 0;
        }
        if (got == 0) break;
        length += (size_t)got;
        if (length == sizeof(text) - 1) {
            close(fd);
            return 0;
        }
    }
    close(fd);
    if (length == 0) return 0;
    text[length] = '\0';
    return strstr(text, "/session-") == NULL;
}

int ccached_sd_pid_get_session(pid_t pid, char **session) {
    if (pid < 0 || session == NULL) return -EINVAL;
    // What sd_pid_get_session returns for a process in no session.
    if (cgroup_has_no_session(pid)) return -ENODATA;
    if (!systemd_available()) return -ENOSYS;
    return systemd.pid_get_session(pid, session);
}

int ccached_sd_session_get_uid(const char *session, uid_t *uid) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.session_get_uid(session, uid);
}

int ccached_sd_session_get_state(const char *session, char **state) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.session_get_state(session, state);
}

int ccached_sd_session_get_class(const char *session, char **class_name) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.session_get_class(session, class_name);
}

int ccached_sd_session_get_type(const char *session, char **type) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.session_get_type(session, type);
}

int ccached_sd_uid_get_display(uid_t uid, char **session) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.uid_get_display(uid, session);
}

int ccached_sd_uid_get_sessions(uid_t uid, int require_active, char ***sessions) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.uid_get_sessions(uid, require_active, sessions);
}

int ccached_sd_login_monitor_new(const char *category, ccached_login_monitor **monitor) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.login_monitor_new(category, monitor);
}

int ccached_sd_login_monitor_get_fd(ccached_login_monitor *monitor) {
    // Only a monitor from ccached_sd_login_monitor_new exists, so the library is loaded.
    if (!systemd_available()) return -ENOSYS;
    return systemd.login_monitor_get_fd(monitor);
}

int ccached_sd_login_monitor_flush(ccached_login_monitor *monitor) {
    if (!systemd_available()) return -ENOSYS;
    return systemd.login_monitor_flush(monitor);
}

ccached_login_monitor *ccached_sd_login_monitor_unref(ccached_login_monitor *monitor) {
    if (monitor == NULL || !systemd_available()) return NULL;
    return systemd.login_monitor_unref(monitor);
}
