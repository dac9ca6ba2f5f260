/*
 * mallocshim: an LD_PRELOAD interposer that counts heap allocations and can make them fail.
 *
 * Built by scripts/build-mallocshim; driven by scripts/mallocshim.py. Used by scripts/bench-allocs
 * (allocations per request after warm-up, DESIGN.md promise 5) and by the malloc failure
 * injection test (Tests/IntegrationTests/MallocFailureTests.swift).
 *
 * Wrapped: malloc, calloc, realloc, reallocarray, free, cfree, posix_memalign, aligned_alloc,
 * memalign, valloc, pvalloc; and pread, pread64, pwrite, pwrite64 (straight to the system call),
 * to fail or shorten them as a memory cgroup at its limit can. Each calls glibc's exported __libc_* entry point, so there is no
 * dlsym and no bootstrap recursion. malloc_usable_size and friends are glibc's own (the blocks
 * are glibc's).
 *
 * CONTROL FILE
 * ------------
 * Path from the environment variable NINEP_MALLOC_CONTROL. Without it the shim only passes
 * calls through (nothing is counted). At load time (a constructor) the shim opens the file
 * O_RDWR|O_CREAT and looks at it:
 *   - If it is at least NINEP_MALLOC_CONTROL_SIZE bytes and starts with the magic and layout
 *     version below, it is used as is: the mode, threshold and backtrace budget that the
 *     controller wrote before starting the process are kept; the counters are reset to zero.
 *   - Otherwise (absent, empty, short, other magic) it is truncated to zero, grown to
 *     NINEP_MALLOC_CONTROL_SIZE bytes (all zero: mode 0) and the header is written.
 * Either way the shim then records its pid and sets `ready` to 1 (release), and maps the
 * file MAP_SHARED. Controllers (mallocshim.py, Swift tests) map or pwrite the same file;
 * every field is a naturally aligned little-endian u64 read and written atomically.
 *
 *   offset  field
 *        0  magic        "NPMALLOC" (0x434f4c4c414d504e as a little-endian u64)
 *        8  layout       1
 *       16  mode         control word (see below), written by the controller
 *       24  threshold    bytes, for mode 2
 *       32  bt_budget    mode 3: how many more allocations to record (decremented by the shim)
 *       40  pid          process that owns the counters (set at load)
 *       48  ready        1 once the shim has mapped the file in that process
 *       64  allocs       successful allocation calls (malloc, calloc, realloc to a size > 0,
 *                        reallocarray, the aligned ones)
 *       72  frees        free/cfree of a non-NULL pointer, and realloc(p, 0)
 *       80  bytes        bytes requested by counted allocations
 *       88  failed       allocations the shim failed on purpose (NULL, errno ENOMEM)
 *       96  reallocs     the subset of allocs that were realloc/reallocarray of a non-NULL pointer
 *      104  bt_recorded  backtraces written in mode 3
 *      112  attempts     allocation calls seen, failed or not
 *      120  io_enomem    the next this many pread/pwrite calls (any of the 64-bit names) fail
 *                        with ENOMEM without reaching the kernel (decremented by the shim), as
 *                        a page-cache charge in a memory cgroup at its limit does
 *      128  io_short     the next this many pread/pwrite calls of more than one byte move half
 *                        the bytes asked (decremented), as one that got only some pages does
 *      136  io_injected  pread/pwrite calls failed or shortened on purpose
 *
 * MODES (the control word)
 *   0  count only
 *   1  count, and fail every allocation from now on (return NULL, errno = ENOMEM)
 *   2  count, and fail allocations larger than `threshold` bytes
 *   3  count, and write a backtrace of each of the next `bt_budget` allocations to the
 *      backtrace file: NINEP_MALLOC_BACKTRACES, or the control path with ".bt" appended.
 *      Each record is "=== alloc <n> <function> size <bytes> tid <tid>" followed by
 *      backtrace_symbols_fd lines; the first record of a process is preceded by a copy of
 *      /proc/self/maps (lines starting "maps ") so addresses can be symbolized offline
 *      (mallocshim.py symbolize).
 *   4  like 1 (fail every allocation), and record the backtraces of the first `bt_budget`
 *      failed allocations as in mode 3: where the process asked for memory it did not get.
 * frees are never failed.
 *
 * Processes: the counters belong to the process that loaded the shim. A child created by fork
 * stops counting (pthread_atfork); a program exec'd with the same LD_PRELOAD and control path
 * would take the file over, so controllers give each process its own file.
 *
 * The shim itself never allocates on the counted path; the recording in mode 3 runs under a
 * per-thread guard so allocations made by backtrace() are neither counted nor recorded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NINEP_MALLOC_MAGIC 0x434f4c4c414d504eULL /* "NPMALLOC" */
