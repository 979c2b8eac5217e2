#define _GNU_SOURCE
#include "CStateFile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

int ccached_state_memfd_create(const char *name) {
    return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
}

int ccached_state_is_memfd(int fd) {
    char path[64];
    char target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(path, target, sizeof target - 1);
    if (length < 0) return -1;
    target[length] = 0;
    return strncmp(target, "/memfd:", 7) == 0 ? 1 : 0;
}

// `fcntl(fd, command, lock)` for an open file description write lock on the whole file, retried
// on EINTR; `lock` is the whole-file write lock on entry and what F_OFD_GETLK found on return.
static int whole_file_lock(int fd, int command, struct flock *lock) {
    *lock = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0, .l_pid = 0};
    int result;
    do {
        result = fcntl(fd, command, lock);
    } while (result < 0 && errno == EINTR);
    return result;
}

int ccached_state_lock(int fd) {
    struct flock lock;
    int result = whole_file_lock(fd, F_OFD_SETLK, &lock);
    if (result < 0 && errno == EACCES) errno = EAGAIN;
    return result < 0 ? -1 : 0;
}

int ccached_state_in_use(int fd) {
    struct flock lock;
    if (whole_file_lock(fd, F_OFD_GETLK, &lock) < 0) return -1;
    return lock.l_type == F_UNLCK ? 0 : 1;
}

int ccached_state_reopen(int fd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int copy;
    do {
        copy = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    } while (copy < 0 && errno == EINTR);
    return copy;
}

int ccached_state_lock_on_fault(void *address, size_t length) {
    return (int)syscall(SYS_mlock2, address, length, MLOCK_ONFAULT);
}

int ccached_state_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void) {
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t value = index;
        for (int bit = 0; bit < 8; bit++) value = (value >> 1) ^ (0x82F63B78u & (0u - (value & 1u)));
        crc_table[index] = value;
    }
    __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t crc_table_update(uint32_t crc, const unsigned char *bytes, size_t length) {
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE)) crc_init();
    for (size_t index = 0; index < length; index++) crc = crc_table[(crc ^ bytes[index]) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hardware(uint32_t crc, const unsigned char *bytes, size_t length) {
    uint64_t value = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        value = __builtin_ia32_crc32di(value, word);
        bytes += 8;
        length -= 8;
    }
    uint32_t small = (uint32_t)value;
    while (length > 0) {
        small = __builtin_ia32_crc32qi(small, *bytes);
        bytes++;
        length--;
    }
    return small;
}
#endif

uint32_t ccached_state_crc32c(uint32_t crc, const void *bytes, size_t length) {
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~crc_hardware(crc, bytes, length);
#endif
    return ~crc_table_update(crc, bytes, length);
}
