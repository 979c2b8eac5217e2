// The private-directory rule: root makes /run/ccached and /run/ccached/<uid>, never following a
// link. Shared by the door (SessionRuntime's RuntimeDirectory), root's own client and pam_ccached.so,
// which compiles this file in (Makefile): plain C, libc only, errors through errno.

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ccached_private_directory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

static int fail_closing(int fd, int code) {
    close(fd);
    errno = code;
    return -1;
}

/* Opens `name` in `parent_fd` without following a link and checks it is a directory of `uid` with
   `mode`. Returns the descriptor, or -1 with errno (EPERM: not as it should be; ELOOP, ENOTDIR:
   a link, something else) and what was found. */
static int open_checked_directory(int parent_fd, const char *name, mode_t mode, uid_t uid, uid_t *found_owner,
                                  mode_t *found_mode) {
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
    if (!S_ISDIR(info.st_mode) || info.st_uid != uid || (info.st_mode & 07777) != mode) {
        *found_owner = info.st_uid;
        *found_mode = info.st_mode & 07777;
        return fail_closing(fd, EPERM);
    }
    return fd;
}

/* Gives the new, empty directory `fd` (made 0700 by root) to its owner, then its mode. The order is
   the rule: no one else can enter it at any moment; the mode comes last, so that nothing chown does
   to the mode bits (POSIX lets it clear set-id bits) outlives the check. The fchmod is skipped when
   the mode already is right: once the directory is the user's, only its owner or CAP_FOWNER may
   change it, and ccached-door's unit does not grant CAP_FOWNER. Returns 0 or an errno value. */
static int give_away(int fd, mode_t mode, uid_t uid, gid_t gid) {
    struct stat info;
    if (fstat(fd, &info) != 0) return errno;
    if ((info.st_uid != uid || info.st_gid != gid) && fchown(fd, uid, gid) != 0) return errno;
    if (fstat(fd, &info) != 0) return errno;
    if ((info.st_mode & 07777) != mode && fchmod(fd, mode) != 0) return errno;
    return 0;
}

int ccached_ensure_private_directory(int parent_fd, const char *name, mode_t mode, uid_t uid, gid_t gid,
                                     uid_t *found_owner, mode_t *found_mode) {
    uid_t owner_scratch;
    mode_t mode_scratch;
    if (!found_owner) found_owner = &owner_scratch;
    if (!found_mode) found_mode = &mode_scratch;
    *found_owner = (uid_t)-1;
    *found_mode = 0;
    if (name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strlen(name) > 64) {
        errno = EINVAL;
        return -1;
    }
    int fd = open_checked_directory(parent_fd, name, mode, uid, found_owner, found_mode);
    if (fd >= 0 || errno != ENOENT) return fd;
    /*
     * Not there: made whole under a temporary name (root's parent: no one else can create there),
     * then moved into place with RENAME_NOREPLACE. Made in place, it would stand for a moment as
     * root's and 0700, and a second thread or process making it at the same moment (two first
     * connections of a new user) would find it so and refuse it. A rename that finds the name
     * taken means another made it first: its directory is checked like any other.
     */
    char temporary[96];
    snprintf(temporary, sizeof(temporary), ".%s.new-%ld", name, (long)syscall(SYS_gettid));
    if (mkdirat(parent_fd, temporary, 0700) != 0) {
        /* A leftover of a thread of the same id that was stopped midway: empty, or it is not ours. */
        if (errno != EEXIST || unlinkat(parent_fd, temporary, AT_REMOVEDIR) != 0 ||
            mkdirat(parent_fd, temporary, 0700) != 0)
            return -1;
    }
    fd = openat(parent_fd, temporary, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int code = fd < 0 ? errno : give_away(fd, mode, uid, gid);
    if (code == 0 && syscall(SYS_renameat2, parent_fd, temporary, parent_fd, name, RENAME_NOREPLACE) == 0) return fd;
    if (code == 0) code = errno;
    if (fd >= 0) close(fd);
    unlinkat(parent_fd, temporary, AT_REMOVEDIR);
    if (code == EEXIST) return open_checked_directory(parent_fd, name, mode, uid, found_owner, found_mode);
    errno = code;
    return -1;
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
