/*
 * pam_ccached — PAM session module for ccached, the in-memory Kerberos KCM credential cache.
 *
 * open_session:  start the session's daemon, count the session as one using it and read the
 *                session's variables, in one run (ccachectl attach --print-env plain); import the
 *                FILE:/DIR: cache that pam_krb5 or pam_sss left in KRB5CCNAME (ccachectl import
 *                --remove-source); and put the variables into the PAM environment, so the login's
 *                processes use KRB5CCNAME=KCM:.
 * close_session: detach the session (ccachectl detach): the last session attached to a daemon
 *                wipes its caches and stops it; earlier ones leave it serving the others. "keep"
 *                skips this.
 *
 * Everything runs in a child that has dropped to the user for good before it executes
 * ccachectl; nothing is ever executed as root on a user's behalf. The module is plain C linked
 * only against libpam and libc, so sshd, login, su and gdm can load it without the Swift runtime.
 *
 * Options: debug, idle_timeout=N, scope=session|user, remove_imported[=yes|no], keep,
 *          ccachectl=/absolute/path.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

/* Shared with the daemon and the door, compiled into this module (Makefile): Sources/CSupport. */
#include "ccached_private_directory.h"
#include "ccached_privilege.h"

#ifndef CCACHECTL_DEFAULT
#define CCACHECTL_DEFAULT "/usr/local/bin/ccachectl"
#endif

#define PAM_CCACHED_EXPORT __attribute__((visibility("default")))

/* How long one ccachectl run may take before it is killed. */
#define RUN_TIMEOUT_MS 10000
/* What is kept of a child's output: env prints four short lines; stderr is one sentence. */
#define STDOUT_LIMIT (16 * 1024)
#define STDERR_LIMIT (2 * 1024)
#define SAFE_PATH "/usr/local/bin:/usr/bin:/bin"
#define MAX_ENV 16
#define MAX_ARGS 8

struct options {
    bool debug;
    bool keep;
    bool remove_imported;
    bool user_scope;
    unsigned long idle_timeout;
    const char *ccachectl;
};

/* The user whose session this is, and how a child becomes them. */
struct target {
    const char *name;
    uid_t uid;
    gid_t gid;
    char *home;
    gid_t *groups;
    int group_count;
    /* false when the caller already runs as the user (a screensaver, say): nothing to drop. */
    bool switch_identity;
};

/* A NULL-terminated list of NAME=value strings for execve, each owned. */
struct environment {
    char *entries[MAX_ENV + 1];
    int count;
};

/* What one ccachectl run did. */
struct run_result {
    bool ran;          /* the child executed ccachectl and exited on its own */
    int wait_status;   /* valid when ran */
    bool timed_out;
    char problem[256]; /* why it did not run, when !ran */
    char out[STDOUT_LIMIT + 1];
    size_t out_len;
    char err[STDERR_LIMIT + 1];
    size_t err_len;
};

/* What a child reports on the status pipe when it cannot reach execve: a step of the privilege
   drop (enum ccached_drop_step), or this. */
#define STAGE_EXEC 100

struct child_failure {
    int stage;
    int error;
};

/* ---- options ---------------------------------------------------------------------------- */

static bool parse_unsigned(const char *text, unsigned long *value) {
    if (*text == '\0') return false;
    char *end = NULL;
    errno = 0;
    unsigned long parsed = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-' || parsed > UINT32_MAX) return false;
    *value = parsed;
    return true;
}

static void parse_options(pam_handle_t *pamh, int argc, const char **argv, struct options *opts) {
    opts->debug = false;
    opts->keep = false;
    opts->remove_imported = true;
    opts->user_scope = false;
    opts->idle_timeout = 0;
    opts->ccachectl = CCACHECTL_DEFAULT;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "debug") == 0) {
            opts->debug = true;
        } else if (strcmp(arg, "keep") == 0) {
            opts->keep = true;
        } else if (strcmp(arg, "remove_imported") == 0 || strcmp(arg, "remove_imported=yes") == 0) {
            opts->remove_imported = true;
        } else if (strcmp(arg, "remove_imported=no") == 0) {
            opts->remove_imported = false;
        } else if (strcmp(arg, "scope=session") == 0) {
            opts->user_scope = false;
        } else if (strcmp(arg, "scope=user") == 0) {
            opts->user_scope = true;
        } else if (strncmp(arg, "idle_timeout=", 13) == 0) {
            if (!parse_unsigned(arg + 13, &opts->idle_timeout)) {
                pam_syslog(pamh, LOG_ERR, "ignoring option %s: not a number of seconds", arg);
                opts->idle_timeout = 0;
            }
        } else if (strncmp(arg, "ccachectl=", 10) == 0) {
            /* Only the admin's PAM configuration names the program: never the environment. */
            if (arg[10] == '/') {
                opts->ccachectl = arg + 10;
            } else {
                pam_syslog(pamh, LOG_ERR, "ignoring option %s: the path must be absolute", arg);
            }
        } else {
            pam_syslog(pamh, LOG_ERR, "ignoring unknown option %s", arg);
        }
    }
}

