#ifndef CCACHED_PRIVATE_DIRECTORY_H
#define CCACHED_PRIVATE_DIRECTORY_H

// The private-directory rule, in plain C so that pam_ccached.so compiles it in too (Makefile).

#include <sys/types.h>

/// Where ``ccached_ensure_root_managed_base`` stopped, for the caller's message: `level` 0 is the
/// run directory itself, 1 its `ccached`, 2 `ccached/<uid>`; `owner` and `mode` are what was found
/// there ((uid_t)-1 and 0 when nothing could be inspected).
struct ccached_directory_failure {
    int level;
    uid_t owner;
    mode_t mode;
};

/// Creates `name` inside the directory `parent_fd` as a directory owned by `uid`:`gid` with `mode`,
/// or checks the one already there, never following a link: a link (ELOOP), a non-directory
/// (ENOTDIR), another owner or another mode (EPERM) is refused, never changed. A new directory is
/// made 0700 (so only its creator may enter), then given to `uid`:`gid` and its mode through an
/// O_NOFOLLOW descriptor; a directory that cannot be given away is removed again. Returns an
/// O_DIRECTORY descriptor (O_CLOEXEC) for it, or -1 with errno set; `*found_owner` and
/// `*found_mode` (either may be NULL) then say what was there.
int ccached_ensure_private_directory(int parent_fd, const char *name, mode_t mode, uid_t uid, gid_t gid,
                                     uid_t *found_owner, mode_t *found_mode);

/// As root, in the run directory `run_fd` (/run outside tests), which must be root's and writable by
/// no one else: makes or checks `ccached` (root:root 0755) and `ccached/<uid>` (uid:gid 0700) with
/// ``ccached_ensure_private_directory``. The one rule the door, pam_ccached and root's own client
/// share for a session's runtime base when there is no /run/user/<uid>. Returns an O_DIRECTORY
/// descriptor for `ccached/<uid>`, or -1 with errno set and `*failure` filled in.
int ccached_ensure_root_managed_base(int run_fd, uid_t uid, gid_t gid, struct ccached_directory_failure *failure);

#endif
