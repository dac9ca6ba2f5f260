// What Swift cannot call directly (variadic prctl/fcntl/ioctl, raw syscalls without glibc
// wrappers, per-thread credential changes) and small fd helpers that format
// /proc/self/fd/N on the stack so the request path never allocates.
#ifndef CNINEPSHIMS_H
#define CNINEPSHIMS_H

// No _GNU_SOURCE here: it would change glibc's struct layouts against Swift's Glibc module.
// GNU-only constants are spelled out below instead.

#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <linux/stat.h>
#include <sys/statfs.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

// --- Linux constants that glibc exposes only under _GNU_SOURCE
#define NINEP_O_PATH 010000000
#define NINEP_O_DIRECT 040000
#define NINEP_O_NOATIME 01000000
#define NINEP_AT_EMPTY_PATH 0x1000
#define NINEP_F_OFD_GETLK 36
#define NINEP_F_OFD_SETLK 37

// --- credentials (per thread: raw syscalls, because glibc broadcasts set*id to all threads)
int ninep_setfsuid(uint32_t uid);
int ninep_setfsgid(uint32_t gid);
// The current fsuid/fsgid, unchanged (setfsuid(-1) fails and reports it): setfsuid and
// setfsgid return the previous value even when they refuse, so a switch is verified this way.
uint32_t ninep_getfsuid(void);
uint32_t ninep_getfsgid(void);
int ninep_thread_setgroups(size_t count, const gid_t *groups);
// Raises (1) or clears (0) this thread's effective capability set; the permitted set stays,
// so the thread can raise them again. Used while acting for a non-root user, since changing
// fsuid clears only the file-system capabilities (CAP_SYS_ADMIN and others would remain).
int ninep_thread_effective_caps(int raise);
int ninep_thread_keep_fsetid(int keep);
// Gives the calling thread its own umask (unshare CLONE_FS) and sets it; -1 with errno if
// the thread cannot have one. Other threads, and the process's umask, are not affected.
int ninep_thread_own_umask(mode_t mask);

// --- process hardening
int ninep_set_io_flusher(void);
int ninep_mlockall(void);

// --- file system helpers (fd is an O_PATH or open descriptor)
int ninep_openat2_beneath(int dirfd, const char *path, int flags, mode_t mode);
int ninep_reopen(int fd, int flags);
int ninep_statx(int fd, const char *path, int flags, unsigned int mask, struct statx *out);
int ninep_fd_truncate(int fd, off_t size);
int ninep_fd_chmod(int fd, mode_t mode);
int ninep_fd_utimens(int fd, const struct timespec times[2]);
int ninep_fd_link(int fd, int newdirfd, const char *newname);
ssize_t ninep_fd_getxattr(int fd, const char *name, void *value, size_t size);
ssize_t ninep_fd_listxattr(int fd, char *list, size_t size);
int ninep_fd_setxattr(int fd, const char *name, const void *value, size_t size, int flags);
int ninep_fd_removexattr(int fd, const char *name);
ssize_t ninep_fd_readlink_path(int fd, char *buf, size_t size);
ssize_t ninep_getdents64(int fd, void *buf, size_t size);
struct ninep_statfs_result {
    uint32_t type, block_size, name_length;
    uint64_t blocks, blocks_free, blocks_available, files, files_free, fsid;
};
int ninep_fstatfs(int fd, struct ninep_statfs_result *out);
// File handles (name_to_handle_at/open_by_handle_at), so that an idle fid can give its
// descriptor back under descriptor pressure and reopen the same inode later.
#define NINEP_HANDLE_CAPACITY 136
int ninep_handle_of(int fd, void *handle, size_t capacity);
int ninep_open_handle(int mountfd, const void *handle, int flags);
int ninep_ofd_lock(int fd, int cmd, struct flock *lock);

// --- signals used to interrupt a worker blocked in a system call
int ninep_interrupt_signal(void);
int ninep_install_interrupt_handler(int signo);
// Blocks SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP (the signal thread waits for them) and SIGPIPE.
int ninep_block_signals_for_thread(void);
int ninep_unblock_interrupt_signal(int signo);
// Waits for SIGINT, SIGTERM, SIGUSR1, SIGUSR2 or SIGHUP; returns which (-1 on error).
int ninep_wait_termination_signal(void);
int ninep_pthread_kill(pthread_t thread, int signo);

// --- readiness (epoll wrappers: epoll_event is a packed struct with a union, awkward in Swift)
#define NINEP_EPOLLIN 0x001
#define NINEP_POLLRDHUP 0x2000

/* preadv2(RWF_NOWAIT): what the page cache holds now; -1 with EAGAIN or EOPNOTSUPP otherwise. */
long ninep_pread_nowait(int fd, void *buffer, size_t count, long long offset);

/* pthread_mutex_init with PTHREAD_MUTEX_ADAPTIVE_NP (spin briefly, then sleep). */
int ninep_mutex_init_adaptive(pthread_mutex_t *mutex);

/* 1 if malloc(n) succeeds right now (the memory is freed again). */
int ninep_can_allocate(size_t n);
void ninep_bound_heap_retention(int arenas, int threshold);

/* sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE): start writeback, do not wait. */
int ninep_start_writeback(int fd, long long offset, long long length);
#define NINEP_EPOLLOUT 0x004
int ninep_epoll_create(void);
int ninep_epoll_add(int epfd, int fd, uint32_t events);
int ninep_epoll_del(int epfd, int fd);
// Waits for up to `capacity` events; stores each ready descriptor in `fds`.
int ninep_epoll_wait(int epfd, int *fds, int capacity, int timeout_ms);
int ninep_eventfd(void);

// --- sockets
int ninep_errno(void);
void ninep_set_errno(int value);
int ninep_set_nodelay(int fd);
pid_t ninep_gettid(void);
int ninep_accept4(int fd, struct sockaddr *addr, socklen_t *len);
/* Receives one descriptor passed with SCM_RIGHTS on `socket` (fusermount3's _FUSE_COMMFD
   protocol), close-on-exec. Returns it; -1 with errno on failure, or with errno 0 when the peer
   closed or sent no descriptor. */
int ninep_receive_descriptor(int socket);
int ninep_set_thread_name(const char *name);
/* "ENOENT" for ENOENT (glibc 2.32+); NULL for a number with no name. */
const char *ninep_errno_name(int value);

// --- counters shared by threads (request statistics): relaxed atomics, no lock, no fence.
static inline void ninep_counter_add(uint64_t *counter, uint64_t value) { __atomic_fetch_add(counter, value, __ATOMIC_RELAXED); }
static inline uint64_t ninep_counter_load(const uint64_t *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }
static inline void ninep_counter_store(uint64_t *counter, uint64_t value) { __atomic_store_n(counter, value, __ATOMIC_RELAXED); }

#include "CNinePShimsLocalIO.h"

#endif