/* ---- the user ----------------------------------------------------------------------------- */

static void release_target(struct target *target) {
    free(target->home);
    free(target->groups);
    target->home = NULL;
    target->groups = NULL;
}

/*
 * Looks the user up and works out, in the parent, everything the child needs to become them:
 * the child of a possibly multi-threaded process may only make async-signal-safe calls, so NSS
 * (initgroups) cannot run there. getgrouplist + setgroups is what initgroups does.
 */
static int find_target(pam_handle_t *pamh, struct target *target, char *reason, size_t reason_size) {
    memset(target, 0, sizeof(*target));
    const char *user = NULL;
    int status = pam_get_user(pamh, &user, NULL);
    if (status != PAM_SUCCESS || user == NULL || *user == '\0') {
        snprintf(reason, reason_size, "cannot determine the user: %s", pam_strerror(pamh, status));
        return -1;
    }
    target->name = user;

    struct passwd entry;
    struct passwd *found = NULL;
    size_t size = 4096;
    char *buffer = NULL;
    for (;;) {
        char *larger = realloc(buffer, size);
        if (larger == NULL) {
            free(buffer);
            snprintf(reason, reason_size, "out of memory");
            return -1;
        }
        buffer = larger;
        int error = getpwnam_r(user, &entry, buffer, size, &found);
        if (error == ERANGE && size < (1u << 20)) {
            size *= 2;
            continue;
        }
        if (found == NULL) {
            free(buffer);
            snprintf(reason, reason_size, "no such user in the password database%s%s", error ? ": " : "",
                     error ? strerror(error) : "");
            return -1;
        }
        break;
    }
    target->uid = entry.pw_uid;
    target->gid = entry.pw_gid;
    target->home = strdup(entry.pw_dir != NULL && entry.pw_dir[0] == '/' ? entry.pw_dir : "/");
    free(buffer);
    if (target->home == NULL) {
        snprintf(reason, reason_size, "out of memory");
        return -1;
    }

    if (geteuid() != 0) {
        if (getuid() == target->uid && geteuid() == target->uid) {
            target->switch_identity = false;
            return 0;
        }
        snprintf(reason, reason_size, "the module runs as uid %u, not root, and cannot switch to uid %u",
                 (unsigned)geteuid(), (unsigned)target->uid);
        release_target(target);
        return -1;
    }
    target->switch_identity = true;

    int count = 32;
    for (int attempt = 0; attempt < 8; attempt++) {
        gid_t *groups = realloc(target->groups, (size_t)count * sizeof(gid_t));
        if (groups == NULL) break;
        target->groups = groups;
        int wanted = count;
        if (getgrouplist(user, target->gid, target->groups, &wanted) >= 0) {
            target->group_count = wanted;
            return 0;
        }
        count = wanted > count ? wanted : count * 2;
    }
    snprintf(reason, reason_size, "cannot read the user's groups");
    release_target(target);
    return -1;
}

/* ---- the child's environment ------------------------------------------------------------ */

static void release_environment(struct environment *env) {
    for (int i = 0; i < env->count; i++) free(env->entries[i]);
    env->count = 0;
    env->entries[0] = NULL;
}

static bool add_variable(struct environment *env, const char *name, const char *value) {
    if (env->count >= MAX_ENV) return false;
    char *entry = NULL;
    if (asprintf(&entry, "%s=%s", name, value) < 0) return false;
    env->entries[env->count++] = entry;
    env->entries[env->count] = NULL;
    return true;
}

/*
 * A variable from the PAM environment (what earlier modules such as pam_systemd and pam_krb5
 * set), else from the process environment — but never from an environment the invoking user
 * controls: secure_getenv returns nothing in a set-user-ID program such as su or sudo.
 */
