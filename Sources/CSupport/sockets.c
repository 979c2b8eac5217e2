// Unix sockets: peer credentials, listening and connecting (never through a link), passing a
// descriptor, pipes and timeouts.

#include "CSupport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
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
    /* getpeername answers only for a connected socket (not a listening one, ENOTCONN; not another
       kind of file, ENOTSOCK) and names its family: two checks in one call. */
    struct sockaddr_un peer;
    socklen_t length = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &length) != 0) {
        return errno == ENOTSOCK || errno == ENOTCONN ? 0 : -1;
    }
    if (length < sizeof(peer.sun_family) || peer.sun_family != AF_UNIX) return 0;
    int value = 0;
    length = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &length) != 0 || value != SOCK_STREAM) return 0;
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
