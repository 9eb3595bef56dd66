/*
 * src/common/internal.h - helpers shared by every layer of the library.
 * Private: nothing outside src/ (and tests) includes it.
 */
#ifndef FL_COMMON_INTERNAL_H
#define FL_COMMON_INTERNAL_H

#include <sched.h>
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

/*
 * fl__ms_to_ns is ms (>= 0) in nanoseconds and fl__add_sat is a + b, both
 * saturated at UINT64_MAX: a deadline or period built from them never
 * wraps into the past. So a timeout, delay or period of about 1.8e13 ms
 * (584 years) or more, INT64_MAX included, never fires: the one rule for
 * every timer, ask, future timeout and remote call (docs/guide.md,
 * "Timeouts"). Any thread.
 */
static inline uint64_t fl__ms_to_ns(int64_t ms)
{
    return (uint64_t)ms > UINT64_MAX / 1000000u ? UINT64_MAX
                                                : (uint64_t)ms * 1000000u;
}

static inline uint64_t fl__add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A spin-wait hint for polling loops. */
static inline void fl__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * A spin lock for critical sections of a few hundred nanoseconds that
 * never block (a future's state, a connection's read side): an exchange to
 * take it, a store to let go. A waiter spins on a plain load, then yields
 * after 128 rounds, since the holder may have been preempted.
 */
static inline void fl__spin_lock(_Atomic bool *lk)
{
    unsigned spins = 0;
    /* Acquire pairs with the release store in fl__spin_unlock. */
    while (atomic_exchange_explicit(lk, true, memory_order_acquire)) {
        /* Relaxed: only waits; the exchange above takes the lock. */
        while (atomic_load_explicit(lk, memory_order_relaxed)) {
            if (++spins < 128)
                fl__cpu_relax();
            else
                sched_yield();
        }
    }
}

/* Take lk if it is free; true if taken. */
static inline bool fl__spin_trylock(_Atomic bool *lk)
{
    /* As fl__spin_lock: a relaxed look, then the acquiring exchange. */
    return !atomic_load_explicit(lk, memory_order_relaxed) &&
           !atomic_exchange_explicit(lk, true, memory_order_acquire);
}

static inline void fl__spin_unlock(_Atomic bool *lk)
{
    /* Pairs with the acquiring exchange in fl__spin_lock/trylock. */
    atomic_store_explicit(lk, false, memory_order_release);
}

#endif /* FL_COMMON_INTERNAL_H */
