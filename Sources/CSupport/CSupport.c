#include "CSupport.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>

int ccached_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t length = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return -1;
    if (length != sizeof(cred)) {
        errno = EINVAL;
        return -1;
    }
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int ccached_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }

int ccached_unix_stream_socket(void) { return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); }

static int fill_address(struct sockaddr_un *address, const char *path) {
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof(address->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    memcpy(address->sun_path, path, length + 1);
    return 0;
}

int ccached_bind_unix(int fd, const char *path) {
    struct sockaddr_un address;
    if (fill_address(&address, path) != 0) return -1;
    return bind(fd, (struct sockaddr *)&address, sizeof(address));
}

int ccached_connect_unix(int fd, const char *path) {
    struct sockaddr_un address;
    if (fill_address(&address, path) != 0) return -1;
    int result;
    do {
        result = connect(fd, (struct sockaddr *)&address, sizeof(address));
    } while (result != 0 && errno == EINTR);
    return result;
}

int ccached_termination_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* A parent may have left these ignored, and an ignored signal never reaches a signalfd. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC);
}

int ccached_read_signalfd(int fd) {
    struct signalfd_siginfo info;
    ssize_t n;
    do {
        n = read(fd, &info, sizeof(info));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(info)) return -1;
    return (int)info.ssi_signo;
}

int ccached_spawn_thread(void *(*body)(void *), void *context, size_t stack_size) {
    pthread_attr_t attributes;
    pthread_t thread;
    int result = pthread_attr_init(&attributes);
    if (result != 0) return result;
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    if (stack_size > 0) pthread_attr_setstacksize(&attributes, stack_size);
    result = pthread_create(&thread, &attributes, body, context);
    pthread_attr_destroy(&attributes);
    return result;
}

/* ---- Spawning: what a forked child holds before it execs ---- */

/* Blocks every signal in the calling thread, so that a child forked now starts with all of them
   blocked; `saved` gets the thread's mask back afterwards. */
static void block_all_signals(sigset_t *saved) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, saved);
}

/* In a forked child, first thing: keeps only `keep` (moved to descriptor 3; none when < 0) and the
   standard streams, which are put on /dev/null. Everything else the parent had open (listeners,
   logs, other clients, other users' connections) is closed before the child changes any id, so
   a child its user may signal or stop never holds any of it. Async-signal-safe. Returns 0, or -1
   with errno set. */
static int child_keep_only(int keep) {
    if (keep >= 0 && keep != 3) {
        if (dup2(keep, 3) < 0) return -1;
    } else if (keep == 3) {
        if (fcntl(3, F_SETFD, 0) != 0) return -1;
    }
    unsigned int first = keep >= 0 ? 4 : 3;
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

/* child_keep_only for descriptors 3 and 4 (already in place, close-on-exec cleared by dup2). */
static int child_keep_two(void) {
    if (syscall(SYS_close_range, 5, ~0U, 0) != 0) {
        struct rlimit limit;
        rlim_t last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_max != RLIM_INFINITY ? limit.rlim_max : 65536;
        for (rlim_t fd = 5; fd < last; fd++) close((int)fd);
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

/* Right before execve: nothing blocked. A signal that arrived meanwhile now takes its default
   action, on a child that holds nothing but its standard streams and the ready pipe. */
static void child_unblock_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int ccached_spawn_detached(const char *path, char *const argv[], int keep_fd) {
    sigset_t saved;
    block_all_signals(&saved);
    pid_t first = fork();
    if (first == 0) {
        /* Only async-signal-safe calls from here to exec: the parent may have other threads. */
        if (child_keep_only(keep_fd) != 0) _exit(127);
        child_default_signal_actions();
        if (setsid() < 0) _exit(127);
        pid_t second = fork();
        if (second != 0) _exit(second < 0 ? 127 : 0);
        child_unblock_signals();
        execv(path, argv);
        _exit(127);
    }
    int code = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (first < 0) return code;
    int status = 0;
    while (waitpid(first, &status, 0) < 0) {
        if (errno != EINTR) return errno;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return ECHILD;
    return 0;
}

int ccached_thread_getresuid(uid_t *real, uid_t *effective, uid_t *saved) {
    return (int)syscall(SYS_getresuid, real, effective, saved);
}

int ccached_thread_getresgid(gid_t *real, gid_t *effective, gid_t *saved) {
    return (int)syscall(SYS_getresgid, real, effective, saved);
}

int ccached_thread_setresuid(uid_t real, uid_t effective, uid_t saved) {
    return (int)syscall(SYS_setresuid, real, effective, saved);
}

int ccached_thread_setresgid(gid_t real, gid_t effective, gid_t saved) {
    return (int)syscall(SYS_setresgid, real, effective, saved);
}

int ccached_forbid_core_dumps(void) {
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return -1;
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

long ccached_raise_descriptor_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    }
    return (long)limit.rlim_cur;
}

int ccached_spawn_actions_close_from(posix_spawn_file_actions_t *actions, int fd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, fd);
}

/* ---- The front door and the hand-off socket ---- */

#include <grp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int ccached_peer_pidfd(int fd) {
    int pidfd = -1;
    socklen_t length = sizeof(pidfd);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &length) != 0) return -1;
    if (length != sizeof(pidfd) || pidfd < 0) {
        errno = EINVAL;
        return -1;
    }
    /* The kernel already sets O_CLOEXEC on it; make sure. */
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    return pidfd;
}