static const char *session_variable(pam_handle_t *pamh, const char *name) {
    const char *value = pam_getenv(pamh, name);
    if (value != NULL && *value != '\0') return value;
    value = secure_getenv(name);
    if (value != NULL && *value != '\0') return value;
    return NULL;
}

/* Module data: the daemon's socket this session attached to, when the environment does not name it. */
#define DAEMON_SOCKET_DATA "pam_ccached_daemon_socket"
/* The comment line `ccachectl attach --print-env plain` prints for it when ccached-door serves the host. */
#define DAEMON_SOCKET_LINE "#CCACHED_SOCKET="

/*
 * The clean environment every ccachectl run gets: who the user is, a fixed PATH, the session's
 * runtime directory and id, the admin's krb5 configuration, and which daemon (CCACHED_SESSION,
 * or CCACHED_SOCKET once open_session has published it).
 */
static int build_environment(pam_handle_t *pamh, const struct options *opts, const struct target *target,
                             bool with_socket, struct environment *env) {
    env->count = 0;
    env->entries[0] = NULL;
    bool ok = add_variable(env, "HOME", target->home) && add_variable(env, "USER", target->name) &&
              add_variable(env, "LOGNAME", target->name) && add_variable(env, "PATH", SAFE_PATH);

    const char *runtime = session_variable(pamh, "XDG_RUNTIME_DIR");
    if (ok && runtime != NULL) {
        /* A runtime directory that is not the user's (su carrying the caller's) would be refused. */
        struct stat info;
        if (runtime[0] == '/' && lstat(runtime, &info) == 0 && S_ISDIR(info.st_mode) && info.st_uid == target->uid) {
            ok = add_variable(env, "XDG_RUNTIME_DIR", runtime);
        } else if (opts->debug) {
            pam_syslog(pamh, LOG_DEBUG, "not passing XDG_RUNTIME_DIR=%s: not a directory of user %s", runtime,
                       target->name);
        }
    }
    const char *session_id = session_variable(pamh, "XDG_SESSION_ID");
    if (ok && session_id != NULL) ok = add_variable(env, "XDG_SESSION_ID", session_id);
    const char *krb5_config = session_variable(pamh, "KRB5_CONFIG");
    if (ok && krb5_config != NULL) ok = add_variable(env, "KRB5_CONFIG", krb5_config);

    if (ok && opts->user_scope) {
        ok = add_variable(env, "CCACHED_SESSION", "user");
    } else if (ok) {
        /* pam_systemd's session id; without it ccachectl asks logind or the audit session itself. */
        const char *logind_session = pam_getenv(pamh, "XDG_SESSION_ID");
        if (logind_session != NULL && *logind_session != '\0') ok = add_variable(env, "CCACHED_SESSION", logind_session);
    }
    if (ok && with_socket) {
        const char *socket = pam_getenv(pamh, "CCACHED_SOCKET");
        const void *remembered = NULL;
        if ((socket == NULL || *socket != '/') && pam_get_data(pamh, DAEMON_SOCKET_DATA, &remembered) == PAM_SUCCESS)
            socket = remembered;
        if (socket != NULL && *socket == '/') ok = add_variable(env, "CCACHED_SOCKET", socket);
    }
    if (!ok) {
        release_environment(env);
        return -1;
    }
    return 0;
}

/* ---- running ccachectl as the user -------------------------------------------------------- */

static long long now_ms(void) {
    struct timespec clock;
    clock_gettime(CLOCK_MONOTONIC, &clock);
    return (long long)clock.tv_sec * 1000 + clock.tv_nsec / 1000000;
}

