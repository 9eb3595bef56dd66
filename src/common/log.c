/* log.c - levels, the pluggable sink, rate-limited lines, and the
 * monotonic clock. */
#include "common/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* -1 = not read from the environment yet. */
static _Atomic int log_level = -1;
static _Atomic(fl_log_cb) log_cb;
static _Atomic(void *) log_arg;

static int level_from_env(void)
{
    const char *e = getenv("FLING_LOG");
    if (e == NULL)
        return FL_LOG_WARN;
    if (strcmp(e, "error") == 0)
        return FL_LOG_ERROR;
    if (strcmp(e, "info") == 0)
        return FL_LOG_INFO;
    if (strcmp(e, "debug") == 0)
        return FL_LOG_DEBUG;
    return FL_LOG_WARN;
}

void fl_log_set_level(fl_log_level_t level)
{
    /* Relaxed: a level alone, nothing published with it. */
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

fl_log_level_t fl_log_get_level(void)
{
    /* Relaxed: see fl_log_set_level. */
    int l = atomic_load_explicit(&log_level, memory_order_relaxed);
    if (fl__unlikely(l < 0)) {
        int expected = -1;
        /* Racing first readers all compute the same value; relaxed, as the
         * level publishes nothing. */
        atomic_compare_exchange_strong_explicit(
            &log_level, &expected, level_from_env(), memory_order_relaxed,
            memory_order_relaxed);
        l = atomic_load_explicit(&log_level, memory_order_relaxed);
    }
    return (fl_log_level_t)l;
}

void fl_log_set_handler(fl_log_cb cb, void *arg)
{
    /* Pairs with the acquire loads in fl_log: arg is published first. */
    atomic_store_explicit(&log_arg, arg, memory_order_release);
    atomic_store_explicit(&log_cb, cb, memory_order_release);
}

static const char *level_name(fl_log_level_t l)
{
    switch (l) {
    case FL_LOG_ERROR:
        return "error";
    case FL_LOG_WARN:
        return "warn";
    case FL_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* Format the line (with the count of suppressed lines if any) and hand it
 * to the sink. */
static void log_v(fl_log_level_t level, uint32_t suppressed, const char *fmt,
                  va_list ap) FL_PRINTF(3, 0);

static void log_v(fl_log_level_t level, uint32_t suppressed, const char *fmt,
                  va_list ap)
{
    char buf[512];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (suppressed != 0 && n >= 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n,
                 " (%u similar lines suppressed)", (unsigned)suppressed);
    /* Pair with the release stores in fl_log_set_handler. */
    fl_log_cb cb = atomic_load_explicit(&log_cb, memory_order_acquire);
    if (cb != NULL) {
        cb(atomic_load_explicit(&log_arg, memory_order_acquire), level, buf);
        return;
    }
    fprintf(stderr, "fling %s: %s\n", level_name(level), buf);
}

void fl_log(fl_log_level_t level, const char *fmt, ...)
{
    if ((int)level > (int)fl_log_get_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, 0, fmt, ap);
    va_end(ap);
}

bool fl__ratelimit_take(fl__ratelimit_t *rl, uint64_t now_ns,
                        uint32_t *suppressed)
{
    fl__spin_lock(&rl->lk);
    if (rl->window_ns == 0 || now_ns - rl->window_ns >= FL__LOG_WINDOW_NS) {
        rl->owed += rl->suppressed;
        rl->window_ns = now_ns != 0 ? now_ns : 1;
        rl->logged = 0;
        rl->suppressed = 0;
    }
    bool take = rl->logged < FL__LOG_BURST;
    if (take) {
        rl->logged++;
        *suppressed = rl->owed;
        rl->owed = 0;
    } else if (rl->suppressed < UINT32_MAX) {
        rl->suppressed++;
    }
    fl__spin_unlock(&rl->lk);
    return take;
}

void fl__log_limited(fl__ratelimit_t *rl, uint64_t now_ns, fl_log_level_t level,
                     const char *fmt, ...)
{
    uint32_t suppressed = 0;
    if ((int)level > (int)fl_log_get_level() ||
        !fl__ratelimit_take(rl, now_ns, &suppressed))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, suppressed, fmt, ap);
    va_end(ap);
}

uint64_t fl_clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void fl__say(char *why, size_t why_len, const char *fmt, ...)
{
    if (why == NULL || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}
