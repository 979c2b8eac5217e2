#ifndef CSUPPORT_EPOLL_H
#define CSUPPORT_EPOLL_H

#include <stdint.h>

// epoll for the daemon's event loop. Behind C because `struct epoll_event` is packed on x86-64,
// which Swift cannot import as a plain struct.

/// epoll_create1(EPOLL_CLOEXEC): a descriptor, or -1 with errno set.
int ccached_epoll_create(void);

/// Watches `fd` for readability (level-triggered; hang-up and error are always reported), reported
/// under `token`. 0, or -1 with errno set.
int ccached_epoll_add(int epoll_fd, int fd, uint64_t token);

/// Stops watching `fd`. 0, or -1 with errno set.
int ccached_epoll_remove(int epoll_fd, int fd);

/// Waits up to `timeout_ms` (-1: forever) and stores the tokens of at most `capacity` ready
/// descriptors in `tokens`. Returns how many, 0 on timeout or EINTR, -1 with errno set otherwise.
int ccached_epoll_wait(int epoll_fd, uint64_t *tokens, int capacity, int timeout_ms);

/// An eventfd (EFD_CLOEXEC | EFD_NONBLOCK) another thread signals with ccached_eventfd_signal, or
/// -1 with errno set.
int ccached_eventfd_create(void);

/// Adds one to the eventfd's counter, waking whoever polls it.
void ccached_eventfd_signal(int fd);

/// Resets the eventfd's counter (it stays readable until this is called).
void ccached_eventfd_drain(int fd);

#endif
