// Spawning detached children (double fork): ccachectl's daemon (ccached_spawn_detached) and the
// door's per-user daemon (ccached_spawn_as_user) share every child-side step here; only the
// privilege drop (privilege.c) and the user's directories are the door's own.

#include "CSupport.h"
#include "ccached_privilege.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The descriptor a spawned child keeps (its ready pipe), whatever number the parent gave it. */
#define READY_FD 3
/* Where a door-started daemon finds its state file (`--state-fd 4`, Docs/state.md). */
#define STATE_FD 4

/* Blocks every signal in the calling thread, so that a child forked now starts with all of them
   blocked; `saved` gets the thread's mask back afterwards. */
static void block_all_signals(sigset_t *saved) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, saved);
}

/* Writes "ERROR <what>: <errno name>" to the ready descriptor (when there is one) and exits;
   async-signal-safe. */
static void child_fail(int ready, const char *what, int code) {
    if (ready >= 0) {
        const char *prefix = "ERROR ";
        /* strerror may translate (and allocate); the errno name is a constant string. */
        const char *reason = strerrorname_np(code);
        if (!reason) reason = "unknown error";
        (void)!write(ready, prefix, strlen(prefix));
        (void)!write(ready, what, strlen(what));
        (void)!write(ready, ": ", 2);
        (void)!write(ready, reason, strlen(reason));
        (void)!write(ready, "\n", 1);
    }
    _exit(127);
}

/* In a forked child, first thing: keeps only `keep` (moved to descriptor 3; none when < 0), when
   `with_state`, descriptor 4 (already in place: child_detach put it there), and the standard
   streams, which are put on /dev/null. Everything else the parent had open (listeners, logs,
   other clients, other users' connections) is closed before the child changes any id, so a child
   its user may signal or stop never holds any of it. Async-signal-safe. Returns 0, or -1 with
   errno set. */
static int child_keep_only(int keep, bool with_state) {
    if (keep >= 0 && keep != READY_FD) {
        if (dup2(keep, READY_FD) < 0) return -1;
    } else if (keep == READY_FD) {
        if (fcntl(READY_FD, F_SETFD, 0) != 0) return -1;
    }
    if (with_state && fcntl(STATE_FD, F_SETFD, 0) != 0) return -1;
    unsigned int first = keep >= 0 ? (with_state ? STATE_FD + 1 : READY_FD + 1) : READY_FD;
    if (syscall(SYS_close_range, first, ~0U, 0) != 0) {
        /* close_range is Linux 5.9+: otherwise close each possible descriptor. */
        struct rlimit limit;
        rlim_t last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_max != RLIM_INFINITY ? limit.rlim_max : 65536;
        for (rlim_t fd = first; fd < last; fd++) close((int)fd);
    }
    int null = open("/dev/null", O_RDWR);
    if (null < 0) return -1;
    for (int fd = 0; fd < 3; fd++) {
        if (fd != null && dup2(null, fd) < 0) return -1;
    }
    if (null > 2) close(null);
    return 0;
}

/* In a forked child whose signals are all blocked: every action back to the default (an ignored
   signal stays ignored across execve). The raw system call, because glibc's sigaction refuses its
   own two signals (32, 33), which a parent may have left ignored too. All fields zero: SIG_DFL,
   no flags, no restorer, empty mask, whatever the architecture's layout. Async-signal-safe. */
static void child_default_signal_actions(void) {
    unsigned long action[4] = {0, 0, 0, 0};
    for (int number = 1; number <= 64; number++) {
        if (number != SIGKILL && number != SIGSTOP)
            syscall(SYS_rt_sigaction, number, action, NULL, sizeof(unsigned long));
    }
}

/*
 * The first child, from fork to the second fork; returns in the grandchild only, with `keep_fd`
 * on descriptor 3 (the ready pipe: the child's failures go there as "ERROR ..."), nothing else but
 * /dev/null on the standard streams, default signal actions, every signal still blocked, and a
 * session of its own. The intermediate child exits at once, so the caller never has a child to
 * reap. Only async-signal-safe calls: the parent may have other threads.
 */
