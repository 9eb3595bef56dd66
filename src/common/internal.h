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
#include <time.h>

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
 * Rate-limited logging: at most FL__LOG_BURST lines per FL__LOG_WINDOW_NS
 * from one call site (one static fl__ratelimit_t each), so that a flood of
 * bad peers cannot flood the log. The first line a site logs in a new
 * window ends with " (K similar lines suppressed)" when the window before
 * suppressed K. A suppressed count is reported only when the site logs
 * again. Any thread; never blocks (a spin lock around a few stores).
 */
#define FL__LOG_BURST 10u
#define FL__LOG_WINDOW_NS 1000000000ull

typedef struct fl__ratelimit {
    _Atomic bool lk;     /* guards the fields below */
    uint64_t window_ns;  /* when the current window began; 0: none yet */
    uint32_t logged;     /* lines logged in it */
    uint32_t suppressed; /* lines dropped in it */
    uint32_t owed;       /* dropped in the windows before, not yet said */
} fl__ratelimit_t;

/*
 * fl__ratelimit_take counts one line of rl's site at now_ns. True if it is
 * to be logged; then *suppressed is how many were dropped since the last
 * logged line of the site (to be said with it). Any thread.
 */
bool fl__ratelimit_take(fl__ratelimit_t *rl, uint64_t now_ns,
                        uint32_t *suppressed);

/* fl_log through rl (fl__ratelimit_take at now_ns): the line, or nothing,
 * with the suppressed count appended. Any thread. */
void fl__log_limited(fl__ratelimit_t *rl, uint64_t now_ns, fl_log_level_t level,
                     const char *fmt, ...) FL_PRINTF(4, 5);

/* FL_LOG, rate-limited per call site (state static to the site). */
#define FL_LOG_RATELIMITED(level, ...)                                         \
    do {                                                                       \
        static fl__ratelimit_t rl__;                                           \
        if ((int)(level) <= (int)fl_log_get_level())                           \
            fl__log_limited(&rl__, fl_clock_now_ns(), (level), __VA_ARGS__);   \
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

/* How far CLOCK_MONOTONIC_COARSE may lag CLOCK_MONOTONIC: one kernel tick
 * (at most 10 ms with HZ >= 100). Its resolution plus 1 ms was measured
 * too little on a loaded virtual machine. */
#define FL__COARSE_SLACK_NS 10000000u

/* CLOCK_MONOTONIC_COARSE in ns: the time of the last kernel tick, behind
 * fl_clock_now_ns() by less than FL__COARSE_SLACK_NS, for a quarter of its
 * cost. A deadline built on it adds the slack so that it never passes
 * early; a check against it passes late, never early. Any thread. */
static inline uint64_t fl__clock_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