/* Moves a descriptor above the standard three (a daemon may run with them closed). */
static int above_standard(int fd) {
    if (fd < 0 || fd > 2) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

static int make_pipe(int ends[2]) {
    if (pipe2(ends, O_CLOEXEC) != 0) return -1;
    ends[0] = above_standard(ends[0]);
    ends[1] = above_standard(ends[1]);
    if (ends[0] < 0 || ends[1] < 0) {
        if (ends[0] >= 0) close(ends[0]);
        if (ends[1] >= 0) close(ends[1]);
        return -1;
    }
    return 0;
}

static void close_pipe(int ends[2]) {
    for (int i = 0; i < 2; i++) {
        if (ends[i] >= 0) close(ends[i]);
        ends[i] = -1;
    }
}

static void child_fail(int status_fd, int stage) {
    struct child_failure failure = {stage, errno};
    ssize_t ignored = write(status_fd, &failure, sizeof(failure));
    (void)ignored;
    _exit(127);
}

/*
 * The child, from fork to execve: async-signal-safe calls only. Standard streams first, then
 * every other descriptor closed but the status pipe (close-on-exec), then the identity change,
 * checked, then the program.
 */
static void run_child(const struct target *target, const char *path, char *const argv[], char *const envp[],
                      int null_fd, int out_fd, int err_fd, int status_fd) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction defaults;
    memset(&defaults, 0, sizeof(defaults));
    defaults.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &defaults, NULL);
    }

    if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) child_fail(status_fd, STAGE_EXEC);
    if (status_fd != 3) {
        if (dup3(status_fd, 3, O_CLOEXEC) < 0) _exit(127);
        status_fd = 3;
    }
    if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
        for (int fd = 4; fd < 65536; fd++) close(fd);
    }

    /* The drop, checked, and for good (privilege.c); a caller already running as the user is only
     * checked. */
    int step = target->switch_identity
                   ? ccached_drop_privileges(target->uid, target->gid, target->groups, target->group_count)
                   : ccached_check_dropped(target->uid, target->gid);
    if (step != CCACHED_DROP_DONE) child_fail(status_fd, step);

    umask(077);
    if (chdir(target->home) != 0 && chdir("/") != 0) child_fail(status_fd, STAGE_EXEC);
    execve(path, argv, envp);
    child_fail(status_fd, STAGE_EXEC);
}

/* Reads what is there into buffer (up to limit; the rest is drained and dropped). */
static bool drain(int fd, char *buffer, size_t *length, size_t limit) {
    char scratch[4096];
    for (;;) {
        ssize_t n = read(fd, scratch, sizeof(scratch));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n <= 0) return false; /* end of file, or an error: done with this stream */
        size_t room = limit - *length;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(buffer + *length, scratch, take);
        *length += take;
    }
}

/*
 * Runs `path argv` as the target user with `envp`, stdin on /dev/null, stdout and stderr captured
 * (bounded), for at most RUN_TIMEOUT_MS; a child still running then is killed. Always reaps it.
 */
