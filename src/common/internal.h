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
/* For a hot function the compiler would otherwise call out of line. */
#define FL_ALWAYS_INLINE inline __attribute__((always_inline))
/* A function only error paths call: kept out of line, so that its buffers
 * stay off the frames of the fast paths that may call it. */
#define FL__COLD __attribute__((noinline, cold))
#define fl__container_of(p, type, member)                                      \
    ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* The allocator seam (alloc.c). All library memory goes through these. */
void *fl__malloc(size_t n);
void *fl__calloc(size_t n, size_t size);
void *fl__realloc(void *p, size_t n);
void fl__free(void *p);
char *fl__strdup(const char *s);
/*
 * n zeroed bytes aligned to a cache line (to a page with the default
 * allocator, which takes them from mmap: pages are committed as they are
 * first touched, and no padding page is touched). *raw is what to give
 * fl__pages_free(raw, n). NULL when out of memory. Any thread.
 */
void *fl__pages_alloc(size_t n, void **raw);
void fl__pages_free(void *raw, size_t n);

/* Aligned memory through the seam; free with fl__aligned_free. */
void *fl__aligned_alloc(size_t align, size_t n);
void fl__aligned_free(void *p);

/*
 * Testing hook: make the n-th allocation from now fail (and every one after
 * it while `sticky`); n = 0 disarms. Used by the OOM-injection tests.
 */
void fl__alloc_fail_after(uint64_t n, bool sticky);

/*
 * Logging. Each library file logs as the component of its folder
 * (FL_LOG_COMPONENT, a compile definition set per folder in
 * CMakeLists.txt; a file may #undef and redefine it after its includes).
 */
#ifndef FL_LOG_COMPONENT
#define FL_LOG_COMPONENT FL_LOGC_COMMON
#endif

/*
 * Per component, the most verbose level enabled (fl_log_level_t). Before
 * the environment was read it is FL__LOG_UNREAD, which lets every check
 * pass into fl__log_emit, where the first log reads it.
 */
#define FL__LOG_UNREAD 255u
extern _Atomic uint8_t fl__log_max[FL_LOG_COMPONENT_MAX];

/* True if level may be enabled for comp: ONE relaxed load, no lock, so a
 * disabled log site costs a load and a compare. Relaxed: the table
 * publishes nothing else. */
static inline bool fl__log_on(unsigned comp, fl_log_level_t level)
{
    return (unsigned)level <=
           atomic_load_explicit(&fl__log_max[comp], memory_order_relaxed);
}

/*
 * Build and emit a record (fields borrowed): the slow path of the macros
 * below, after fl__log_on passed. Re-checks the level (the first call
 * reads the environment). Any thread.
 */
void fl__log_emit(unsigned comp, fl_log_level_t level,
                  const fl_log_field_t *fields, size_t nfields, const char *fmt,
                  ...) FL_PRINTF(5, 6);

/*
 * Fields for FL_LOG_KV: FL_KV(FL_F("endpoint", ep->id), FL_F("peer", p)).
 * FL_FU64 formats a number into a buffer of the log site's block; every
 * field is evaluated only after the level check passed.
 */
#define FL_F(k, v)                                                             \
    {                                                                          \
        (k), (v)                                                               \
    }
#define FL_FU64(k, n)                                                          \
    {                                                                          \
        (k), fl__log_u64((char[24]){""}, (uint64_t)(n))                        \
    }
#define FL_KV(...)                                                             \
    (const fl_log_field_t[]){__VA_ARGS__},                                     \
        sizeof((const fl_log_field_t[]){__VA_ARGS__}) / sizeof(fl_log_field_t)
#define FL_NOKV NULL, 0

/* n in decimal into buf (24 bytes); returns buf. */
const char *fl__log_u64(char *buf, uint64_t n);

/* A record at level, with fields (FL_KV(...) or FL_NOKV), formatted only
 * if the level is enabled for this file's component. */
#define FL_LOG_KV(level, fields, ...)                                          \
    do {                                                                       \
        if (fl__log_on(FL_LOG_COMPONENT, (level)))                             \
            fl__log_emit(FL_LOG_COMPONENT, (level), fields, __VA_ARGS__);      \
    } while (0)

/* A record with no fields. */
#define FL_LOG(level, ...) FL_LOG_KV(level, FL_NOKV, __VA_ARGS__)

/*
 * Rate-limited logging: at most `burst` lines (FL__LOG_BURST unless the
 * site says) per FL__LOG_WINDOW_NS from one call site (one static
 * fl__ratelimit_t each), so that a flood of bad peers cannot flood the
 * log. The first line a site logs in a new window carries the count of
 * the lines suppressed before it (fl_log_record_t.suppressed and a field
 * "suppressed"); a count is said only when the site logs again. Any
 * thread; never blocks (a spin lock around a few stores).
 */
#define FL__LOG_BURST 10u
#define FL__LOG_WINDOW_NS 1000000000ull

typedef struct fl__ratelimit {
    _Atomic bool lk;     /* guards the fields below */
    uint32_t burst;      /* lines per window; 0: FL__LOG_BURST */
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

/* fl__log_emit through rl (fl__ratelimit_take at fl__log_now()): the
 * record, or nothing, with the suppressed count. Takes budget only if
 * the level is enabled. Any thread. */
void fl__log_limited(fl__ratelimit_t *rl, unsigned comp, fl_log_level_t level,
                     const fl_log_field_t *fields, size_t nfields,
                     const char *fmt, ...) FL_PRINTF(6, 7);

/* The clock of the rate limits: fl_clock_now_ns, unless a test set
 * another (fl__log_set_clock; NULL restores it). */
uint64_t fl__log_now(void);
void fl__log_set_clock(uint64_t (*now)(void));

/* FL_LOG_KV, rate-limited per call site to `burst` lines a window. */
#define FL_LOG_RATELIMITED_KV(level, per_window, fields, ...)                  \
    do {                                                                       \
        static fl__ratelimit_t rl__ = {.burst = (per_window)};                 \
        if (fl__log_on(FL_LOG_COMPONENT, (level)))                             \
            fl__log_limited(&rl__, FL_LOG_COMPONENT, (level), fields,          \
                            __VA_ARGS__);                                      \
    } while (0)

/* FL_LOG, rate-limited per call site (FL__LOG_BURST lines a window). */
#define FL_LOG_RATELIMITED(level, ...)                                         \
    FL_LOG_RATELIMITED_KV(level, FL__LOG_BURST, FL_NOKV, __VA_ARGS__)

/* Testing hook: forget the levels and traces, so that the next log reads
 * FLING_LOG and FLING_TRACE again. */
void fl__log_reset(void);

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

/* How far CLOCK_MONOTONIC_COARSE may lag CLOCK_MONOTONIC: its lag was
 * measured up to 1.6 kernel ticks (6.4 ms with HZ = 250, loaded or not);
 * its resolution plus 1 ms was too little on a loaded virtual machine.
 * Enough with a tick of 4 ms or less (HZ >= 250); the timers check that
 * (timer.c). */
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
