// localio (docs/LOCALIO.md): descriptors on the stream, the sealed nonce memfd, the peer's
// credentials. In C because the CMSG_* macros, struct ucred and memfd_create need it.
#ifndef CNINEPSHIMS_LOCALIO_H
#define CNINEPSHIMS_LOCALIO_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* sendmsg of `count` bytes with `descriptor` attached (SCM_RIGHTS) to the first of them,
   MSG_NOSIGNAL plus `flags` (MSG_DONTWAIT). Bytes sent (the descriptor went with them when
   > 0), or -1 with errno (EINTR retried). */
long ninep_send_with_descriptor(int socket, const void *bytes, size_t count, int descriptor, int flags);

/* recvmsg of at most `count` bytes with MSG_CMSG_CLOEXEC plus `flags`. Descriptors that came
   with them are stored in `descriptors` (at most `capacity`; any beyond are closed at once) and
   counted in `*received`. Returns bytes read, 0 at end of stream, -1 with errno. */
long ninep_receive_with_descriptors(int socket, void *buffer, size_t count, int flags, int *descriptors, int capacity, int *received);

/* A memfd holding `count` bytes, sealed against writes, growth, shrinking and further seals,
   close-on-exec; -1 with errno. */
int ninep_sealed_memfd(const void *bytes, size_t count);
/* The memfd's seals (F_GET_SEALS); -1 with errno (not a memfd, or unsealable). */
int ninep_memfd_seals(int fd);
#define NINEP_SEALS_REQUIRED 0x000F /* F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE */

/* getrandom(2) until `count` bytes are filled; 0, or -1 with errno. */
int ninep_random_bytes(void *buffer, size_t count);

/* SO_PEERCRED of a unix socket: the peer's pid, uid and gid when it connected. 0, or -1. */
int ninep_peer_credentials(int socket, int32_t *pid, uint32_t *uid, uint32_t *gid);

/* 1 when `socket` is an AF_UNIX socket, 0 when it is another family, -1 with errno. */
int ninep_is_unix_socket(int socket);

/* 1 when the `count` bytes at a and b are equal; the time taken does not depend on where
   they differ. */
int ninep_equal_constant_time(const void *a, const void *b, size_t count);

/* fstatvfs's ST_RDONLY: 1 when the file system of `fd` is mounted read-only, 0 when not, -1. */
int ninep_fd_on_read_only_mount(int fd);

/* This thread's effective uid only (raw setresuid: glibc's would change every thread). For
   tests that need a socket whose SO_PEERCRED names another user. */
int ninep_thread_set_euid(uint32_t euid);

#endif
