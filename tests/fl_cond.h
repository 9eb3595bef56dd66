/*
 * fl_cond.h - condition variables timed on CLOCK_MONOTONIC, for test code
 * with or without cmocka (the remote tests' peer program has none).
 */
#ifndef FL_COND_H
#define FL_COND_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Initialises cv to time its waits on CLOCK_MONOTONIC (fl_test_deadline). */
static inline void fl_test_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* The CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait on a
 * condition made by fl_test_cond_init. */
static inline struct timespec fl_test_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#endif
