#define _GNU_SOURCE
#include "CNinePShims.h"
#include <errno.h>
#include <stdlib.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <sys/fsuid.h>
#include <netinet/tcp.h>
#include <linux/openat2.h>
#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sched.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

int ninep_setfsuid(uint32_t uid) { return (int)syscall(SYS_setfsuid, uid); }
int ninep_setfsgid(uint32_t gid) { return (int)syscall(SYS_setfsgid, gid); }
uint32_t ninep_getfsuid(void) { return (uint32_t)syscall(SYS_setfsuid, (uid_t)-1); }
uint32_t ninep_getfsgid(void) { return (uint32_t)syscall(SYS_setfsgid, (gid_t)-1); }
int ninep_thread_setgroups(size_t count, const gid_t *groups) {
    return (int)syscall(SYS_setgroups, count, groups);
}

int ninep_thread_effective_caps(int raise) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    for (int i = 0; i < 2; i++) data[i].effective = raise ? data[i].permitted : 0;
    return (int)syscall(SYS_capset, &header, data);
}

// Effective capabilities = permitted, without CAP_FSETID unless keep: a write or truncate
// by a thread without it clears setuid and setgid, as the kernel does for an ordinary user.
int ninep_thread_keep_fsetid(int keep) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    for (int i = 0; i < 2; i++) data[i].effective = data[i].permitted;
    if (!keep) data[CAP_FSETID / 32].effective &= ~(1u << (CAP_FSETID % 32));
    return (int)syscall(SYS_capset, &header, data);
}

int ninep_thread_own_umask(mode_t mask) {
    if (unshare(CLONE_FS) != 0) return -1;
    umask(mask);
    return 0;
}

int ninep_set_io_flusher(void) { return prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0); }
int ninep_mlockall(void) { return mlockall(MCL_CURRENT | MCL_FUTURE); }

int ninep_openat2_beneath(int dirfd, const char *path, int flags, mode_t mode) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

#define FD_PATH(buf, fd) char buf[32]; snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd)

// Reopens the file an O_PATH descriptor names, without following any symlink of the
// original path: the magic link resolves to the inode itself.
int ninep_reopen(int fd, int flags) { FD_PATH(p, fd); return open(p, flags | O_CLOEXEC); }

int ninep_statx(int fd, const char *path, int flags, unsigned int mask, struct statx *out) {
    return statx(fd, path, flags, mask, out);
}

int ninep_fd_truncate(int fd, off_t size) { FD_PATH(p, fd); return truncate(p, size); }
int ninep_fd_chmod(int fd, mode_t mode) { FD_PATH(p, fd); return chmod(p, mode); }
int ninep_fd_utimens(int fd, const struct timespec times[2]) {
    FD_PATH(p, fd);
    return utimensat(AT_FDCWD, p, times, 0);
}
int ninep_fd_link(int fd, int newdirfd, const char *newname) {
    FD_PATH(p, fd);
    return linkat(AT_FDCWD, p, newdirfd, newname, AT_SYMLINK_FOLLOW);
}
ssize_t ninep_fd_getxattr(int fd, const char *name, void *value, size_t size) {
    FD_PATH(p, fd);
    return getxattr(p, name, value, size);
}
ssize_t ninep_fd_listxattr(int fd, char *list, size_t size) { FD_PATH(p, fd); return listxattr(p, list, size); }
int ninep_fd_setxattr(int fd, const char *name, const void *value, size_t size, int flags) {
    FD_PATH(p, fd);
    return setxattr(p, name, value, size, flags);
}
int ninep_fd_removexattr(int fd, const char *name) { FD_PATH(p, fd); return removexattr(p, name); }
ssize_t ninep_fd_readlink_path(int fd, char *buf, size_t size) { FD_PATH(p, fd); return readlink(p, buf, size); }

ssize_t ninep_getdents64(int fd, void *buf, size_t size) { return syscall(SYS_getdents64, fd, buf, size); }
int ninep_ofd_lock(int fd, int cmd, struct flock *lock) { return fcntl(fd, cmd, lock); }

int ninep_interrupt_signal(void) { return SIGRTMIN + 3; }
static void ninep_interrupt_handler(int signo) { (void)signo; }
int ninep_install_interrupt_handler(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ninep_interrupt_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: a blocked system call returns EINTR
    return sigaction(signo, &sa, NULL);
}
// The signals the daemon's signal thread waits for (and every other thread blocks).
static void ninep_termination_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
    sigaddset(set, SIGHUP);
}
// Threads start with termination signals blocked so that only the signal thread sees them.
int ninep_block_signals_for_thread(void) {
    sigset_t set;
    ninep_termination_signals(&set);
    sigaddset(&set, SIGPIPE);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}