static void run_as_user(const struct target *target, const char *path, char *const argv[], char *const envp[],
                        struct run_result *result) {
    memset(result, 0, offsetof(struct run_result, out));
    result->out_len = 0;
    result->err_len = 0;
    result->out[0] = '\0';
    result->err[0] = '\0';

    int out[2] = {-1, -1}, err[2] = {-1, -1}, status[2] = {-1, -1};
    int null_fd = above_standard(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (null_fd < 0 || make_pipe(out) != 0 || make_pipe(err) != 0 || make_pipe(status) != 0) {
        snprintf(result->problem, sizeof(result->problem), "cannot create pipes: %s", strerror(errno));
        if (null_fd >= 0) close(null_fd);
        close_pipe(out);
        close_pipe(err);
        close_pipe(status);
        return;
    }

    /* The application may ignore or catch SIGCHLD; we must be able to wait for our own child. */
    struct sigaction dfl, saved;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, &saved);

    pid_t pid = fork();
    if (pid == 0) run_child(target, path, argv, envp, null_fd, out[1], err[1], status[1]);
    int fork_error = errno;
    close(null_fd);
    close(out[1]);
    close(err[1]);
    close(status[1]);
    out[1] = err[1] = status[1] = -1;
    if (pid < 0) {
        snprintf(result->problem, sizeof(result->problem), "cannot fork: %s", strerror(fork_error));
        close_pipe(out);
        close_pipe(err);
        close_pipe(status);
        sigaction(SIGCHLD, &saved, NULL);
        return;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    fcntl(status[0], F_SETFL, O_NONBLOCK);
    /* Readable the moment the child exits (Linux 5.3+): its pipes close a moment before it can be
     * reaped, and a login waits for every run. -1 without it: then a millisecond's sleep at a time. */
    int exited = (int)syscall(SYS_pidfd_open, pid, 0U);

    struct child_failure failure = {0, 0};
    size_t failure_len = 0;
    bool out_open = true, err_open = true, status_open = true, reaped = false;
    int wait_status = 0;
    long long deadline = now_ms() + RUN_TIMEOUT_MS;
    for (;;) {
        /*
         * Done when the child has exited and its pipes are drained, or when every pipe is closed
         * (a grandchild such as the daemon never holds them: ccached runs with /dev/null).
         */
        if (!reaped) {
            pid_t got = waitpid(pid, &wait_status, WNOHANG);
            if (got == pid || (got < 0 && errno == ECHILD)) reaped = true;
        }
        long long left = deadline - now_ms();
        if (left <= 0) break;
        if (reaped && !out_open && !err_open && !status_open) break;
        struct pollfd fds[3];
        int count = 0;
        if (out_open) fds[count++] = (struct pollfd){out[0], POLLIN, 0};
        if (err_open) fds[count++] = (struct pollfd){err[0], POLLIN, 0};
        if (status_open) fds[count++] = (struct pollfd){status[0], POLLIN, 0};
        if (count == 0) {
            /* Streams closed but the child has not exited yet: wait for its exit, not for a tick. */
            if (exited >= 0) {
                struct pollfd exit_fd = {exited, POLLIN, 0};
                poll(&exit_fd, 1, (int)(left < 50 ? left : 50));
            } else {
                struct timespec pause = {0, 1000000};
                nanosleep(&pause, NULL);
            }
            continue;
        }
        int ready = poll(fds, (nfds_t)count, reaped ? 0 : (int)(left < 50 ? left : 50));
        if (ready < 0 && errno != EINTR) break;
        if (out_open) out_open = drain(out[0], result->out, &result->out_len, STDOUT_LIMIT);
        if (err_open) err_open = drain(err[0], result->err, &result->err_len, STDERR_LIMIT);
        if (status_open) {
            status_open = drain(status[0], (char *)&failure, &failure_len, sizeof(failure));
        }
        if (reaped && ready == 0) break; /* exited, and nothing more is coming right now */
    }
    if (!reaped) {
        result->timed_out = true;
        kill(pid, SIGKILL);
        while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
        }
    }
    if (exited >= 0) close(exited);
    sigaction(SIGCHLD, &saved, NULL);
    close_pipe(out);
    close_pipe(err);
    close_pipe(status);
    result->out[result->out_len] = '\0';
    result->err[result->err_len] = '\0';

    if (failure_len == sizeof(failure)) {
        if (failure.stage == STAGE_EXEC) {
            snprintf(result->problem, sizeof(result->problem), "cannot run %s: %s", path, strerror(failure.error));
        } else {
            snprintf(result->problem, sizeof(result->problem), "cannot become uid %u gid %u: %s: %s",
                     (unsigned)target->uid, (unsigned)target->gid, ccached_drop_step_text(failure.stage),
                     strerror(failure.error));
        }
        return;
    }
    if (result->timed_out) {
        snprintf(result->problem, sizeof(result->problem), "%s did not finish within %d s and was killed", path,
                 RUN_TIMEOUT_MS / 1000);
        return;
    }
    result->ran = true;
    result->wait_status = wait_status;
}

/* The exit status of a run that exited normally, else -1. */
static int exit_code(const struct run_result *result) {
    if (!result->ran || !WIFEXITED(result->wait_status)) return -1;
    return WEXITSTATUS(result->wait_status);
}

/* One line for syslog saying why a run failed: the child's stderr, flattened, or the reason. */
static const char *failure_text(struct run_result *result) {
    if (!result->ran) return result->problem;
    if (WIFSIGNALED(result->wait_status)) {
        snprintf(result->problem, sizeof(result->problem), "killed by signal %d", WTERMSIG(result->wait_status));
        return result->problem;
    }
    /* Flatten stderr into one line: newlines become " / ", other control characters spaces. */
    char *text = result->err;
    size_t length = result->err_len;
    while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == ' ')) length--;
    text[length] = '\0';
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            text[i] = '/';
        } else if (c < 0x20 || c == 0x7f) {
            text[i] = ' ';
        }
    }
    if (length == 0) {
        snprintf(result->problem, sizeof(result->problem), "exit status %d, no message", exit_code(result));
        return result->problem;
    }
    return text;
}

/* Runs ccachectl with up to MAX_ARGS - 2 arguments. */
static void ccachectl(const struct options *opts, const struct target *target, const struct environment *env,
                      struct run_result *result, const char *const *arguments) {
    char *argv[MAX_ARGS + 1];
    int count = 0;
    argv[count++] = (char *)"ccachectl";
    for (int i = 0; arguments[i] != NULL && count < MAX_ARGS; i++) argv[count++] = (char *)arguments[i];
    argv[count] = NULL;
    run_as_user(target, opts->ccachectl, argv, env->entries, result);
}

