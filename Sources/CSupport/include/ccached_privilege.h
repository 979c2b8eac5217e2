#ifndef CCACHED_PRIVILEGE_H
#define CCACHED_PRIVILEGE_H

// The privilege drop, in plain C so that pam_ccached.so compiles it in too (Makefile).

#include <sys/types.h>

/// The step of ``ccached_drop_privileges`` that failed (0: none).
enum ccached_drop_step {
    CCACHED_DROP_DONE = 0,
    CCACHED_DROP_SETGROUPS,
    CCACHED_DROP_SETRESGID,
    CCACHED_DROP_SETRESUID,
    CCACHED_DROP_CHECK_GROUPS,
    CCACHED_DROP_CHECK_GID,
    CCACHED_DROP_CHECK_UID,
    CCACHED_DROP_CHECK_ROOT,
};

/// In a forked child about to exec as another user (one thread; async-signal-safe, no allocation):
/// sets the supplementary groups to `groups` (`group_count` of them, as getgrouplist gave them),
/// then real, effective and saved gid, then uid (raw system calls: they change this thread, which is
/// the whole child), and checks the result with ``ccached_check_dropped``, the groups too when there
/// are at most 64. Returns CCACHED_DROP_DONE, or the step that failed with errno set (EPERM when a
/// check found the ids not as asked).
int ccached_drop_privileges(uid_t uid, gid_t gid, const gid_t *groups, int group_count);

/// Checks that the real, effective and saved uid are all `uid` and the gids all `gid`, and, for a
/// `uid` other than 0, that root cannot be regained (setresuid(0) and setresgid(0) both fail): the
/// drop is for good. Async-signal-safe. Returns CCACHED_DROP_DONE, or the check that failed with
/// errno EPERM.
int ccached_check_dropped(uid_t uid, gid_t gid);

/// What a step is, for a message ("setresuid", "the uid did not change", ...).
const char *ccached_drop_step_text(int step);

#endif
