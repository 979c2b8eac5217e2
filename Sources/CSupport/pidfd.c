// Process descriptors: the peer's pidfd, signalling through it, and the pid behind it.

#include "CSupport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef PID_FS_MAGIC
#define PID_FS_MAGIC 0x50494446
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

/* PIDFD_GET_INFO (Linux 6.13+; Debian 12's headers predate it): the first 64 bytes of
   struct pidfd_info, which every kernel that has the ioctl accepts. */
struct ccached_pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define CCACHED_PIDFD_GET_INFO _IOWR(0xFF, 11, struct ccached_pidfd_info)

/* The pid from /proc/self/fdinfo: 0 outside this pid namespace, -1 once reaped. */
static int pid_from_fdinfo(int pidfd) {
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

int ccached_pidfd_pid(int pidfd) {
    /* One ioctl where the kernel has it, instead of opening, reading and parsing fdinfo (about
       10 us). It fails with ESRCH both for a process that was reaped and for one outside this pid
       namespace: fdinfo tells those apart, and it is read only then (the peer is gone or unseen). */
    struct ccached_pidfd_info info;
    memset(&info, 0, sizeof(info));
    if (ioctl(pidfd, CCACHED_PIDFD_GET_INFO, &info) == 0 && info.pid > 0) return (int)info.pid;
    return pid_from_fdinfo(pidfd);
}

unsigned long long ccached_pidfd_inode(int pidfd) {
    struct stat status;
    if (fstat(pidfd, &status) != 0) return 0;
    return (unsigned long long)status.st_ino;
}

int ccached_pidfd_on_pidfs(int pidfd) {
    struct statfs filesystem;
    return fstatfs(pidfd, &filesystem) == 0 && (unsigned long)filesystem.f_type == PID_FS_MAGIC;
}

int ccached_pidfd_open(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