static int child_detach(int keep_fd, int state_fd) {
    if (keep_fd >= 0 && state_fd >= 0) {
        /* The state file goes to 4: both are moved above 4 first, so neither overwrites the other. */
        int high_ready = fcntl(keep_fd, F_DUPFD_CLOEXEC, STATE_FD + 1);
        if (high_ready < 0) child_fail(keep_fd, "dup of the ready pipe", errno);
        int high_state = fcntl(state_fd, F_DUPFD_CLOEXEC, STATE_FD + 1);
        if (high_state < 0 || dup2(high_state, STATE_FD) < 0) child_fail(high_ready, "dup2 of the state file", errno);
        if (dup2(high_ready, READY_FD) < 0) child_fail(high_ready, "dup2 of the ready pipe", errno);
    } else if (keep_fd >= 0 && keep_fd != READY_FD && dup2(keep_fd, READY_FD) < 0) {
        child_fail(keep_fd, "dup2 of the ready pipe", errno);
    }
    int ready = keep_fd >= 0 ? READY_FD : -1;
    if (child_keep_only(ready, keep_fd >= 0 && state_fd >= 0) != 0)
        child_fail(ready, "closing the parent's descriptors", errno);
    child_default_signal_actions();
    if (setsid() < 0) child_fail(ready, "setsid", errno);
    pid_t second = fork();
    if (second != 0) _exit(second < 0 ? 127 : 0);
    return ready;
}

/* The grandchild, last: nothing blocked right before execve, so a signal that arrived meanwhile
   takes its default action on a child that holds nothing but its standard streams and the ready
   pipe. Does not return. */
static void child_exec(int ready, const char *path, char *const argv[], char *const envp[]) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (envp) {
        execve(path, argv, envp);
    } else {
        execv(path, argv);
    }
    child_fail(ready, path, errno);
}

/* The parent's side: restores its signal mask and reaps the intermediate child. 0, or an errno. */
static int parent_finish(pid_t first, int fork_error, const sigset_t *saved) {
    pthread_sigmask(SIG_SETMASK, saved, NULL);
    if (first < 0) return fork_error;
    int status = 0;
    while (waitpid(first, &status, 0) < 0) {
        if (errno != EINTR) return errno;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return ECHILD;
    return 0;
}

int ccached_spawn_detached(const char *path, char *const argv[], int keep_fd) {
    sigset_t saved;
    block_all_signals(&saved);
    pid_t first = fork();
    if (first == 0) {
        int ready = child_detach(keep_fd, -1);
        child_exec(ready, path, argv, NULL);
    }
    return parent_finish(first, errno, &saved);
}

int ccached_spawn_as_user(const char *path, char *const argv[], char *const envp[], uid_t uid, gid_t gid,
                          const gid_t *groups, int group_count, const char *const directories[],
                          const char *home, int ready_fd) {
    return ccached_spawn_as_user_with_state(path, argv, envp, uid, gid, groups, group_count, directories, home,
                                            ready_fd, -1);
}

int ccached_spawn_as_user_with_state(const char *path, char *const argv[], char *const envp[], uid_t uid, gid_t gid,
                                     const gid_t *groups, int group_count, const char *const directories[],
                                     const char *home, int ready_fd, int state_fd) {
    if (ready_fd < 0 || group_count < 0 || group_count > 65536) return EINVAL;
    sigset_t saved;
    block_all_signals(&saved);
    pid_t first = fork();
    if (first == 0) {
        /* Every signal is blocked (the parent blocked them around fork) and stays so until execve;
           the door's descriptors go before any id changes, so once the user may signal or stop
           this process it holds only /dev/null and the ready pipe. */
        int ready = child_detach(ready_fd, state_fd);
        int step = ccached_drop_privileges(uid, gid, groups, group_count);
        if (step != CCACHED_DROP_DONE) child_fail(ready, ccached_drop_step_text(step), errno);
        for (int i = 0; directories && directories[i]; i++) {
            if (mkdir(directories[i], 0700) != 0 && errno != EEXIST) child_fail(ready, directories[i], errno);
        }
        if (!home || chdir(home) != 0) {
            if (chdir("/") != 0) child_fail(ready, "chdir /", errno);
        }
        child_exec(ready, path, argv, envp);
    }
    return parent_finish(first, errno, &saved);
}