#define NINEP_MALLOC_LAYOUT 1ULL
#define NINEP_MALLOC_CONTROL_SIZE 4096

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

struct control {
    uint64_t magic;
    uint64_t layout;
    uint64_t mode;
    uint64_t threshold;
    uint64_t bt_budget;
    uint64_t pid;
    uint64_t ready;
    uint64_t reserved56;
    uint64_t allocs;
    uint64_t frees;
    uint64_t bytes;
    uint64_t failed;
    uint64_t reallocs;
    uint64_t bt_recorded;
    uint64_t attempts;
    uint64_t io_enomem;
    uint64_t io_short;
    uint64_t io_injected;
};

_Static_assert(offsetof(struct control, allocs) == 64, "layout");
_Static_assert(offsetof(struct control, attempts) == 112, "layout");
_Static_assert(offsetof(struct control, io_injected) == 136, "layout");

static struct control *volatile shared; /* NULL: pass through */
static int bt_fd = -1;
static int maps_written;
static char bt_path[4096];
static __thread int in_shim __attribute__((tls_model("initial-exec")));

#define LOAD(field) __atomic_load_n(&shared->field, __ATOMIC_RELAXED)
#define ADD(field, n) __atomic_fetch_add(&shared->field, (n), __ATOMIC_RELAXED)

static void write_all(int fd, const char *text, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, text, length);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return;
        }
        text += n;
        length -= (size_t)n;
    }
}

static size_t format_u64(char *out, uint64_t value) {
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    for (size_t i = 0; i < n; i++) out[i] = digits[n - 1 - i];
    return n;
}

/* Copies /proc/self/maps into the backtrace file, each line prefixed "maps ". */
static void write_maps(int fd) {
    int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (maps < 0) return;
    char buffer[4096];
    int at_line_start = 1;
    for (;;) {
        ssize_t n = read(maps, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        ssize_t start = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (at_line_start) {
                write_all(fd, buffer + start, (size_t)(i - start));
                start = i;
                write_all(fd, "maps ", 5);
                at_line_start = 0;
            }
            if (buffer[i] == '\n') at_line_start = 1;
        }
        write_all(fd, buffer + start, (size_t)(n - start));
    }
    close(maps);
}

