#ifndef CSTATEFILE_H
#define CSTATEFILE_H

#include <stddef.h>
#include <stdint.h>

/// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING): an anonymous memory file, never a path.
/// Returns the descriptor or -1 with errno set.
int ccached_state_memfd_create(const char *name);

/// Whether `fd` is a memfd (its /proc/self/fd link reads "/memfd:..."): 1 yes, 0 no, -1 error.
int ccached_state_is_memfd(int fd);

/// Takes a write lock on the whole of `fd`'s open file description (F_OFD_SETLK, not waiting):
/// the daemon that uses a state file holds it for as long as the description is open, so no second
/// daemon uses the same file and ccached-door sees whether one does. 0, or -1 with errno (EAGAIN:
/// another open file description of the file holds a lock).
int ccached_state_lock(int fd);

/// Whether another open file description than `fd`'s holds a lock on the file (F_OFD_GETLK):
/// 1 yes, 0 no, -1 error.
int ccached_state_in_use(int fd);

/// A new open file description of the memfd `fd` (open("/proc/self/fd/N", O_RDWR | O_CLOEXEC)),
/// so that a lock on one does not cover the other. Returns the descriptor or -1 with errno set.
int ccached_state_reopen(int fd);

/// mlock2(address, length, MLOCK_ONFAULT): pages are locked as they are first touched, so a
/// mapping can be locked ahead of its use without being populated. 0 or -1 with errno.
int ccached_state_lock_on_fault(void *address, size_t length);

/// fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length): the range reads
/// as zeros and its pages go back to the kernel. 0 or -1 with errno.
int ccached_state_punch_hole(int fd, int64_t offset, int64_t length);

/// CRC32C (Castagnoli) of `length` bytes, continuing from `crc` (0 to start): the SSE 4.2
/// instruction where the CPU has it, a table otherwise. Same result either way.
uint32_t ccached_state_crc32c(uint32_t crc, const void *bytes, size_t length);

#endif
