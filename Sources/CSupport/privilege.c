// The privilege drop: what a child of root does to become a user for good before it execs. Shared
// by the door's spawner (spawn.c) and pam_ccached.so, which compiles this file in (Makefile).

#include "ccached_privilege.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

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

static int refused(int step) {
    errno = EPERM;
    return step;
}

int ccached_check_dropped(uid_t uid, gid_t gid) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (syscall(SYS_getresgid, &rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid)
        return refused(CCACHED_DROP_CHECK_GID);
    if (syscall(SYS_getresuid, &ru, &eu, &su) != 0 || ru != uid || eu != uid || su != uid)
        return refused(CCACHED_DROP_CHECK_UID);
    if (uid != 0 && (syscall(SYS_setresuid, 0, 0, 0) == 0 || syscall(SYS_setresgid, 0, 0, 0) == 0))
        return refused(CCACHED_DROP_CHECK_ROOT);
    return CCACHED_DROP_DONE;
}

int ccached_drop_privileges(uid_t uid, gid_t gid, const gid_t *groups, int group_count) {
    if (group_count < 0 || (group_count > 0 && !groups)) {
        errno = EINVAL;
        return CCACHED_DROP_SETGROUPS;
    }
    /* Groups first, then gid, then uid: each needs the privilege the next one gives up. */
    if (syscall(SYS_setgroups, (size_t)group_count, groups) != 0) return CCACHED_DROP_SETGROUPS;
    if (syscall(SYS_setresgid, gid, gid, gid) != 0) return CCACHED_DROP_SETRESGID;
    if (syscall(SYS_setresuid, uid, uid, uid) != 0) return CCACHED_DROP_SETRESUID;
    gid_t now[64];
    long have = syscall(SYS_getgroups, 64, now);
    if (group_count <= 64 && (have != group_count || !same_groups(now, groups, group_count)))
        return refused(CCACHED_DROP_CHECK_GROUPS);
    return ccached_check_dropped(uid, gid);
}

const char *ccached_drop_step_text(int step) {
    switch (step) {
    case CCACHED_DROP_DONE: return "nothing";
    case CCACHED_DROP_SETGROUPS: return "setgroups";
    case CCACHED_DROP_SETRESGID: return "setresgid";
    case CCACHED_DROP_SETRESUID: return "setresuid";
    case CCACHED_DROP_CHECK_GROUPS: return "the supplementary groups did not change";
    case CCACHED_DROP_CHECK_GID: return "the gid did not change";
    case CCACHED_DROP_CHECK_UID: return "the uid did not change";
    case CCACHED_DROP_CHECK_ROOT: return "root could be regained after the drop";
    default: return "an unknown step";
    }
}
