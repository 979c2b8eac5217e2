// Makes ccached and ccachectl non-dumpable before main runs.
//
// execve resets a process to dumpable (for a binary that is not set-user-ID), so a same-uid process
// polling /proc could PTRACE_SEIZE the daemon in the milliseconds before Daemon.run() called prctl:
// issue 12, item 5. A constructor of the executable runs after the dynamic loader and the
// constructors of the libraries it loaded (libc, the Swift runtime), and before main, so before any
// code of ccached or ccachectl can hold a secret. What remains is documented in Docs/security.md.

#include "CEarlyHardening.h"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static int early_result = -1;

int ccached_early_hardening_result(void) { return early_result; }

// A fixed message: stdio and strerror are avoided this early; write(2) is all that is needed.
static void fail(const char *message, unsigned long length, int error) {
    early_result = error != 0 ? error : EINVAL;
    ssize_t ignored = write(2, message, length);
    (void)ignored;
    _exit(70);  // EX_SOFTWARE: this is not a usage error
}

#define FAIL(text, error) fail(text, sizeof(text) - 1, error)

__attribute__((constructor(101), used)) static void ccached_early_hardening(void) {
    // Core limit first: even if a later step failed, no core file would hold anything.
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) {
        FAIL("ccached: cannot set RLIMIT_CORE to 0 at start-up; refusing to run with core dumps possible\n",
             errno);
    }
    // PR_SET_DUMPABLE 0: no core dump, /proc/PID/{mem,environ,maps,...} owned by root, and
    // ptrace from the same uid refused (PTRACE_MODE_ATTACH checks the dumpable flag).
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
        FAIL("ccached: cannot make the process non-dumpable (prctl PR_SET_DUMPABLE) at start-up; "
             "refusing to run\n",
             errno);
    }
    early_result = 0;
}