static void debug_run(pam_handle_t *pamh, const struct options *opts, const char *what, const struct target *target,
                      struct run_result *result) {
    if (!opts->debug) return;
    if (result->ran && WIFEXITED(result->wait_status)) {
        pam_syslog(pamh, LOG_DEBUG, "ccachectl %s for user %s: exit %d", what, target->name, exit_code(result));
    } else {
        pam_syslog(pamh, LOG_DEBUG, "ccachectl %s for user %s: %s", what, target->name, failure_text(result));
    }
}

/* ---- importing what pam_krb5 / pam_sss left on disk --------------------------------------- */

/*
 * The cache to import and the path that must exist for it, or NULL: a FILE: cache or a bare
 * path, or a DIR: collection (DIR:dir, or DIR::dir/tkt for one cache in it). KCM:, KEYRING:,
 * MEMORY: and others are left alone.
 */
static char *importable_cache(const char *name, const char **path) {
    if (name == NULL) return NULL;
    if (name[0] == '/') {
        *path = name;
        char *full = NULL;
        return asprintf(&full, "FILE:%s", name) < 0 ? NULL : full;
    }
    if (strncmp(name, "FILE:", 5) == 0 && name[5] == '/') {
        *path = name + 5;
        return strdup(name);
    }
    if (strncmp(name, "DIR:", 4) == 0) {
        const char *rest = name + 4;
        if (*rest == ':') rest++;
        if (*rest != '/') return NULL;
        *path = rest;
        return strdup(name);
    }
    return NULL;
}

static int import_cache(pam_handle_t *pamh, const struct options *opts, const struct target *target,
                        const struct environment *env, struct run_result *result) {
    const char *name = session_variable(pamh, "KRB5CCNAME");
    const char *path = NULL;
    char *cache = importable_cache(name, &path);
    if (cache == NULL) {
        if (opts->debug && name != NULL) {
            pam_syslog(pamh, LOG_DEBUG, "KRB5CCNAME=%s is not a FILE: or DIR: cache; nothing to import", name);
        }
        return PAM_SUCCESS;
    }
    /* Only the user's own cache: su and sudo may carry the caller's KRB5CCNAME. */
    struct stat info;
    const char *skip = NULL;
    if (lstat(path, &info) != 0) {
        skip = errno == ENOENT ? "it does not exist" : strerror(errno);
    } else if (info.st_uid != target->uid) {
        skip = "it belongs to another user";
    }
    if (skip != NULL) {
        if (opts->debug) pam_syslog(pamh, LOG_DEBUG, "not importing %s for user %s: %s", cache, target->name, skip);
        free(cache);
        return PAM_SUCCESS;
    }
    const char *with_removal[] = {"import", cache, "--remove-source", NULL};
    const char *without_removal[] = {"import", cache, NULL};
    ccachectl(opts, target, env, result, opts->remove_imported ? with_removal : without_removal);
    debug_run(pamh, opts, "import", target, result);
    int status = PAM_SUCCESS;
    if (exit_code(result) != 0) {
        pam_syslog(pamh, LOG_ERR, "cannot import %s for user %s: %s", cache, target->name, failure_text(result));
        status = PAM_SESSION_ERR;
    } else if (opts->debug) {
        pam_syslog(pamh, LOG_DEBUG, "imported %s for user %s%s", cache, target->name,
                   opts->remove_imported ? " and removed it" : "");
    }
    free(cache);
    return status;
}

/* ---- publishing the session's environment -------------------------------------------------- */

static bool is_published_name(const char *line, size_t length) {
    static const char *const names[] = {"KRB5CCNAME", "KRB5_CONFIG", "HEIM_IPC_DIR", "CCACHED_SOCKET"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == length && strncmp(line, names[i], length) == 0) return true;
    }
    return false;
}

static void free_data(pam_handle_t *pamh, void *data, int error_status) {
    (void)pamh;
    (void)error_status;
    free(data);
}

/*
 * pam_putenv every NAME=value line of `ccachectl attach --print-env plain` that names a ccached variable.
 * With ccached-door serving the host, env names no socket (KRB5CCNAME=KCM: reaches the daemon through
 * the door); its comment line #CCACHED_SOCKET= says which daemon the session attached to, kept here
 * with pam_set_data (never exported) so that close_session detaches from that very daemon even when
 * the routing rule would answer otherwise by then.
 */
