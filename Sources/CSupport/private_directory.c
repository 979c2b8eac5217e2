// The private-directory rule: a directory made or checked through a descriptor, never a link.

#include "CSupport.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
