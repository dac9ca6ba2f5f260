/*
 * alloccount: an LD_PRELOAD interposer that counts heap allocations of the whole process.
 * `ninep bench --count-allocations` reads the count through ninep_alloc_calls() before and
 * after its measured window (DESIGN.md promise 5: no allocation per request after warm-up).
 *
 *   cc -O2 -shared -fPIC -o alloccount.so Tools/alloccount/alloccount.c
 *   LD_PRELOAD=./alloccount.so ninep bench --workload read --count-allocations
 *
 * Each wrapper calls glibc's exported __libc_* entry point (no dlsym, so no bootstrap
 * recursion) and adds one to a relaxed atomic counter. free is passed through uncounted.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static uint64_t calls;

static inline void count(void) { __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED); }

uint64_t ninep_alloc_calls(void) { return __atomic_load_n(&calls, __ATOMIC_RELAXED); }

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *pointer, size_t size) { count(); return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    count();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL && size != 0) return ENOMEM;
    *out = pointer;
    return 0;
}
