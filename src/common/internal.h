/*
 * src/common/internal.h - helpers shared by every layer of the library.
 * Private: nothing outside src/ (and tests) includes it.
 */
#ifndef FL_COMMON_INTERNAL_H
#define FL_COMMON_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fling/common.h>

#define FL_CACHE_LINE 64
#define FL_ALIGNED(n) __attribute__((aligned(n)))
#define fl__likely(x) __builtin_expect(!!(x), 1)
#define fl__unlikely(x) __builtin_expect(!!(x), 0)
#define fl__container_of(p, type, member)                                      \
    ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* The allocator seam (alloc.c). All library memory goes through these. */
void *fl__malloc(size_t n);
void *fl__calloc(size_t n, size_t size);
void *fl__realloc(void *p, size_t n);
void fl__free(void *p);
char *fl__strdup(const char *s);
/* Aligned memory through the seam; free with fl__aligned_free. */
void *fl__aligned_alloc(size_t align, size_t n);
void fl__aligned_free(void *p);

/*
 * Testing hook: make the n-th allocation from now fail (and every one after
 * it while `sticky`); n = 0 disarms. Used by the OOM-injection tests.
 */
void fl__alloc_fail_after(uint64_t n, bool sticky);

/* Logging with the level checked before formatting. */
#define FL_LOG(level, ...)                                                     \
    do {                                                                       \
        if ((int)(level) <= (int)fl_log_get_level())                           \
            fl_log((level), __VA_ARGS__);                                      \
    } while (0)

/*
 * Format a one-line reason into why (why_len bytes; NULL or 0: nothing),
 * for decoders and parsers that explain their errors.
 */
void fl__say(char *why, size_t why_len, const char *fmt, ...) FL_PRINTF(3, 4);

/* A spin-wait hint for polling loops. */
static inline void fl__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif /* FL_COMMON_INTERNAL_H */
