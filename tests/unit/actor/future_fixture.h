/*
 * future_fixture.h - what the future_*_test.c programs share: a heap value
 * that counts its frees, callbacks that record what they saw and in which
 * order, a thread that completes a future, and the pending-state check.
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef FUTURE_FIXTURE_H
#define FUTURE_FIXTURE_H

#include "fl_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef FL_SANITIZE
#define SCALE 10
#else
#define SCALE 1
#endif

/* How long a test waits for an event that should come promptly. */
#define WAIT_MS 20000

/* ---- helpers ------------------------------------------------------------- */

/* A heap value that counts its frees. */
typedef struct val {
    atomic_int *freed;
    int x;
} val_t;

static inline val_t *val_new(atomic_int *freed, int x)
{
    val_t *v = malloc(sizeof *v);
    assert_non_null(v);
    v->freed = freed;
    v->x = x;
    return v;
}

static inline void val_free(void *p)
{
    val_t *v = p;
    atomic_fetch_add(v->freed, 1);
    free(v);
}

/* A callback recorder. */
typedef struct rec {
    atomic_int calls;
    atomic_int err;   /* fl_future_error seen inside the callback */
    atomic_bool done; /* fl_future_done seen inside the callback */
    atomic_int seq;   /* slot for the order log */
    int order[16];    /* written by one completing thread at a time */
    pthread_t thread; /* thread of the last call */
} rec_t;

static inline void rec_cb(fl_future_t *f, void *arg)
{
    rec_t *r = arg;
    atomic_store(&r->err, fl_future_error(f));
    atomic_store(&r->done, fl_future_done(f));
    r->thread = pthread_self();
    atomic_fetch_add(&r->calls, 1);
}

typedef struct order_arg {
    rec_t *rec;
    int idx;
} order_arg_t;

static inline void order_cb(fl_future_t *f, void *arg)
{
    (void)f;
    order_arg_t *o = arg;
    int slot = atomic_fetch_add(&o->rec->seq, 1);
    if (slot < 16)
        o->rec->order[slot] = o->idx;
    atomic_fetch_add(&o->rec->calls, 1);
}

static inline void *complete_thread(void *arg)
{
    fl_future_t *f = arg;
    int *rc = malloc(sizeof *rc);
    *rc = fl_future_complete(f, NULL, NULL);
    return rc;
}

static inline int join_rc(pthread_t t)
{
    void *ret = NULL;
    assert_int_equal(0, pthread_join(t, &ret));
    int rc = *(int *)ret;
    free(ret);
    return rc;
}

static inline void assert_pending(fl_future_t *f)
{
    assert_false(fl_future_done(f));
    assert_fl(FL_EPENDING, fl_future_error(f));
    assert_string_equal("", fl_future_message(f));
    assert_null(fl_future_value(f));
}

#endif /* FUTURE_FIXTURE_H */
