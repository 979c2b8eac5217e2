#ifndef CCACHED_CEARLYHARDENING_H
#define CCACHED_CEARLYHARDENING_H

/// What the constructor that runs before main (before any of the program's Swift code) did: 0 when
/// the process was made non-dumpable and its core size limit set to 0; otherwise the errno of the
/// call that failed (the process then stops before main, so a running program always sees 0).
/// Linked only into ccached and ccachectl: a test or benchmark process stays dumpable.
int ccached_early_hardening_result(void);

#endif