int ninep_unblock_interrupt_signal(int signo) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}
int ninep_wait_termination_signal(void) {
    sigset_t set;
    ninep_termination_signals(&set);
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return -1;
    return sig;
}
int ninep_pthread_kill(pthread_t thread, int signo) { return pthread_kill(thread, signo); }

int ninep_errno(void) { return errno; }
void ninep_set_errno(int value) { errno = value; }
int ninep_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
pid_t ninep_gettid(void) { return (pid_t)syscall(SYS_gettid); }
int ninep_accept4(int fd, struct sockaddr *addr, socklen_t *len) { return accept4(fd, addr, len, SOCK_CLOEXEC); }
int ninep_receive_descriptor(int socket) {
    char byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space };
    ssize_t n;
    do { n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    }
    errno = 0;
    return -1;
}
int ninep_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
const char *ninep_errno_name(int value) { return strerrorname_np(value); }

int ninep_fstatfs(int fd, struct ninep_statfs_result *out) {
    struct statfs s;
    if (fstatfs(fd, &s) != 0) return -1;
    out->type = (uint32_t)s.f_type;
    out->block_size = (uint32_t)s.f_bsize;
    out->name_length = (uint32_t)s.f_namelen;
    out->blocks = s.f_blocks;
    out->blocks_free = s.f_bfree;
    out->blocks_available = s.f_bavail;
    out->files = s.f_files;
    out->files_free = s.f_ffree;
    uint64_t fsid;
    memcpy(&fsid, &s.f_fsid, sizeof fsid);
    out->fsid = fsid;
    return 0;
}

int ninep_handle_of(int fd, void *handle, size_t capacity) {
    if (capacity < sizeof(struct file_handle) + 8) { errno = EINVAL; return -1; }
    struct file_handle *h = handle;
    h->handle_bytes = (unsigned int)(capacity - sizeof(struct file_handle));
    int mount_id = 0;
    if (name_to_handle_at(fd, "", h, &mount_id, AT_EMPTY_PATH) != 0) return -1;
    return (int)(sizeof(struct file_handle) + h->handle_bytes);
}
int ninep_open_handle(int mountfd, const void *handle, int flags) {
    return open_by_handle_at(mountfd, (struct file_handle *)handle, flags | O_CLOEXEC);
}

int ninep_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
int ninep_epoll_add(int epfd, int fd, uint32_t events) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events | EPOLLONESHOT;
    event.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}
int ninep_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }
int ninep_epoll_wait(int epfd, int *fds, int capacity, int timeout_ms) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int n = epoll_wait(epfd, events, capacity, timeout_ms);
    for (int i = 0; i < n; i++) fds[i] = events[i].data.fd;
    return n;
}
int ninep_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

/* Asks malloc for n bytes and gives them back: 1 if malloc said yes. The volatile pointer
   keeps the compiler from pairing malloc with free and deleting both (LLVM removes an
   unused malloc/free pair and assumes success), which would make the answer always yes. */
int ninep_can_allocate(size_t n) {
    void *volatile probe = malloc(n);
    if (probe == NULL) return 0;
    free(probe);
    return 1;
}

/* At most `arenas` malloc arenas, and fixed mmap and trim thresholds (no growth on free). */
void ninep_bound_heap_retention(int arenas, int threshold) {
    mallopt(M_ARENA_MAX, arenas);
    mallopt(M_MMAP_THRESHOLD, threshold);
    mallopt(M_TRIM_THRESHOLD, threshold);
}

/* Starts writeback of a just-written range without waiting for it (write-behind). */
int ninep_start_writeback(int fd, long long offset, long long length) {
    return (int)syscall(SYS_sync_file_range, fd, offset, length, 2 /* SYNC_FILE_RANGE_WRITE */);
}

/* An adaptive mutex spins briefly before it sleeps: the server's critical sections are a few
   hundred nanoseconds, shorter than a futex round trip. */
int ninep_mutex_init_adaptive(pthread_mutex_t *mutex) {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ADAPTIVE_NP);
    int result = pthread_mutex_init(mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return result;
}

/* preadv2 with RWF_NOWAIT: the bytes that are in the page cache now, or -1/EAGAIN if none
   (or EOPNOTSUPP where the file system cannot tell). Never waits for the disk. */
long ninep_pread_nowait(int fd, void *buffer, size_t count, long long offset) {
    struct iovec vector = { .iov_base = buffer, .iov_len = count };
    return (long)preadv2(fd, &vector, 1, (off_t)offset, RWF_NOWAIT);
}