static int publish_environment(pam_handle_t *pamh, const struct options *opts, const struct target *target,
                               char *text) {
    int published = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        size_t marker = strlen(DAEMON_SOCKET_LINE);
        if (strncmp(line, DAEMON_SOCKET_LINE, marker) == 0 && line[marker] == '/') {
            char *socket = strdup(line + marker);
            if (socket == NULL || pam_set_data(pamh, DAEMON_SOCKET_DATA, socket, free_data) != PAM_SUCCESS) {
                free(socket);
                pam_syslog(pamh, LOG_ERR, "cannot remember the daemon socket of user %s", target->name);
                return -1;
            }
            if (opts->debug) pam_syslog(pamh, LOG_DEBUG, "the session of user %s uses %s", target->name, line + marker);
            continue;
        }
        char *equals = strchr(line, '=');
        if (equals == NULL || !is_published_name(line, (size_t)(equals - line))) {
            if (opts->debug) pam_syslog(pamh, LOG_DEBUG, "ignoring a line from ccachectl attach: %s", line);
            continue;
        }
        int status = pam_putenv(pamh, line);
        if (status != PAM_SUCCESS) {
            pam_syslog(pamh, LOG_ERR, "cannot set %s for user %s: %s", line, target->name, pam_strerror(pamh, status));
            return -1;
        }
        if (opts->debug) pam_syslog(pamh, LOG_DEBUG, "set %s for user %s", line, target->name);
        published++;
    }
    return published;
}

/* ---- the runtime base when there is no /run/user/UID ------------------------------------- */

/*
 * Without pam_systemd (cron, su, ssh without logind) there is no /run/user/UID, and any name a user
 * could pick in a world-writable directory can be taken first by another user (issue 12, item 2:
 * /tmp/ccached-UID squatted locked the victim out). So root makes /run/ccached (root, 0755) and
 * /run/ccached/UID (the user's, 0700) here, before ccachectl runs as the user; ccachectl uses it and
 * never creates it. The rule is the door's too (ccached_ensure_root_managed_base): no link is
 * followed, and anything already there that is not exactly what it should be is refused.
 * Returns 0, or -1 with the reason in `reason`.
 */
