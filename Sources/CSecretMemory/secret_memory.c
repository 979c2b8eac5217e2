#define _GNU_SOURCE
#include "CSecretMemory.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

int ccached_memfd_secret(void) {
#ifdef SYS_memfd_secret
    return (int)syscall(SYS_memfd_secret, O_CLOEXEC);
#else
    errno = ENOSYS;
    return -1;
#endif
}
