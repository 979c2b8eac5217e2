// The private-directory rule: root makes /run/ccached and /run/ccached/<uid>, never following a
// link. Shared by the door (SessionRuntime's RuntimeDirectory), root's own client and pam_ccached.so,
// which compiles this file in (Makefile): plain C, libc only, errors through errno.

#include "ccached_private_directory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail_closing(int fd, int code) {
    close(fd);
    errno = code;
    return -1;
}

int ccached_ensure_private_directory(int parent_fd, const char *name, mode_t mode, uid_t uid, gid_t gid,
                                     uid_t *found_owner, mode_t *found_mode) {
    uid_t owner_scratch;
    mode_t mode_scratch;
    if (!found_owner) found_owner = &owner_scratch;
    if (!found_mode) found_mode = &mode_scratch;
    *found_owner = (uid_t)-1;
    *found_mode = 0;
    if (name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        errno = EINVAL;
        return -1;
    }
    bool created = mkdirat(parent_fd, name, 0700) == 0;
    if (!created && errno != EEXIST) return -1;
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        /* O_DIRECTORY | O_NOFOLLOW refuses a link with ENOTDIR (O_DIRECTORY is checked first), as
           it refuses a file: say which it was, for the message. */
        int code = errno;
        struct stat what;
        if ((code == ENOTDIR || code == ELOOP) && fstatat(parent_fd, name, &what, AT_SYMLINK_NOFOLLOW) == 0) {
            *found_owner = what.st_uid;
            *found_mode = what.st_mode & 07777;
            code = S_ISLNK(what.st_mode) ? ELOOP : ENOTDIR;
        }
        errno = code;
        return -1;
    }
    struct stat info;
    if (fstat(fd, &info) != 0) return fail_closing(fd, errno);
    if (created) {
        /*
         * The order is the rule: made 0700 and the creator's (root's), so no one else can enter it
         * at any moment; then given to its owner; then its mode, last, so that nothing chown does to
         * the mode bits (POSIX lets it clear set-id bits) outlives the check below. The fchmod is
         * skipped when the mode already is right: once the directory is the user's, only its owner
         * or CAP_FOWNER may change it, and ccached-door's unit does not grant CAP_FOWNER.
         */
        int code = 0;
        if ((info.st_uid != uid || info.st_gid != gid) && fchown(fd, uid, gid) != 0) code = errno;
        if (code == 0 && fstat(fd, &info) != 0) code = errno;
        if (code == 0 && (info.st_mode & 07777) != mode && fchmod(fd, mode) != 0) code = errno;
        if (code == 0 && fstat(fd, &info) != 0) code = errno;
        if (code != 0) {
            /* Empty and ours: leave nothing half made for the next attempt to refuse. */
            unlinkat(parent_fd, name, AT_REMOVEDIR);
            return fail_closing(fd, code);
        }
    }
    if (!S_ISDIR(info.st_mode) || info.st_uid != uid || (info.st_mode & 07777) != mode) {
        *found_owner = info.st_uid;
        *found_mode = info.st_mode & 07777;
        return fail_closing(fd, EPERM);
    }
    return fd;
}

int ccached_ensure_root_managed_base(int run_fd, uid_t uid, gid_t gid, struct ccached_directory_failure *failure) {
    failure->level = 0;
    failure->owner = (uid_t)-1;
    failure->mode = 0;
    struct stat info;
    if (fstat(run_fd, &info) != 0) return -1;
    if (!S_ISDIR(info.st_mode) || info.st_uid != 0 || (info.st_mode & 022) != 0) {
        failure->owner = info.st_uid;
        failure->mode = info.st_mode & 07777;
        errno = EPERM;
        return -1;
    }
    failure->level = 1;
    int top = ccached_ensure_private_directory(run_fd, "ccached", 0755, 0, 0, &failure->owner, &failure->mode);
    if (top < 0) return -1;
    char name[24];
    snprintf(name, sizeof(name), "%u", (unsigned)uid);
    failure->level = 2;
    int mine = ccached_ensure_private_directory(top, name, 0700, uid, gid, &failure->owner, &failure->mode);
    int code = errno;
    close(top);
    errno = code;
    return mine;
}