static int ensure_runtime_base(const struct target *target, char *reason, size_t reason_size) {
    char run_user[64];
    snprintf(run_user, sizeof(run_user), "/run/user/%u", (unsigned)target->uid);
    struct stat info;
    /* logind's, which ccachectl checks and uses: the order of RuntimeBase (SessionRuntime), which
     * takes /run/user/UID only when it is the user's directory, else /run/ccached/UID. */
    if (lstat(run_user, &info) == 0 && S_ISDIR(info.st_mode) && info.st_uid == target->uid) return 0;
    int run = open("/run", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (run < 0) {
        snprintf(reason, reason_size, "cannot open /run: %s", strerror(errno));
        return -1;
    }
    struct ccached_directory_failure failure;
    int own = ccached_ensure_root_managed_base(run, target->uid, target->gid, &failure);
    int code = errno;
    close(run);
    if (own >= 0) {
        close(own);
        return 0;
    }
    char shown[48];
    static const char *const levels[] = {"/run", "/run/ccached", NULL};
    if (failure.level < 2) {
        snprintf(shown, sizeof(shown), "%s", levels[failure.level]);
    } else {
        snprintf(shown, sizeof(shown), "/run/ccached/%u", (unsigned)target->uid);
    }
    if (code == EPERM && failure.level == 0) {
        snprintf(reason, reason_size, "/run is not root's or is writable by others: refusing to use it");
    } else if (code == EPERM && failure.owner != (uid_t)-1) {
        bool own = failure.level == 2;
        snprintf(reason, reason_size,
                 "%s exists but is owned by uid %u with mode %o, not uid %u with mode %o: refusing it (remove it)",
                 shown, (unsigned)failure.owner, (unsigned)failure.mode, own ? (unsigned)target->uid : 0U,
                 own ? 0700U : 0755U);
    } else {
        snprintf(reason, reason_size, "cannot make %s: %s%s", shown, strerror(code),
                 code == ELOOP || code == ENOTDIR ? " (it is not a directory; remove it)" : "");
    }
    return -1;
}

/* ---- the entry points ------------------------------------------------------------------- */

/*
 * What both entry points need before they run anything: the user, the clean environment and room
 * for a run's result. On failure logs "cannot <what> the daemon for user ...: <why>", releases what
 * it made and returns -1.
 */
static int prepare_session(pam_handle_t *pamh, const struct options *opts, const char *what, bool with_socket,
                           struct target *target, struct environment *env, struct run_result **result) {
    char reason[256];
    *result = NULL;
    if (find_target(pamh, target, reason, sizeof(reason)) != 0) {
        pam_syslog(pamh, LOG_ERR, "cannot %s the daemon for user %s: %s", what,
                   target->name ? target->name : "(unknown)", reason);
        return -1;
    }
    *result = malloc(sizeof(**result));
    if (*result == NULL || build_environment(pamh, opts, target, with_socket, env) != 0) {
        pam_syslog(pamh, LOG_ERR, "cannot %s the daemon for user %s: out of memory", what, target->name);
        free(*result);
        *result = NULL;
        release_target(target);
        return -1;
    }
    return 0;
}

PAM_CCACHED_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)flags;
    struct options opts;
    parse_options(pamh, argc, argv, &opts);
    struct target target;
    struct environment env;
    struct run_result *result;
    if (prepare_session(pamh, &opts, "start", false, &target, &env, &result) != 0) return PAM_SESSION_ERR;

    char reason[256];
    int status = PAM_SUCCESS;
    char *variables = NULL;
    /* As root only (an unprivileged caller cannot, and ccachectl then says what to do). A failure is
     * logged, not fatal: an XDG_RUNTIME_DIR may still serve, and ccachectl attach has the last word. */
    if (target.switch_identity && ensure_runtime_base(&target, reason, sizeof(reason)) != 0) {
        pam_syslog(pamh, LOG_ERR, "cannot prepare the runtime directory of user %s: %s", target.name, reason);
    }
    /* One run: start the daemon if none runs (never idle-exiting by default: the stock tools cannot
     * start one), count this session as one using it, and print the session's variables. */
    char idle[24];
    snprintf(idle, sizeof(idle), "%lu", opts.idle_timeout);
    const char *attach[] = {"attach", "--idle-timeout", idle, "--print-env", "plain", NULL};
    ccachectl(&opts, &target, &env, result, attach);
    debug_run(pamh, &opts, "attach", &target, result);
    if (exit_code(result) != 0) {
        pam_syslog(pamh, LOG_ERR, "cannot start or attach the daemon for user %s: %s", target.name,
                   failure_text(result));
        status = PAM_SESSION_ERR;
        goto done;
    }
    /* Kept apart: the import below runs ccachectl again into the same buffer. */
    variables = strdup(result->out);
    if (variables == NULL) {
        pam_syslog(pamh, LOG_ERR, "cannot read the session environment for user %s: out of memory", target.name);
        status = PAM_SESSION_ERR;
        goto done;
    }

    /* A failed import still leaves a working session: publish the environment either way. */
    status = import_cache(pamh, &opts, &target, &env, result);

    int published = publish_environment(pamh, &opts, &target, variables);
    if (published <= 0) {
        if (published == 0) {
            pam_syslog(pamh, LOG_ERR, "cannot read the session environment for user %s: ccachectl attach printed none",
                       target.name);
        }
        status = PAM_SESSION_ERR;
    }

done:
    free(variables);
    free(result);
    release_environment(&env);
    release_target(&target);
    return status;
}

PAM_CCACHED_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)flags;
    struct options opts;
    parse_options(pamh, argc, argv, &opts);
    if (opts.keep) {
        if (opts.debug) pam_syslog(pamh, LOG_DEBUG, "keep: leaving the session's daemon running");
        return PAM_SUCCESS;
    }
    struct target target;
    struct environment env;
    struct run_result *result;
    if (prepare_session(pamh, &opts, "stop", true, &target, &env, &result) != 0) return PAM_SESSION_ERR;

    /* Detach: the daemon wipes every cache and exits when this was the last session attached to it,
     * and keeps serving the others otherwise. Exit status 1 is "no daemon runs": nothing to do. */
    int status = PAM_SUCCESS;
    const char *detach[] = {"detach", NULL};
    ccachectl(&opts, &target, &env, result, detach);
    debug_run(pamh, &opts, "detach", &target, result);
    int code = exit_code(result);
    if (code != 0 && code != 1) {
        pam_syslog(pamh, LOG_ERR, "cannot detach the session of user %s from its daemon: %s", target.name,
                   failure_text(result));
        status = PAM_SESSION_ERR;
    }

    free(result);
    release_environment(&env);
    release_target(&target);
    return status;
}
