/* log.c - levels, the pluggable sink, and the monotonic clock. */
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

void fl_log(fl_log_level_t level, const char *fmt, ...)
{
    if ((int)level > (int)fl_log_get_level())
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Pair with the release stores in fl_log_set_handler. */
    fl_log_cb cb = atomic_load_explicit(&log_cb, memory_order_acquire);
    if (cb != NULL) {
        cb(atomic_load_explicit(&log_arg, memory_order_acquire), level, buf);
        return;
    }
    fprintf(stderr, "fling %s: %s\n", level_name(level), buf);
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
