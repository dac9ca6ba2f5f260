#define _GNU_SOURCE
#include "CNinePShims.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/syscall.h>

long ninep_send_with_descriptor(int socket, const void *bytes, size_t count, int descriptor, int flags) {
    struct iovec iov = { .iov_base = (void *)bytes, .iov_len = count };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space };
    struct cmsghdr *c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &descriptor, sizeof descriptor);
    ssize_t n;
    do { n = sendmsg(socket, &message, MSG_NOSIGNAL | flags); } while (n < 0 && errno == EINTR);
    return (long)n;
}

/* Room for a few descriptors per recvmsg: a well-behaved server sends at most one per reply;
   more than fit are discarded by the kernel (MSG_CTRUNC), which closes them. */
#define RECEIVE_ROOM 8

long ninep_receive_with_descriptors(int socket, void *buffer, size_t count, int flags, int *descriptors, int capacity, int *received) {
    struct iovec iov = { .iov_base = buffer, .iov_len = count };
    union { struct cmsghdr header; char space[CMSG_SPACE(RECEIVE_ROOM * sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space };
    *received = 0;
    ssize_t n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC | flags);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < fds; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*received < capacity) descriptors[(*received)++] = fd;
            else close(fd);
        }
    }
    return (long)n;
}

int ninep_sealed_memfd(const void *bytes, size_t count) {
    int fd = memfd_create("ninep-localio-nonce", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < count) {
        ssize_t n = pwrite(fd, (const char *)bytes + done, count - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { int saved = errno; close(fd); errno = saved; return -1; }
        done += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int saved = errno; close(fd); errno = saved; return -1;
    }
    return fd;
}

int ninep_memfd_seals(int fd) { return fcntl(fd, F_GET_SEALS); }

int ninep_random_bytes(void *buffer, size_t count) {
    size_t done = 0;
    while (done < count) {
        ssize_t n = getrandom((char *)buffer + done, count - done, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

int ninep_peer_credentials(int socket, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

int ninep_is_unix_socket(int socket) {
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    if (getsockname(socket, (struct sockaddr *)&address, &length) != 0) return -1;
    return address.ss_family == AF_UNIX ? 1 : 0;
}

int ninep_equal_constant_time(const void *a, const void *b, size_t count) {
    const volatile unsigned char *x = a, *y = b;
    unsigned char difference = 0;
    for (size_t i = 0; i < count; i++) difference |= x[i] ^ y[i];
    return difference == 0;
}

int ninep_fd_on_read_only_mount(int fd) {
    struct statvfs s;
    if (fstatvfs(fd, &s) != 0) return -1;
    return (s.f_flag & ST_RDONLY) ? 1 : 0;
}

int ninep_thread_set_euid(uint32_t euid) { return (int)syscall(SYS_setresuid, (uid_t)-1, (uid_t)euid, (uid_t)-1); }