static void record_backtrace(const char *function, size_t size) {
    /* Claim one unit of the budget; nothing to do when it is spent. */
    uint64_t budget = __atomic_load_n(&shared->bt_budget, __ATOMIC_RELAXED);
    do {
        if (budget == 0) return;
    } while (!__atomic_compare_exchange_n(&shared->bt_budget, &budget, budget - 1, 0, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    in_shim = 1;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    if (bt_fd < 0) bt_fd = open(bt_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (bt_fd >= 0) {
        if (!maps_written) {
            write_maps(bt_fd);
            maps_written = 1;
        }
        char line[256];
        size_t n = 0;
        uint64_t index = ADD(bt_recorded, 1) + 1;
        const char *parts[] = {"=== alloc ", NULL, " ", function, " size ", NULL, " tid ", NULL, "\n"};
        uint64_t numbers[] = {0, index, 0, 0, 0, size, 0, (uint64_t)syscall(SYS_gettid), 0};
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            if (parts[i]) {
                size_t length = strlen(parts[i]);
                memcpy(line + n, parts[i], length);
                n += length;
            } else {
                n += format_u64(line + n, numbers[i]);
            }
        }
        write_all(bt_fd, line, n);
        void *frames[64];
        int depth = backtrace(frames, 64);
        /* Drop the shim's own two frames (record_backtrace and the wrapper). */
        if (depth > 2) backtrace_symbols_fd(frames + 2, depth - 2, bt_fd);
    }
    pthread_mutex_unlock(&lock);
    in_shim = 0;
}

/* Decides whether an allocation of `size` bytes is failed; counts the attempt. */
static inline int should_fail(const char *function, size_t size) {
    if (shared == NULL || in_shim) return 0;
    ADD(attempts, 1);
    uint64_t mode = LOAD(mode);
    if (mode == 1 || mode == 4 || (mode == 2 && size > LOAD(threshold))) {
        ADD(failed, 1);
        if (mode == 4) record_backtrace(function, size);
        return 1;
    }
    if (mode == 3) record_backtrace(function, size);
    return 0;
}

static inline void counted(void *pointer, size_t size) {
    if (pointer != NULL && shared != NULL && !in_shim) {
        ADD(allocs, 1);
        ADD(bytes, size);
    }
}

void *malloc(size_t size) {
    if (should_fail("malloc", size)) {
        errno = ENOMEM;
        return NULL;
    }
    void *pointer = __libc_malloc(size);
    counted(pointer, size);
    return pointer;
}

void *calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) total = SIZE_MAX;
    if (should_fail("calloc", total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *pointer = __libc_calloc(count, size);
    counted(pointer, total);
    return pointer;
}

void free(void *pointer) {
    if (pointer != NULL && shared != NULL && !in_shim) ADD(frees, 1);
    __libc_free(pointer);
}

void cfree(void *pointer) { free(pointer); }

void *realloc(void *pointer, size_t size) {
    if (pointer != NULL && size == 0) {
        if (shared != NULL && !in_shim) ADD(frees, 1);
        return __libc_realloc(pointer, 0);
    }
    if (should_fail("realloc", size)) {
        errno = ENOMEM;
        return NULL; /* the old block stays valid, as with a real failure */
    }
    void *result = __libc_realloc(pointer, size);
    if (result != NULL && pointer != NULL && shared != NULL && !in_shim) ADD(reallocs, 1);
    counted(result, size);
    return result;
}

void *reallocarray(void *pointer, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(pointer, total);
}

static void *aligned(const char *function, size_t alignment, size_t size) {
    if (should_fail(function, size)) {
        errno = ENOMEM;
        return NULL;
    }
    void *pointer = __libc_memalign(alignment, size);
    counted(pointer, size);
    return pointer;
}

void *memalign(size_t alignment, size_t size) { return aligned("memalign", alignment, size); }

void *aligned_alloc(size_t alignment, size_t size) { return aligned("aligned_alloc", alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    int saved = errno;
    void *pointer = aligned("posix_memalign", alignment, size);
    if (pointer == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *out = pointer;
    return 0;
}

void *valloc(size_t size) {
    if (should_fail("valloc", size)) {
        errno = ENOMEM;
        return NULL;
    }
    void *pointer = __libc_valloc(size);
    counted(pointer, size);
    return pointer;
}

void *pvalloc(size_t size) {
    if (should_fail("pvalloc", size)) {
        errno = ENOMEM;
        return NULL;
    }
    void *pointer = __libc_pvalloc(size);
    counted(pointer, size);
    return pointer;
}

/* Takes one from a countdown field if it is above zero. */
static int take_one(uint64_t *field) {
    uint64_t left = __atomic_load_n(field, __ATOMIC_RELAXED);
    while (left > 0) {
        if (__atomic_compare_exchange_n(field, &left, left - 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return 1;
    }
    return 0;
}

/* What pread/pwrite should do: 0 pass, 1 fail with ENOMEM, 2 move half. */
static int io_injection(size_t count) {
    if (shared == NULL || in_shim) return 0;
    if (take_one(&shared->io_enomem)) {
        ADD(io_injected, 1);
        return 1;
    }
    if (count > 1 && take_one(&shared->io_short)) {
        ADD(io_injected, 1);
        return 2;
    }
    return 0;
}

ssize_t pread64(int fd, void *buffer, size_t count, off_t offset) {
    int injection = io_injection(count);
    if (injection == 1) {
        errno = ENOMEM;
        return -1;
    }
    return syscall(SYS_pread64, fd, buffer, injection == 2 ? count / 2 : count, offset);
}

ssize_t pread(int fd, void *buffer, size_t count, off_t offset) { return pread64(fd, buffer, count, offset); }

ssize_t pwrite64(int fd, const void *buffer, size_t count, off_t offset) {
    int injection = io_injection(count);
    if (injection == 1) {
        errno = ENOMEM;
        return -1;
    }
    return syscall(SYS_pwrite64, fd, buffer, injection == 2 ? count / 2 : count, offset);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) { return pwrite64(fd, buffer, count, offset); }

static void after_fork_in_child(void) {
    /* The counters belong to the parent. */
    shared = NULL;
    if (bt_fd >= 0) close(bt_fd);
    bt_fd = -1;
}

__attribute__((constructor)) static void mallocshim_load(void) {
    const char *path = getenv("NINEP_MALLOC_CONTROL");
    if (path == NULL || path[0] == '\0') return;
    in_shim = 1;
    const char *explicit_bt = getenv("NINEP_MALLOC_BACKTRACES");
    if (explicit_bt != NULL && explicit_bt[0] != '\0') {
        snprintf(bt_path, sizeof bt_path, "%s", explicit_bt);
    } else {
        snprintf(bt_path, sizeof bt_path, "%s.bt", path);
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        dprintf(2, "mallocshim: cannot open %s: %s; counting disabled\n", path, strerror(errno));
        in_shim = 0;
        return;
    }
    struct stat status;
    int valid = 0;
    if (fstat(fd, &status) == 0 && status.st_size >= NINEP_MALLOC_CONTROL_SIZE) {
        uint64_t header[2] = {0, 0};
        if (pread(fd, header, sizeof header, 0) == (ssize_t)sizeof header && header[0] == NINEP_MALLOC_MAGIC &&
            header[1] == NINEP_MALLOC_LAYOUT)
            valid = 1;
    }
    if (!valid) {
        if (ftruncate(fd, 0) != 0 || ftruncate(fd, NINEP_MALLOC_CONTROL_SIZE) != 0) {
            dprintf(2, "mallocshim: cannot size %s: %s; counting disabled\n", path, strerror(errno));
            close(fd);
            in_shim = 0;
            return;
        }
    }
    struct control *mapped = mmap(NULL, NINEP_MALLOC_CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mapped == MAP_FAILED) {
        dprintf(2, "mallocshim: cannot map %s: %s; counting disabled\n", path, strerror(errno));
        in_shim = 0;
        return;
    }
    if (!valid) {
        mapped->layout = NINEP_MALLOC_LAYOUT;
        __atomic_store_n(&mapped->magic, NINEP_MALLOC_MAGIC, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&mapped->allocs, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mapped->frees, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mapped->bytes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mapped->failed, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mapped->reallocs, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mapped->bt_recorded, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mapped->attempts, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mapped->io_injected, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mapped->pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
    /* backtrace() loads libgcc_s (and allocates) on its first call: do that now, not later
     * when allocations may be failing. */
    void *frames[4];
    (void)backtrace(frames, 4);
    pthread_atfork(NULL, NULL, after_fork_in_child);
    shared = mapped;
    __atomic_store_n(&mapped->ready, 1, __ATOMIC_RELEASE);
    in_shim = 0;
}
