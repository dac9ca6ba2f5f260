/* unixpair: throughput of a unix stream socket pair on this machine, the in-memory limit for a
 * 9P server reached over a unix socket. A child writes BYTES in CHUNK-byte write(2) calls into
 * one end of socketpair(AF_UNIX, SOCK_STREAM); the parent reads them with CHUNK-byte read(2)
 * calls from the other end. Prints "BYTES SECONDS MIB_PER_SECOND", timed from the fork to the
 * last byte read. Used by scripts/bench-compare (compiled there with cc).
 *
 *   unixpair [BYTES [CHUNK]]        defaults: 4 GiB, 1 MiB
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long long total = argc > 1 ? atoll(argv[1]) : 4LL << 30;
    size_t chunk = argc > 2 ? (size_t)atoll(argv[2]) : (size_t)1 << 20;
    if (total <= 0 || chunk == 0) {
        fprintf(stderr, "usage: unixpair [BYTES [CHUNK]]\n");
        return 64;
    }
    char *buffer = malloc(chunk);
    if (buffer == NULL) return 1;
    memset(buffer, 0x5a, chunk);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) {
        perror("socketpair");
        return 1;
    }
    double began = now();
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        close(pair[0]);
        long long left = total;
        while (left > 0) {
            size_t want = left < (long long)chunk ? (size_t)left : chunk;
            ssize_t n = write(pair[1], buffer, want);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) _exit(1);
            left -= n;
        }
        _exit(0);
    }
    close(pair[1]);
    long long got = 0;
    while (got < total) {
        ssize_t n = read(pair[0], buffer, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += n;
    }
    double seconds = now() - began;
    int status = 0;
    waitpid(child, &status, 0);
    if (got != total || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "unixpair: moved %lld of %lld bytes\n", got, total);
        return 1;
    }
    printf("%lld %.6f %.1f\n", got, seconds, (double)got / seconds / 1048576.0);
    return 0;
}
