#include "CSupport.h"

#include <errno.h>
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

int ccached_spawn_detached(const char *path, char *const argv[], int keep_fd) {
    pid_t first = fork();
    if (first < 0) return errno;
    if (first == 0) {
        /* Only async-signal-safe calls from here to exec: the parent may have other threads. */
        if (setsid() < 0) _exit(127);
        pid_t second = fork();
        if (second != 0) _exit(second < 0 ? 127 : 0);
        if (keep_fd >= 0 && keep_fd != 3) {
            if (dup2(keep_fd, 3) < 0) _exit(127);
        }
        int null = open("/dev/null", O_RDWR);
        if (null < 0) _exit(127);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        int first_closed = keep_fd >= 0 ? 4 : 3;
        syscall(SYS_close_range, first_closed, ~0U, 0);
        if (keep_fd >= 0) fcntl(3, F_SETFD, 0);
        execv(path, argv);
        _exit(127);
    }
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