int ccached_pidfd_send_signal(int pidfd, int signal) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

int ccached_pidfd_pid(int pidfd) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char text[1024];
    ssize_t count = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (count <= 0) return -1;
    text[count] = 0;
    const char *line = text;
    while (line && *line) {
        if (strncmp(line, "Pid:", 4) == 0) {
            long value = strtol(line + 4, NULL, 10);
            return value < 0 ? -1 : (int)value;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    errno = ENOENT;
    return -1;
}

int ccached_send_descriptor(int socket, unsigned char byte, int fd) {
    struct iovec vector = {.iov_base = &byte, .iov_len = 1};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = {0};
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof(control.buffer);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof(int));
    ssize_t sent;
    do {
        sent = sendmsg(socket, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) return -1;
    if (sent != 1) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int ccached_receive_descriptor(int socket, unsigned char *byte, int *fd) {
    *fd = -1;
    /* Room for a few descriptors, so that a message carrying too many is seen whole and every
       one of them closed rather than left truncated. */
    union {
        char buffer[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } control;
    struct iovec vector = {.iov_base = byte, .iov_len = 1};
    struct msghdr message = {0};
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof(control.buffer);
    ssize_t count;
    do {
        count = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    } while (count < 0 && errno == EINTR);
    if (count < 0) return -1;
    int received = -1, extra = 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int one;
            memcpy(&one, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
            if (received < 0 && !extra) {
                received = one;
            } else {
                close(one);
                extra = 1;
            }
        }
    }
    if (extra || (message.msg_flags & MSG_CTRUNC)) {
        if (received >= 0) close(received);
        received = -1;
    }
    if (count == 0 && received < 0) return 0;
    *fd = received;
    return 1;
}

int ccached_is_connected_unix_stream(int fd) {
    int value = 0;
    socklen_t length = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &length) != 0) return errno == ENOTSOCK ? 0 : -1;
    if (value != AF_UNIX) return 0;
    length = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &length) != 0 || value != SOCK_STREAM) return 0;
    length = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &length) != 0 || value != 0) return 0;
    struct sockaddr_un peer;
    length = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &length) != 0) return 0;
    return 1;
}

/* Opens `name` in `directory` as an O_PATH descriptor of what is there, without following a link,
   and checks its type and owner. Returns the descriptor, or -1 with errno set. */
static int open_checked(int directory, const char *name, int want_socket, uid_t uid, uid_t *owner) {
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = openat(directory, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat info;
    int code = 0;
    if (fstat(fd, &info) != 0) {
        code = errno;
    } else if (S_ISLNK(info.st_mode)) {
        code = ELOOP;
    } else if (want_socket ? !S_ISSOCK(info.st_mode) : !S_ISDIR(info.st_mode)) {
        code = want_socket ? ENOTSOCK : ENOTDIR;
    } else if (want_socket ? info.st_uid != uid : (info.st_uid != 0 && info.st_uid != uid)) {
        *owner = info.st_uid;
        code = EPERM;
    }
    if (code != 0) {
        close(fd);
        errno = code;
        return -1;
    }
    return fd;
}

int ccached_open_socket_nofollow(const char *path, uid_t uid, uid_t *owner, size_t *failed_length) {
    *owner = (uid_t)-1;
    *failed_length = 0;
    size_t length = strlen(path);
    if (length < 2 || path[0] != '/' || path[length - 1] == '/' || length >= 4096) {
        errno = EINVAL;
        return -1;
    }
    char copy[4096];
    memcpy(copy, path, length + 1);
    int directory = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) return -1;
    char *name = copy + 1;
    while (1) {
        while (*name == '/') name++;
        char *end = strchr(name, '/');
        if (end) *end = 0;
        int next = open_checked(directory, name, end == NULL, uid, owner);
        int code = errno;
        close(directory);
        if (next < 0) {
            *failed_length = end ? (size_t)(end - copy) : length;
            errno = code;
            return -1;
        }
        if (!end) return next;
        directory = next;
        name = end + 1;
    }
}

int ccached_connect_unix_at(int fd, int path_fd) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", path_fd);
    return ccached_connect_unix(fd, path);
}

int ccached_pipe_cloexec(int ends[2]) { return pipe2(ends, O_CLOEXEC); }

int ccached_socket_timeouts(int fd, int milliseconds) {
    struct timeval limit = {.tv_sec = milliseconds / 1000, .tv_usec = (milliseconds % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit)) != 0) return -1;
    return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
}

