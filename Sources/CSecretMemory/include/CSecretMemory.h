#ifndef CSECRETMEMORY_H
#define CSECRETMEMORY_H

/// memfd_secret(2) with O_CLOEXEC: a descriptor of a secret memory file, or -1 with errno
/// (ENOSYS where the kernel lacks it or it is not enabled: `secretmem.enable=1` before 6.5).
/// Swift cannot call the variadic syscall(2), and glibc has no wrapper.
int ccached_memfd_secret(void);

#endif