/* Writes "ERROR <what>: <strerror>" to the ready descriptor and exits; async-signal-safe. */
static void child_fail(int ready, const char *what, int code) {
    const char *prefix = "ERROR ";
    /* strerror may translate (and allocate); the errno name is a constant string. */
    const char *reason = strerrorname_np(code);
    if (!reason) reason = "unknown error";
    (void)!write(ready, prefix, strlen(prefix));
    (void)!write(ready, what, strlen(what));
    (void)!write(ready, ": ", 2);
    (void)!write(ready, reason, strlen(reason));
    (void)!write(ready, "\n", 1);
    _exit(127);
}

/*
 * Whether the kernel's group list holds exactly the groups asked for. The kernel sorts the list
 * setgroups is given (groups_sort), and getgrouplist puts the primary group first: compare as
 * multisets, not byte for byte. Async-signal-safe (no allocation): at most 64 x 64 comparisons.
 */
static bool same_groups(const gid_t *now, const gid_t *wanted, int count) {
    bool used[64] = {false};
    for (int i = 0; i < count; i++) {
        bool found = false;
        for (int j = 0; j < count && !found; j++) {
            if (!used[j] && now[j] == wanted[i]) used[j] = found = true;
        }
        if (!found) return false;
    }
    return true;
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
        /* Only async-signal-safe calls from here to exec: the parent has other threads. Every
           signal is blocked (the parent blocked them around fork) and stays so until execve; the
           door's descriptors go before any id changes, so once the user may signal or stop this
           process it holds only /dev/null and the ready pipe. */
        int ready = 3;
        if (state_fd >= 0) {
            /* The state file goes to 4: both moved above 4 first, so neither overwrites the other. */
            int high_ready = fcntl(ready_fd, F_DUPFD_CLOEXEC, 5);
            int high_state = fcntl(state_fd, F_DUPFD_CLOEXEC, 5);
            if (high_ready < 0) child_fail(ready_fd, "dup of the ready pipe", errno);
            if (high_state < 0 || dup2(high_state, 4) < 0) child_fail(high_ready, "dup2 of the state file", errno);
            if (dup2(high_ready, 3) < 0) child_fail(high_ready, "dup2 of the ready pipe", errno);
            if (child_keep_two() != 0) child_fail(ready, "closing the door's descriptors", errno);
        } else {
            if (ready_fd != 3 && dup2(ready_fd, 3) < 0) child_fail(ready_fd, "dup2 of the ready pipe", errno);
            if (child_keep_only(ready) != 0) child_fail(ready, "closing the door's descriptors", errno);
        }
        child_default_signal_actions();
        if (setsid() < 0) child_fail(ready, "setsid", errno);
        pid_t second = fork();
        if (second != 0) _exit(second < 0 ? 127 : 0);
        if (syscall(SYS_setgroups, (size_t)group_count, groups) != 0) child_fail(ready, "setgroups", errno);
        if (syscall(SYS_setresgid, gid, gid, gid) != 0) child_fail(ready, "setresgid", errno);
        if (syscall(SYS_setresuid, uid, uid, uid) != 0) child_fail(ready, "setresuid", errno);
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        if (syscall(SYS_getresuid, &ru, &eu, &su) != 0 || ru != uid || eu != uid || su != uid)
            child_fail(ready, "the uid did not change", EPERM);
        if (syscall(SYS_getresgid, &rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid)
            child_fail(ready, "the gid did not change", EPERM);
        gid_t now[64];
        long have = syscall(SYS_getgroups, 64, now);
        if (group_count <= 64 && (have != group_count || !same_groups(now, groups, group_count)))
            child_fail(ready, "the supplementary groups did not change", EPERM);
        if (uid != 0 && (syscall(SYS_setresuid, 0, 0, 0) == 0 || syscall(SYS_setresgid, 0, 0, 0) == 0))
            child_fail(ready, "root could be regained after the drop", EPERM);
        for (int i = 0; directories && directories[i]; i++) {
            if (mkdir(directories[i], 0700) != 0 && errno != EEXIST) child_fail(ready, directories[i], errno);
        }
        if (!home || chdir(home) != 0) {
            if (chdir("/") != 0) child_fail(ready, "chdir /", errno);
        }
        child_unblock_signals();
        execve(path, argv, envp);
        child_fail(ready, path, errno);
    }
    int code = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (first < 0) return code;
    int status = 0;
    while (waitpid(first, &status, 0) < 0) {
        if (errno != EINTR) return errno;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return ECHILD;
    return 0;
}

int ccached_ensure_private_directory(int parent_fd, const char *name, mode_t mode, uid_t uid, gid_t gid) {
    int created = 0;
    if (mkdirat(parent_fd, name, 0700) == 0) {
        created = 1;
    } else if (errno != EEXIST) {
        return -1;
    }
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    if (created) {
        /* Mode first, while root still owns it: after the chown only CAP_FOWNER could change it. */
        if (fchmod(fd, mode) != 0 || fchown(fd, uid, gid) != 0) {
            int code = errno;
            close(fd);
            errno = code;
            return -1;
        }
    }
    struct stat info;
    if (fstat(fd, &info) != 0) {
        int code = errno;
        close(fd);
        errno = code;
        return -1;
    }
    if (!S_ISDIR(info.st_mode) || info.st_uid != uid || (info.st_mode & 07777) != mode) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}
