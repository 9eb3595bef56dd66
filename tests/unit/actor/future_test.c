/*
 * future_test.c - one-shot futures: completion exactly once, accessors,
 * callbacks, then/compose/all, cancel, timeouts, blocking waits (one or
 * many waiters, a timeout racing the completion) and races.
 */
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

static val_t *val_new(atomic_int *freed, int x)
{
    val_t *v = malloc(sizeof *v);
    assert_non_null(v);
    v->freed = freed;
    v->x = x;
    return v;
}

static void val_free(void *p)
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

static void rec_cb(fl_future_t *f, void *arg)
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

static void order_cb(fl_future_t *f, void *arg)
{
    (void)f;
    order_arg_t *o = arg;
    int slot = atomic_fetch_add(&o->rec->seq, 1);
    if (slot < 16)
        o->rec->order[slot] = o->idx;
    atomic_fetch_add(&o->rec->calls, 1);
}

static void *complete_thread(void *arg)
{
    fl_future_t *f = arg;
    int *rc = malloc(sizeof *rc);
    *rc = fl_future_complete(f, NULL, NULL);
    return rc;
}

static int join_rc(pthread_t t)
{
    void *ret = NULL;
    assert_int_equal(0, pthread_join(t, &ret));
    int rc = *(int *)ret;
    free(ret);
    return rc;
}

static void assert_pending(fl_future_t *f)
{
    assert_false(fl_future_done(f));
    assert_fl(FL_EPENDING, fl_future_error(f));
    assert_string_equal("", fl_future_message(f));
    assert_null(fl_future_value(f));
}

/* ---- alloc and accessors ------------------------------------------------- */

static void test_new_future_is_pending_with_empty_accessors(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_non_null(f);
    assert_pending(f);
    assert_null(fl_future_take_value(f));
    assert_pending(f);
    fl_future_release(f);
}

static void test_null_future_arguments_are_rejected(void **state)
{
    (void)state;
    assert_fl(FL_EINVAL, fl_future_error(NULL));
    assert_fl(FL_EINVAL, fl_future_complete(NULL, NULL, NULL));
    assert_fl(FL_EINVAL, fl_future_wait(NULL, 10));
    assert_null(fl_future_retain(NULL));
    fl_future_release(NULL);
}

static void
test_complete_null_future_returns_einval_and_still_frees_value(void **state)
{
    (void)state;
    atomic_int freed = 0;
    assert_fl(FL_EINVAL,
              fl_future_complete(NULL, val_new(&freed, 1), val_free));
    assert_int_equal(1, atomic_load(&freed));
}

static void test_complete_succeeds_and_exposes_the_value(void **state)
{
    (void)state;
    atomic_int freed = 0;
    fl_future_t *f = fl_future_alloc();
    val_t *v = val_new(&freed, 7);
    assert_fl_ok(fl_future_complete(f, v, val_free));
    assert_true(fl_future_done(f));
    assert_fl_ok(fl_future_error(f));
    assert_string_equal("", fl_future_message(f));
    assert_ptr_equal(v, fl_future_value(f));
    assert_int_equal(0, atomic_load(&freed));
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed));
}

static void
test_second_complete_returns_ealready_and_frees_its_value(void **state)
{
    (void)state;
    atomic_int freed1 = 0, freed2 = 0;
    fl_future_t *f = fl_future_alloc();
    val_t *v1 = val_new(&freed1, 1);
    assert_fl_ok(fl_future_complete(f, v1, val_free));
    assert_fl(FL_EALREADY,
              fl_future_complete(f, val_new(&freed2, 2), val_free));
    assert_int_equal(1, atomic_load(&freed2));
    assert_int_equal(0, atomic_load(&freed1));
    assert_ptr_equal(v1, fl_future_value(f));
    assert_fl_ok(fl_future_error(f));
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed1));
    assert_int_equal(1, atomic_load(&freed2));
}

static void
test_fail_after_complete_returns_ealready_and_keeps_the_value(void **state)
{
    (void)state;
    atomic_int freed = 0;
    fl_future_t *f = fl_future_alloc();
    val_t *v = val_new(&freed, 1);
    assert_fl_ok(fl_future_complete(f, v, val_free));
    assert_fl(FL_EALREADY, fl_future_fail(f, FL_EUSER, "late %d", 1));
    assert_fl_ok(fl_future_error(f));
    assert_string_equal("", fl_future_message(f));
    assert_ptr_equal(v, fl_future_value(f));
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed));
}

static void
test_complete_after_fail_returns_ealready_and_frees_the_value(void **state)
{
    (void)state;
    atomic_int freed = 0;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 1, "first"));
    assert_fl(FL_EALREADY, fl_future_complete(f, val_new(&freed, 1), val_free));
    assert_int_equal(1, atomic_load(&freed));
    assert_fl(FL_EUSER + 1, fl_future_error(f));
    assert_string_equal("first", fl_future_message(f));
    assert_null(fl_future_value(f));
    fl_future_release(f);
}

static void
test_second_fail_returns_ealready_and_keeps_the_first_error(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 1, "first %s", "error"));
    assert_fl(FL_EALREADY, fl_future_fail(f, FL_EUSER + 2, "second"));
    assert_fl(FL_EUSER + 1, fl_future_error(f));
    assert_string_equal("first error", fl_future_message(f));
    fl_future_release(f);
}

static void test_fail_sets_the_code_and_the_formatted_message(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 5, "bad %d of %s", 42, "x"));
    assert_true(fl_future_done(f));
    assert_fl(FL_EUSER + 5, fl_future_error(f));
    assert_string_equal("bad 42 of x", fl_future_message(f));
    assert_null(fl_future_value(f));
    assert_null(fl_future_take_value(f));
    fl_future_release(f);
}

static void test_fail_with_null_format_uses_strerror(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_ENOENT, NULL));
    assert_fl(FL_ENOENT, fl_future_error(f));
    assert_string_equal(fl_strerror(FL_ENOENT), fl_future_message(f));
    fl_future_release(f);

    f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 3, NULL));
    assert_string_equal("application error", fl_future_message(f));
    fl_future_release(f);
}

static void
test_fail_with_fl_ok_is_invalid_and_leaves_the_future_pending(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl(FL_EINVAL, fl_future_fail(f, FL_OK, "no"));
    assert_pending(f);
    fl_future_release(f);
}

static void test_fail_message_is_truncated_at_255_bytes(void **state)
{
    (void)state;
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER, "%s", big));
    const char *m = fl_future_message(f);
    assert_int_equal(255, strlen(m));
    assert_int_equal(0, strncmp(m, big, 255));
    fl_future_release(f);
}

static int failv_helper(fl_future_t *f, int err, const char *fmt, ...)
    FL_PRINTF(3, 4);
static int failv_helper(fl_future_t *f, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fl_future_failv(f, err, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_failv_formats_like_fail(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(failv_helper(f, FL_EUSER + 8, "v%d-%s", 9, "z"));
    assert_fl(FL_EUSER + 8, fl_future_error(f));
    assert_string_equal("v9-z", fl_future_message(f));
    assert_fl(FL_EALREADY, failv_helper(f, FL_EUSER, "again"));
    fl_future_release(f);
}

static void test_take_value_moves_the_value_out_exactly_once(void **state)
{
    (void)state;
    atomic_int freed = 0;
    fl_future_t *f = fl_future_alloc();
    val_t *v = val_new(&freed, 3);
    assert_fl_ok(fl_future_complete(f, v, val_free));
    assert_ptr_equal(v, fl_future_take_value(f));
    assert_null(fl_future_take_value(f));
    assert_fl_ok(fl_future_error(f));
    fl_future_release(f);
    assert_int_equal(0, atomic_load(&freed)); /* ours now */
    val_free(v);
}

static void test_take_value_of_pending_or_failed_future_is_null(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_null(fl_future_take_value(f));
    assert_fl_ok(fl_future_fail(f, FL_EUSER, NULL));
    assert_null(fl_future_take_value(f));
    fl_future_release(f);
}

static void test_value_is_freed_when_the_last_reference_goes(void **state)
{
    (void)state;
    atomic_int freed = 0;
    fl_future_t *f = fl_future_alloc();
    assert_ptr_equal(f, fl_future_retain(f));
    assert_fl_ok(fl_future_complete(f, val_new(&freed, 1), val_free));
    fl_future_release(f);
    assert_int_equal(0, atomic_load(&freed));
    assert_fl_ok(fl_future_error(f)); /* still held by one reference */
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed));
}

/* ---- callbacks ----------------------------------------------------------- */

static void
test_callback_runs_at_once_on_the_caller_if_already_complete(void **state)
{
    (void)state;
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    assert_int_equal(1, atomic_load(&r.calls));
    assert_true(pthread_equal(pthread_self(), r.thread));
    assert_fl_ok(atomic_load(&r.err));
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&r.calls));
}

static void test_callback_runs_once_on_the_completing_thread(void **state)
{
    (void)state;
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    assert_int_equal(0, atomic_load(&r.calls));
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, complete_thread, f));
    assert_fl_ok(join_rc(t));
    assert_int_equal(1, atomic_load(&r.calls));
    assert_true(pthread_equal(t, r.thread));
    assert_true(atomic_load(&r.done));
    assert_fl_ok(atomic_load(&r.err));
    /* Later attempts change nothing and run nothing. */
    assert_fl(FL_EALREADY, fl_future_fail(f, FL_EUSER, NULL));
    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_fl(FL_EALREADY, fl_future_complete(f, NULL, NULL));
    assert_int_equal(1, atomic_load(&r.calls));
    fl_future_release(f);
}

static void test_callback_runs_on_failure_and_sees_the_error(void **state)
{
    (void)state;
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 4, "x"));
    assert_int_equal(1, atomic_load(&r.calls));
    assert_fl(FL_EUSER + 4, atomic_load(&r.err));
    assert_true(atomic_load(&r.done));
    fl_future_release(f);
}

static void test_callbacks_run_in_registration_order(void **state)
{
    (void)state;
    rec_t r = {0};
    order_arg_t args[8];
    fl_future_t *f = fl_future_alloc();
    for (int i = 0; i < 8; i++) {
        args[i].rec = &r;
        args[i].idx = i;
        assert_fl_ok(fl_future_on_complete(f, order_cb, &args[i]));
    }
    assert_int_equal(0, atomic_load(&r.calls));
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_int_equal(8, atomic_load(&r.calls));
    for (int i = 0; i < 8; i++)
        assert_int_equal(i, r.order[i]);
    fl_future_release(f);
    assert_int_equal(8, atomic_load(&r.calls));
}

static void
test_pending_future_released_by_everyone_never_runs_its_callbacks(void **state)
{
    (void)state;
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    fl_future_release(f);
    assert_int_equal(0, atomic_load(&r.calls));
}

/* ---- then ---------------------------------------------------------------- */

typedef struct then_arg {
    atomic_int calls;
    atomic_int *freed;
    int ret; /* what fn returns */
    pthread_t thread;
} then_arg_t;

static int then_double(void *arg, void *value, void **out, fl_free_cb *out_free)
{
    then_arg_t *a = arg;
    atomic_fetch_add(&a->calls, 1);
    a->thread = pthread_self();
    if (a->ret != FL_OK)
        return a->ret;
    val_t *in = value;
    *out = val_new(a->freed, in->x * 2);
    *out_free = val_free;
    return FL_OK;
}

static void test_then_maps_the_value_once_the_source_succeeds(void **state)
{
    (void)state;
    atomic_int freed = 0;
    then_arg_t a = {.freed = &freed, .ret = FL_OK};
    fl_future_t *f = fl_future_alloc();
    fl_future_t *g = fl_future_then(f, then_double, &a);
    assert_non_null(g);
    assert_pending(g);
    assert_int_equal(0, atomic_load(&a.calls));

    pthread_t self = pthread_self();
    assert_fl_ok(fl_future_complete(f, val_new(&freed, 21), val_free));
    assert_int_equal(1, atomic_load(&a.calls));
    assert_true(pthread_equal(self, a.thread));
    assert_true(fl_future_done(g));
    assert_fl_ok(fl_future_error(g));
    val_t *out = fl_future_value(g);
    assert_non_null(out);
    assert_int_equal(42, out->x);
    /* The source keeps its own value. */
    assert_int_equal(21, ((val_t *)fl_future_value(f))->x);

    fl_future_release(f);
    fl_future_release(g);
    assert_int_equal(2, atomic_load(&freed));
    assert_int_equal(1, atomic_load(&a.calls));
}

static void
test_then_on_an_already_successful_future_completes_at_once(void **state)
{
    (void)state;
    atomic_int freed = 0;
    then_arg_t a = {.freed = &freed, .ret = FL_OK};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_complete(f, val_new(&freed, 5), val_free));
    fl_future_t *g = fl_future_then(f, then_double, &a);
    assert_non_null(g);
    assert_true(fl_future_done(g));
    assert_fl_ok(fl_future_error(g));
    assert_int_equal(10, ((val_t *)fl_future_value(g))->x);
    assert_int_equal(1, atomic_load(&a.calls));
    fl_future_release(g);
    fl_future_release(f);
    assert_int_equal(2, atomic_load(&freed));
}

static void
test_then_propagates_failure_code_and_message_without_calling_fn(void **state)
{
    (void)state;
    atomic_int freed = 0;
    then_arg_t a = {.freed = &freed, .ret = FL_OK};
    fl_future_t *f = fl_future_alloc();
    fl_future_t *g = fl_future_then(f, then_double, &a);
    assert_non_null(g);
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 6, "source failed: %s", "disk"));
    assert_true(fl_future_done(g));
    assert_fl(FL_EUSER + 6, fl_future_error(g));
    assert_string_equal("source failed: disk", fl_future_message(g));
    assert_null(fl_future_value(g));
    assert_int_equal(0, atomic_load(&a.calls));
    fl_future_release(f);
    fl_future_release(g);
    assert_int_equal(0, atomic_load(&freed));
}

static void
test_then_fn_returning_an_error_fails_the_derived_future(void **state)
{
    (void)state;
    atomic_int freed = 0;
    then_arg_t a = {.freed = &freed, .ret = FL_EUSER + 2};
    fl_future_t *f = fl_future_alloc();
    fl_future_t *g = fl_future_then(f, then_double, &a);
    assert_non_null(g);
    assert_fl_ok(fl_future_complete(f, val_new(&freed, 1), val_free));
    assert_int_equal(1, atomic_load(&a.calls));
    assert_true(fl_future_done(g));
    assert_fl(FL_EUSER + 2, fl_future_error(g));
    assert_string_equal(fl_strerror(FL_EUSER + 2), fl_future_message(g));
    fl_future_release(g);
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed));

    /* A library code too. */
    a.ret = FL_ENOENT;
    f = fl_future_alloc();
    g = fl_future_then(f, then_double, &a);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl(FL_ENOENT, fl_future_error(g));
    assert_string_equal(fl_strerror(FL_ENOENT), fl_future_message(g));
    fl_future_release(g);
    fl_future_release(f);
}

/* ---- compose ------------------------------------------------------------- */

typedef struct compose_arg {
    atomic_int calls;
    fl_future_t *inner; /* the test's extra reference to the inner future */
    bool return_null;
} compose_arg_t;

static fl_future_t *compose_fn(void *arg, void *value)
{
    (void)value;
    compose_arg_t *a = arg;
    atomic_fetch_add(&a->calls, 1);
    if (a->return_null)
        return NULL;
    fl_future_t *inner = fl_future_alloc();
    a->inner = fl_future_retain(inner);
    return inner; /* gives up one reference */
}

static void
test_compose_takes_the_inner_success_and_moves_its_value(void **state)
{
    (void)state;
    atomic_int freed = 0;
    compose_arg_t a = {0};
    fl_future_t *f = fl_future_alloc();
    fl_future_t *g = fl_future_compose(f, compose_fn, &a);
    assert_non_null(g);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_int_equal(1, atomic_load(&a.calls));
    assert_non_null(a.inner);
    assert_pending(g);

    val_t *v = val_new(&freed, 99);
    assert_fl_ok(fl_future_complete(a.inner, v, val_free));
    assert_true(fl_future_done(g));
    assert_fl_ok(fl_future_error(g));
    assert_ptr_equal(v, fl_future_value(g));

    /* Moved: releasing the inner future does not free it, g's release does. */
    fl_future_release(a.inner);
    fl_future_release(f);
    assert_int_equal(0, atomic_load(&freed));
    fl_future_release(g);
    assert_int_equal(1, atomic_load(&freed));
}

static void test_compose_takes_the_inner_failure_code_and_message(void **state)
{
    (void)state;
    compose_arg_t a = {0};
    fl_future_t *f = fl_future_alloc();
    fl_future_t *g = fl_future_compose(f, compose_fn, &a);
    assert_non_null(g);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_non_null(a.inner);
    assert_fl_ok(fl_future_fail(a.inner, FL_EUSER + 9, "inner %s", "bad"));
    assert_true(fl_future_done(g));
    assert_fl(FL_EUSER + 9, fl_future_error(g));
    assert_string_equal("inner bad", fl_future_message(g));
    fl_future_release(a.inner);
    fl_future_release(f);
    fl_future_release(g);
}

static void
test_compose_propagates_source_failure_without_calling_fn(void **state)
{
    (void)state;
    compose_arg_t a = {0};
    fl_future_t *f = fl_future_alloc();
    fl_future_t *g = fl_future_compose(f, compose_fn, &a);
    assert_non_null(g);
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 10, "outer"));
    assert_true(fl_future_done(g));
    assert_fl(FL_EUSER + 10, fl_future_error(g));
    assert_int_equal(0, atomic_load(&a.calls));
    fl_future_release(f);
    fl_future_release(g);
}

static void test_compose_fn_returning_null_fails_with_enomem(void **state)
{
    (void)state;
    compose_arg_t a = {.return_null = true};
    fl_future_t *f = fl_future_alloc();
    fl_future_t *g = fl_future_compose(f, compose_fn, &a);
    assert_non_null(g);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_int_equal(1, atomic_load(&a.calls));
    assert_true(fl_future_done(g));
    assert_fl(FL_ENOMEM, fl_future_error(g));
    fl_future_release(f);
    fl_future_release(g);
}

/* ---- all ----------------------------------------------------------------- */

static void test_all_succeeds_with_null_once_every_input_succeeds(void **state)
{
    (void)state;
    fl_future_t *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = fl_future_alloc();
    fl_future_t *g = fl_future_all(fs, 3);
    assert_non_null(g);
    assert_pending(g);
    assert_fl_ok(fl_future_complete(fs[1], NULL, NULL));
    assert_fl_ok(fl_future_complete(fs[0], NULL, NULL));
    assert_pending(g);
    assert_fl_ok(fl_future_complete(fs[2], NULL, NULL));
    assert_true(fl_future_done(g));
    assert_fl_ok(fl_future_error(g));
    assert_null(fl_future_value(g));
    for (int i = 0; i < 3; i++)
        fl_future_release(fs[i]);
    fl_future_release(g);
}

static void test_all_fails_at_once_with_the_first_failure(void **state)
{
    (void)state;
    fl_future_t *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = fl_future_alloc();
    fl_future_t *g = fl_future_all(fs, 3);
    assert_non_null(g);
    assert_fl_ok(fl_future_complete(fs[0], NULL, NULL));
    assert_fl_ok(fl_future_fail(fs[2], FL_EUSER + 4, "boom %d", 4));
    /* At once, while fs[1] is still pending. */
    assert_true(fl_future_done(g));
    assert_fl(FL_EUSER + 4, fl_future_error(g));
    assert_string_equal("boom 4", fl_future_message(g));
    /* A later failure does not replace the first. */
    assert_fl_ok(fl_future_fail(fs[1], FL_EUSER + 5, "second"));
    assert_fl(FL_EUSER + 4, fl_future_error(g));
    assert_string_equal("boom 4", fl_future_message(g));
    for (int i = 0; i < 3; i++)
        fl_future_release(fs[i]);
    fl_future_release(g);
}

static void test_all_of_zero_futures_is_already_successful(void **state)
{
    (void)state;
    fl_future_t *g = fl_future_all(NULL, 0);
    assert_non_null(g);
    assert_true(fl_future_done(g));
    assert_fl_ok(fl_future_error(g));
    assert_null(fl_future_value(g));
    fl_future_release(g);

    fl_future_t *one = fl_future_alloc();
    g = fl_future_all(&one, 0);
    assert_non_null(g);
    assert_true(fl_future_done(g));
    assert_fl_ok(fl_future_error(g));
    fl_future_release(g);
    fl_future_release(one);
}

static void test_all_of_null_array_with_inputs_returns_null(void **state)
{
    (void)state;
    assert_null(fl_future_all(NULL, 2));
}

static void test_all_of_already_complete_inputs_completes_at_once(void **state)
{
    (void)state;
    fl_future_t *fs[2];
    fs[0] = fl_future_alloc();
    fs[1] = fl_future_alloc();
    assert_fl_ok(fl_future_complete(fs[0], NULL, NULL));
    assert_fl_ok(fl_future_complete(fs[1], NULL, NULL));
    fl_future_t *g = fl_future_all(fs, 2);
    assert_non_null(g);
    assert_true(fl_future_done(g));
    assert_fl_ok(fl_future_error(g));
    fl_future_release(g);

    assert_fl(FL_EALREADY, fl_future_complete(fs[1], NULL, NULL));
    fl_future_t *h = fl_future_alloc();
    assert_fl_ok(fl_future_fail(h, FL_EUSER + 1, "pre-failed"));
    fl_future_t *mixed[3] = {fs[0], h, fs[1]};
    g = fl_future_all(mixed, 3);
    assert_non_null(g);
    assert_fl(FL_EUSER + 1, fl_future_error(g));
    assert_string_equal("pre-failed", fl_future_message(g));
    fl_future_release(g);
    fl_future_release(h);
    fl_future_release(fs[0]);
    fl_future_release(fs[1]);
}

/* ---- cancel -------------------------------------------------------------- */

typedef struct hook_rec {
    atomic_int calls;
    atomic_int err_in_hook;
    fl_future_t *seen;
} hook_rec_t;

static void hook_cb(fl_future_t *f, void *arg)
{
    hook_rec_t *h = arg;
    h->seen = f;
    atomic_store(&h->err_in_hook, fl_future_error(f));
    atomic_fetch_add(&h->calls, 1);
}

static void
test_cancel_fails_with_ecanceled_then_runs_the_hook_once(void **state)
{
    (void)state;
    hook_rec_t h = {0};
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_set_cancel_hook(f, hook_cb, &h));
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    assert_fl_ok(fl_future_cancel(f));
    assert_true(fl_future_done(f));
    assert_fl(FL_ECANCELED, fl_future_error(f));
    assert_int_equal(1, atomic_load(&h.calls));
    assert_ptr_equal(f, h.seen);
    /* The future is already failed when the hook runs. */
    assert_fl(FL_ECANCELED, atomic_load(&h.err_in_hook));
    assert_int_equal(1, atomic_load(&r.calls));
    assert_fl(FL_ECANCELED, atomic_load(&r.err));

    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_int_equal(1, atomic_load(&h.calls));
    assert_int_equal(1, atomic_load(&r.calls));
    fl_future_release(f);
}

static void test_cancel_without_hook_fails_with_ecanceled(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_cancel(f));
    assert_fl(FL_ECANCELED, fl_future_error(f));
    fl_future_release(f);
}

static void test_cancel_after_complete_returns_ealready_and_never_runs_the_hook(
    void **state)
{
    (void)state;
    hook_rec_t h = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_set_cancel_hook(f, hook_cb, &h));
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_fl_ok(fl_future_error(f));
    assert_int_equal(0, atomic_load(&h.calls));
    fl_future_release(f);
    assert_int_equal(0, atomic_load(&h.calls));
}

static void
test_cancel_hook_does_not_run_when_the_future_fails_otherwise(void **state)
{
    (void)state;
    hook_rec_t h = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_set_cancel_hook(f, hook_cb, &h));
    assert_fl_ok(fl_future_fail(f, FL_EUSER, NULL));
    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_int_equal(0, atomic_load(&h.calls));
    fl_future_release(f);
}

static void
test_set_cancel_hook_on_a_complete_future_returns_ealready(void **state)
{
    (void)state;
    hook_rec_t h = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER, NULL));
    assert_fl(FL_EALREADY, fl_future_set_cancel_hook(f, hook_cb, &h));
    assert_fl(FL_EALREADY, fl_future_cancel(f));
    assert_int_equal(0, atomic_load(&h.calls));
    fl_future_release(f);
}

/* ---- set_timeout --------------------------------------------------------- */

static void test_set_timeout_fails_a_pending_future_with_etimedout(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_future_set_timeout(sys, f, 20));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, WAIT_MS));
    uint64_t elapsed = fl_clock_now_ns() - t0;
    bool done = fl_future_done(f);
    int err = fl_future_error(f);
    char msg[300];
    snprintf(msg, sizeof msg, "%s", fl_future_message(f));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(f);
    /* Checked after the teardown, so a failure leaks nothing. */
    assert_int_equal(1, atomic_load(&r.calls));
    assert_true(done);
    assert_fl(FL_ETIMEDOUT, err);
    if (elapsed < 20 * 1000000ull)
        fail_msg("timed out after %llu ns, before the 20 ms timeout",
                 (unsigned long long)elapsed);
    assert_string_equal("timed out after 20 ms", msg);
}

static void
test_completing_before_the_timeout_wins_and_stays_successful(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    atomic_int freed = 0;
    rec_t r = {0};
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete(f, rec_cb, &r));
    assert_fl_ok(fl_future_set_timeout(sys, f, 30));
    val_t *v = val_new(&freed, 1);
    assert_fl_ok(fl_future_complete(f, v, val_free));

    /* A sentinel timing out well after f's deadline. */
    fl_future_t *sentinel = fl_future_alloc();
    assert_fl_ok(fl_future_set_timeout(sys, sentinel, 90));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(sentinel, WAIT_MS));
    assert_true(fl_future_done(sentinel));

    assert_fl_ok(fl_future_error(f));
    assert_ptr_equal(v, fl_future_value(f));
    assert_string_equal("", fl_future_message(f));
    assert_int_equal(1, atomic_load(&r.calls));
    assert_fl(FL_EALREADY, fl_future_set_timeout(sys, f, 10));

    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(sentinel);
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed));
}

static void test_completing_a_future_cancels_its_timeout_timer(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_system_stats_t st;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_set_timeout(sys, f, 60000));
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(1, st.timers_pending);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl_ok(fl_system_stats(sys, &st));
    assert_int_equal(0, st.timers_pending);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(f);
}

static void test_set_timeout_rejects_bad_arguments(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_future_t *f = fl_future_alloc();
    assert_fl(FL_EINVAL, fl_future_set_timeout(sys, f, 0));
    assert_fl(FL_EINVAL, fl_future_set_timeout(sys, f, -1));
    assert_fl(FL_EINVAL, fl_future_set_timeout(sys, f, FL_INFINITE));
    assert_fl(FL_EINVAL, fl_future_set_timeout(NULL, f, 10));
    assert_fl(FL_EINVAL, fl_future_set_timeout(sys, NULL, 10));
    assert_pending(f);

    fl_future_t *done = fl_future_alloc();
    assert_fl_ok(fl_future_complete(done, NULL, NULL));
    assert_fl(FL_EALREADY, fl_future_set_timeout(sys, done, 10));
    assert_fl_ok(fl_future_error(done));

    assert_fl_ok(fl_system_shutdown(sys));
    assert_fl(FL_ECLOSED, fl_future_set_timeout(sys, f, 10));
    assert_pending(f);
    fl_system_free(sys);
    fl_future_release(done);
    fl_future_release(f);
}

static void
test_shutdown_drops_a_pending_timeout_without_firing_it(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_future_t *f = fl_future_alloc();
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_future_set_timeout(sys, f, 60000));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    /* Shutdown does not wait for the deadline and never times f out; the
     * header leaves open whether f stays pending or fails with FL_ECLOSED
     * (the implementation fails it so nobody waits forever). */
    assert_true(fl_clock_now_ns() - t0 < 30 * 1000000000ull);
    if (fl_future_done(f))
        assert_fl(FL_ECLOSED, fl_future_error(f));
    else
        assert_pending(f);
    fl_future_release(f);
}

/* A wait of 0 ms polls: FL_ETIMEDOUT at once on a pending future (which
 * stays pending), the result of a complete one. 100 polls take far less
 * than one 30 us poll-then-sleep wait each would (8 ms and more). */
static void test_wait_of_zero_ms_is_a_poll(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    uint64_t t0 = fl_clock_now_ns();
    for (int i = 0; i < 100; i++)
        assert_fl(FL_ETIMEDOUT, fl_future_wait(f, 0));
    fl_test_assert_elapsed("100 polls of a pending future",
                           fl_test_ms_since(t0), 0, 4);
    assert_pending(f);
    assert_fl_ok(fl_future_fail(f, FL_ECANCELED, "gone"));
    assert_fl(FL_ECANCELED, fl_future_wait(f, 0));
    fl_future_release(f);

    fl_future_t *g = fl_future_alloc();
    assert_fl_ok(fl_future_complete(g, NULL, NULL));
    assert_fl_ok(fl_future_wait(g, 0));
    fl_future_release(g);
}

/* ---- wait ---------------------------------------------------------------- */

/* fl_future_wait(f, ms) on a future nobody completes: FL_ETIMEDOUT, not
 * before ms, and f still pending. */
static void expect_wait_times_out(fl_future_t *f, int64_t ms)
{
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, ms));
    uint64_t elapsed = fl_clock_now_ns() - t0;
    if (elapsed < (uint64_t)ms * 1000000ull)
        fail_msg("wait returned after %llu ns, before its %lld ms timeout",
                 (unsigned long long)elapsed, (long long)ms);
    assert_pending(f);
}

static void
test_wait_timeout_returns_etimedout_and_leaves_the_future_pending(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    expect_wait_times_out(f, 30);
    assert_false(fl_future_done(f));
    assert_fl(FL_ETIMEDOUT, fl_future_wait(f, 0));
    assert_false(fl_future_done(f));
    fl_future_release(f);
}

static void test_wait_returns_the_result_of_a_complete_future(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl_ok(fl_future_wait(f, FL_INFINITE));
    assert_fl_ok(fl_future_wait(f, 0));
    fl_future_release(f);

    f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 11, NULL));
    assert_fl(FL_EUSER + 11, fl_future_wait(f, 10));
    assert_fl(FL_EUSER + 11, fl_future_wait(f, FL_INFINITE));
    fl_future_release(f);
}

static void test_wait_wakes_when_another_thread_completes(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, complete_thread, f));
    assert_fl_ok(fl_future_wait(f, FL_INFINITE));
    assert_fl_ok(join_rc(t));
    fl_future_release(f);
}

static void test_wait_rejects_null_and_negative_timeouts(void **state)
{
    (void)state;
    fl_future_t *f = fl_future_alloc();
    assert_fl(FL_EINVAL, fl_future_wait(NULL, FL_INFINITE));
    assert_fl(FL_EINVAL, fl_future_wait(f, -2));
    assert_fl(FL_EINVAL, fl_future_wait(f, -1000));
    assert_pending(f);
    fl_future_release(f);
}

/* A wait that timed out leaves nothing of itself on the future: the
 * future, still pending, completes normally afterwards (its completion
 * would wake a waiter that is gone if the wait had stayed registered), and
 * the next waits return FL_OK at once with the value visible. */
static void test_wait_that_timed_out_leaves_the_future_usable(void **state)
{
    (void)state;
    atomic_int freed = 0;
    fl_future_t *f = fl_future_alloc();
    expect_wait_times_out(f, 20);

    val_t *v = val_new(&freed, 17);
    assert_fl_ok(fl_future_complete(f, v, val_free));
    assert_fl_ok(fl_future_error(f));
    assert_ptr_equal(v, fl_future_value(f));
    /* "At once": far below the 5 s the waits would allow. */
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_future_wait(f, 5000));
    assert_fl_ok(fl_future_wait(f, FL_INFINITE));
    fl_test_assert_elapsed("two waits on a complete future",
                           fl_test_ms_since(t0), 0, 1000);
    assert_ptr_equal(v, fl_future_value(f));
    assert_int_equal(0, atomic_load(&freed));
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&freed));
}

/* The scheduler state of thread tid of this process ('R', 'S', ...), or 0
 * when /proc cannot say. */
static char thread_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* "tid (comm) S ...": comm may hold spaces and parentheses. */
    char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' ? p[2] : 0;
}

#define WAITERS 8

/* WAITERS threads blocked in fl_future_wait on one future. */
typedef struct crowd {
    fl_future_t *f;
    atomic_int announced;      /* threads about to call fl_future_wait */
    fl_test_latch_t *returned; /* counted down by each returning wait */
    struct crowd_member {
        struct crowd *crowd;
        pthread_t thread;
        _Atomic pid_t tid; /* set before announcing */
        int rc;            /* read after the join */
        void *value;       /* fl_future_value after the wait */
    } m[WAITERS];
} crowd_t;

static void *crowd_main(void *p)
{
    struct crowd_member *m = p;
    crowd_t *c = m->crowd;
    atomic_store(&m->tid, (pid_t)syscall(SYS_gettid));
    atomic_fetch_add(&c->announced, 1);
    m->rc = fl_future_wait(c->f, FL_INFINITE);
    m->value = fl_future_value(c->f);
    fl_test_latch_count_down(c->returned);
    return NULL;
}

/* Eight threads wait (FL_INFINITE) on one pending future; none returns
 * while it is pending; one completion wakes them all, each with FL_OK and
 * the value. The completion comes once every waiter is seen asleep in the
 * kernel ('S' in /proc: past fl_future_wait's short spin, on its condition
 * variable), so the test covers the sleeping path, not the spin; the
 * assertions hold whatever the waiters were doing (without /proc it waits
 * 50 ms instead, which only makes the sleeping path likely). The crowd is
 * on the heap: if a waiter is never woken the case fails and leaves it to
 * the threads still blocked. */
static void test_one_completion_wakes_every_blocked_waiter(void **state)
{
    (void)state;
    static atomic_int freed; /* static, like the crowd on the heap */
    atomic_store(&freed, 0);
    crowd_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->f = fl_future_alloc();
    assert_non_null(c->f);
    c->returned = fl_test_latch_alloc(WAITERS);
    for (int i = 0; i < WAITERS; i++) {
        c->m[i].crowd = c;
        c->m[i].rc = -1;
        assert_int_equal(
            0, pthread_create(&c->m[i].thread, NULL, crowd_main, &c->m[i]));
    }
    uint64_t t0 = fl_clock_now_ns();
    const struct timespec tick = {0, 200000}; /* 200 us between polls */
    while (atomic_load(&c->announced) < WAITERS) {
        if (fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("%d of %d waiters started", atomic_load(&c->announced),
                     WAITERS);
        nanosleep(&tick, NULL);
    }
    bool asleep[WAITERS] = {false};
    int nasleep = 0;
    while (nasleep < WAITERS) {
        for (int i = 0; i < WAITERS; i++) {
            if (asleep[i])
                continue;
            char st = thread_state(atomic_load(&c->m[i].tid));
            if (st == 0) { /* no /proc */
                const struct timespec grace = {0, 50000000};
                nanosleep(&grace, NULL);
                nasleep = WAITERS;
                break;
            }
            if (st == 'S') {
                asleep[i] = true;
                nasleep++;
            }
        }
        if (nasleep < WAITERS && fl_test_ms_since(t0) > WAIT_MS)
            fail_msg("only %d of %d waiters went to sleep", nasleep, WAITERS);
        if (nasleep < WAITERS)
            nanosleep(&tick, NULL);
    }
    assert_int_equal(WAITERS, fl_test_latch_count(c->returned));
    assert_pending(c->f);

    val_t *v = val_new(&freed, 8);
    assert_fl_ok(fl_future_complete(c->f, v, val_free));
    if (fl_test_latch_wait(c->returned, WAIT_MS) != 0)
        fail_msg("%d of %d waiters still blocked after the completion",
                 (int)fl_test_latch_count(c->returned), WAITERS);
    for (int i = 0; i < WAITERS; i++) {
        assert_int_equal(0, pthread_join(c->m[i].thread, NULL));
        if (c->m[i].rc != FL_OK)
            fail_msg("waiter %d: %s", i, fl_err_name(c->m[i].rc));
        assert_ptr_equal(v, c->m[i].value);
    }
    assert_int_equal(0, atomic_load(&freed));
    fl_future_release(c->f);
    assert_int_equal(1, atomic_load(&freed));
    fl_test_latch_free(c->returned);
    free(c);
}

/* Waits attempted on runtime threads report their code here. */
typedef struct deadlk {
    fl_future_t *pending;
    atomic_int rc;
    atomic_llong elapsed_ns;
    fl_test_latch_t *latch;
} deadlk_t;

static void deadlk_try(deadlk_t *d)
{
    uint64_t t0 = fl_clock_now_ns();
    /* A bounded wait, so a broken implementation fails instead of hanging. */
    int rc = fl_future_wait(d->pending, 2000);
    atomic_store(&d->elapsed_ns, (long long)(fl_clock_now_ns() - t0));
    atomic_store(&d->rc, rc);
    fl_test_latch_count_down(d->latch);
}

static void deadlk_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                           fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    (void)msg;
    deadlk_try(st);
}

static void deadlk_exec(fl_system_t *sys, fl_actor_ref_t self, void *st,
                        void *arg)
{
    (void)sys;
    (void)self;
    (void)st;
    deadlk_try(arg);
}

static void deadlk_timer(fl_system_t *sys, void *arg)
{
    (void)sys;
    deadlk_try(arg);
}

static void assert_deadlk_reported(deadlk_t *d)
{
    assert_int_equal(0, fl_test_latch_wait(d->latch, WAIT_MS));
    assert_fl(FL_EDEADLK, atomic_load(&d->rc));
    /* "without waiting" */
    if (atomic_load(&d->elapsed_ns) >= 1000 * 1000000ll)
        fail_msg("FL_EDEADLK came after %lld ns of waiting",
                 (long long)atomic_load(&d->elapsed_ns));
    assert_pending(d->pending);
}

static void
test_wait_in_a_receive_callback_returns_edeadlk_at_once(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    deadlk_t d = {.pending = fl_future_alloc(),
                  .rc = -1,
                  .latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, deadlk_receive, &d, NULL, &a));
    assert_fl_ok(fl_tell(sys, a, fl_msg_alloc(1, 0)));
    assert_deadlk_reported(&d);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(d.pending);
    fl_test_latch_free(d.latch);
}

static void
test_wait_in_an_actor_exec_function_returns_edeadlk_at_once(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    deadlk_t d = {.pending = fl_future_alloc(),
                  .rc = -1,
                  .latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, deadlk_receive, NULL, NULL, &a));
    assert_fl_ok(fl_actor_exec(sys, a, deadlk_exec, &d, NULL));
    assert_deadlk_reported(&d);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(d.pending);
    fl_test_latch_free(d.latch);
}

static void test_wait_in_a_timer_callback_returns_edeadlk_at_once(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    deadlk_t d = {.pending = fl_future_alloc(),
                  .rc = -1,
                  .latch = fl_test_latch_alloc(1)};
    assert_fl_ok(fl_timer_start(sys, deadlk_timer, &d, 0, 0, NULL));
    assert_deadlk_reported(&d);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_future_release(d.pending);
    fl_test_latch_free(d.latch);
}

/* ---- races --------------------------------------------------------------- */

#define RACE_N 10000
#define RACE_THREADS 4
/* The fifth thread arms the 1 ms timeouts while the others race. */
#define RACE_TIMEOUT_KIND RACE_THREADS

typedef struct race_slot {
    fl_future_t *f;
    atomic_int cb_calls;
    atomic_int hook_calls;
    atomic_int winners; /* bit k: thread k's call returned FL_OK */
    atomic_int wins;    /* FL_OK returns, all threads */
} race_slot_t;

typedef struct race {
    fl_system_t *sys;
    race_slot_t *slots;
    size_t n;
    atomic_int timeout_errors;
    pthread_barrier_t start;
    atomic_int values_freed;
    fl_test_latch_t *callbacks;
} race_t;

typedef struct race_thread {
    race_t *race;
    int kind;
    pthread_t tid;
} race_thread_t;

static void race_value_free(void *p)
{
    atomic_int *c = *(atomic_int **)p;
    atomic_fetch_add(c, 1);
    free(p);
}

static void race_cb(fl_future_t *f, void *arg)
{
    (void)f;
    race_slot_t *s = arg;
    atomic_fetch_add(&s->cb_calls, 1);
}

static void race_done_cb(fl_future_t *f, void *arg)
{
    (void)f;
    fl_test_latch_count_down(arg);
}

static void race_hook(fl_future_t *f, void *arg)
{
    (void)f;
    race_slot_t *s = arg;
    atomic_fetch_add(&s->hook_calls, 1);
}

static void *race_main(void *arg)
{
    race_thread_t *t = arg;
    race_t *r = t->race;
    pthread_barrier_wait(&r->start);
    if (t->kind == RACE_TIMEOUT_KIND) {
        for (size_t i = 0; i < r->n; i++) {
            int rc = fl_future_set_timeout(r->sys, r->slots[i].f, 1);
            if (rc != FL_OK && rc != FL_EALREADY)
                atomic_fetch_add(&r->timeout_errors, 1);
        }
        return NULL;
    }
    /* Each thread starts at its own offset, so every future sees the
     * calls arrive in a different order and at different times. */
    size_t offset = (size_t)t->kind * r->n / RACE_THREADS;
    for (size_t j = 0; j < r->n; j++) {
        size_t i = (j + offset) % r->n;
        race_slot_t *s = &r->slots[i];
        int rc;
        switch (t->kind) {
        case 0: {
            atomic_int **v = malloc(sizeof *v);
            *v = &r->values_freed;
            rc = fl_future_complete(s->f, v, race_value_free);
            break;
        }
        case 1:
            rc = fl_future_fail(s->f, FL_EUSER + 1, "fail %zu", i);
            break;
        case 2:
            rc = fl_future_cancel(s->f);
            break;
        default:
            rc = fl_future_fail(s->f, FL_EUSER + 3, NULL);
            break;
        }
        if (rc == FL_OK) {
            atomic_fetch_or(&s->winners, 1 << t->kind);
            atomic_fetch_add(&s->wins, 1);
        } else if (rc != FL_EALREADY) {
            atomic_fetch_or(&s->winners, 1 << 8); /* unexpected code */
        }
    }
    return NULL;
}

static void
test_racing_complete_fail_cancel_and_timeout_have_one_winner(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    race_t r = {0};
    r.sys = sys;
    r.n = RACE_N;
    r.slots = calloc(r.n, sizeof *r.slots);
    assert_non_null(r.slots);
    r.callbacks = fl_test_latch_alloc(r.n);
    pthread_barrier_init(&r.start, NULL, RACE_THREADS + 1);

    for (size_t i = 0; i < r.n; i++) {
        race_slot_t *s = &r.slots[i];
        s->f = fl_future_alloc();
        assert_non_null(s->f);
        assert_fl_ok(fl_future_on_complete(s->f, race_cb, s));
        assert_fl_ok(fl_future_on_complete(s->f, race_done_cb, r.callbacks));
        assert_fl_ok(fl_future_set_cancel_hook(s->f, race_hook, s));
    }
    race_thread_t th[RACE_THREADS + 1];
    for (int k = 0; k <= RACE_THREADS; k++) {
        th[k].race = &r;
        th[k].kind = k;
        assert_int_equal(0,
                         pthread_create(&th[k].tid, NULL, race_main, &th[k]));
    }
    for (int k = 0; k <= RACE_THREADS; k++)
        assert_int_equal(0, pthread_join(th[k].tid, NULL));
    assert_int_equal(0, atomic_load(&r.timeout_errors));
    assert_int_equal(0, fl_test_latch_wait(r.callbacks, WAIT_MS));
    /* Joins the timer thread: every callback that will run has run. */
    assert_fl_ok(fl_system_shutdown(sys));

    size_t by[RACE_THREADS + 1] = {0};
    for (size_t i = 0; i < r.n; i++) {
        race_slot_t *s = &r.slots[i];
        int w = atomic_load(&s->winners);
        int wins = atomic_load(&s->wins);
        int err = fl_future_error(s->f);
        if (w & (1 << 8))
            fail_msg("future %zu: a losing call returned neither FL_OK nor "
                     "FL_EALREADY",
                     i);
        if (atomic_load(&s->cb_calls) != 1)
            fail_msg("future %zu: callback ran %d times", i,
                     atomic_load(&s->cb_calls));
        if (wins > 1)
            fail_msg("future %zu: %d calls returned FL_OK (mask %#x)", i, wins,
                     w);
        int expect_hook = 0;
        if (wins == 0) {
            if (err != FL_ETIMEDOUT)
                fail_msg("future %zu: no call won but error is %s", i,
                         fl_err_name(err));
            by[RACE_THREADS]++;
        } else if (w == 1) {
            assert_fl_ok(err);
            by[0]++;
        } else if (w == 2) {
            assert_fl(FL_EUSER + 1, err);
            by[1]++;
        } else if (w == 4) {
            assert_fl(FL_ECANCELED, err);
            expect_hook = 1;
            by[2]++;
        } else if (w == 8) {
            assert_fl(FL_EUSER + 3, err);
            by[3]++;
        } else {
            fail_msg("future %zu: winner mask %#x", i, w);
        }
        if (atomic_load(&s->hook_calls) != expect_hook)
            fail_msg("future %zu: cancel hook ran %d times, expected %d", i,
                     atomic_load(&s->hook_calls), expect_hook);
    }
    print_message("race winners: complete %zu, fail %zu, cancel %zu, fail2 "
                  "%zu, timeout %zu\n",
                  by[0], by[1], by[2], by[3], by[4]);
    fl_system_free(sys);
    for (size_t i = 0; i < r.n; i++)
        fl_future_release(r.slots[i].f);
    /* Every value given to complete was freed exactly once, winner or not. */
    assert_int_equal(r.n, (size_t)atomic_load(&r.values_freed));
    pthread_barrier_destroy(&r.start);
    fl_test_latch_free(r.callbacks);
    free(r.slots);
}

/* Registration racing completion: each callback still runs exactly once. */
typedef struct reg_race {
    fl_future_t **fs;
    atomic_int *calls; /* two per future */
    size_t n;
    pthread_barrier_t start;
} reg_race_t;

static void reg_cb(fl_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void *reg_register(void *arg)
{
    reg_race_t *r = arg;
    pthread_barrier_wait(&r->start);
    for (size_t i = 0; i < r->n; i++) {
        if (fl_future_on_complete(r->fs[i], reg_cb, &r->calls[2 * i]) !=
                FL_OK ||
            fl_future_on_complete(r->fs[i], reg_cb, &r->calls[2 * i + 1]) !=
                FL_OK)
            atomic_fetch_add(&r->calls[2 * i], 100);
    }
    return NULL;
}

static void *reg_complete(void *arg)
{
    reg_race_t *r = arg;
    pthread_barrier_wait(&r->start);
    for (size_t i = 0; i < r->n; i++)
        if (fl_future_complete(r->fs[i], NULL, NULL) != FL_OK)
            atomic_fetch_add(&r->calls[2 * i + 1], 100);
    return NULL;
}

static void
test_callback_registration_racing_completion_runs_each_once(void **state)
{
    (void)state;
    reg_race_t r = {0};
    r.n = 20000 / SCALE;
    r.fs = calloc(r.n, sizeof *r.fs);
    r.calls = calloc(2 * r.n, sizeof *r.calls);
    assert_non_null(r.fs);
    assert_non_null(r.calls);
    for (size_t i = 0; i < r.n; i++)
        r.fs[i] = fl_future_alloc();
    pthread_barrier_init(&r.start, NULL, 2);
    pthread_t a, b;
    assert_int_equal(0, pthread_create(&a, NULL, reg_register, &r));
    assert_int_equal(0, pthread_create(&b, NULL, reg_complete, &r));
    assert_int_equal(0, pthread_join(a, NULL));
    assert_int_equal(0, pthread_join(b, NULL));
    for (size_t i = 0; i < 2 * r.n; i++)
        if (atomic_load(&r.calls[i]) != 1)
            fail_msg("future %zu callback %zu: %d runs", i / 2, i % 2,
                     atomic_load(&r.calls[i]));
    for (size_t i = 0; i < r.n; i++)
        fl_future_release(r.fs[i]);
    pthread_barrier_destroy(&r.start);
    free(r.fs);
    free(r.calls);
}

/* A wait timing out just as another thread completes the future. */
#define WR_ROUNDS 2000

typedef struct wait_race {
    /* Round i (from 1) starts when go becomes i (-1: stop) and ends when
     * done does. Both sides spin on them rather than sleep (a wake-up
     * alone can take longer than the window aimed at). The round's fields
     * are written before the release store of go, the result before the
     * one of done. */
    atomic_int go, done;
    fl_future_t *f;
    uint64_t at_ns; /* when to complete (fl_clock_now_ns) */
    int code;       /* FL_OK: complete with v; else fail with it */
    val_t *v;
    int rc;           /* the completion's result */
    uint64_t done_ns; /* when the completion returned */
} wait_race_t;

/* Spins until *a reaches v (or -1, returned as such). */
static int spin_until(atomic_int *a, int v)
{
    int got;
    unsigned spins = 0;
    while ((got = atomic_load_explicit(a, memory_order_acquire)) != v &&
           got != -1)
        if (++spins % 1024 == 0)
            sched_yield(); /* the other side may need this CPU */
    return got;
}

static void *wait_race_completer(void *p)
{
    wait_race_t *r = p;
    for (int i = 1; spin_until(&r->go, i) == i; i++) {
        while (fl_clock_now_ns() < r->at_ns)
            ;
        r->rc = r->code == FL_OK ? fl_future_complete(r->f, r->v, val_free)
                                 : fl_future_fail(r->f, r->code, NULL);
        r->done_ns = fl_clock_now_ns();
        atomic_store_explicit(&r->done, i, memory_order_release);
    }
    return NULL;
}

/* Overwrites the stack below the caller: a waiter the completion still
 * touched after its wait returned would read garbage. */
static __attribute__((noinline)) void scribble_stack(void)
{
    unsigned char junk[8192];
    memset(junk, 0xa5, sizeof junk);
    __asm__ __volatile__("" : : "r"(junk) : "memory");
}

/* Round i's timeout: mostly 0, every fourth 1 ms, every fourth 100 ms (a
 * timeout the completion comes well within). */
static int wait_race_timeout(int i)
{
    static const int timeout_ms[4] = {1, 0, 100, 0};
    return timeout_ms[i % 4];
}

/* When round i completes, in ns after its wait began: with a timeout of
 * 0 or 1 ms in the 100 us after the timeout, where the wait gives up
 * (after its ~30 us spin, the timeout and the kernel's timer slack); with
 * 100 ms from 20 to 50 us, where the wait ends its spin and registers to
 * sleep. */
static uint64_t wait_race_delay(int i, int timeout_ms)
{
    uint64_t sweep = (uint64_t)i * 7919u;
    if (timeout_ms == 100)
        return 20000u + sweep % 30000u;
    return (uint64_t)timeout_ms * 1000000u + sweep % 100000u;
}

/* Rounds of a wait against a completion (or a failure with a code) on
 * another thread at about the same moment (wait_race_delay): so the
 * completion sometimes takes the waiter off the list just as the wait
 * gives up (on a quiet machine a few rounds per run, more under the
 * sanitizers), or comes just as the wait registers. Every wait returns
 * FL_ETIMEDOUT or exactly the completion's result (code, and value on
 * success), and FL_ETIMEDOUT only if the completion returned after the
 * wait's timeout had passed (else the future was no longer pending when
 * the wait gave up); either way the completion succeeds and the future
 * holds its result; some waits see the result. A completion touching a
 * returned waiter's stack is a sanitizer report, and without sanitizers
 * reads the garbage written there after each wait. The round state is on
 * the heap and the counter static, for a completer left running by a
 * failed case. */
static void test_wait_timing_out_as_the_future_completes(void **state)
{
    (void)state;
    static atomic_int freed;
    atomic_store(&freed, 0);
    wait_race_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    atomic_init(&r->go, 0);
    atomic_init(&r->done, 0);
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, wait_race_completer, r));
    int timeouts = 0, results = 0, oks = 0;
    for (int i = 1; i <= WR_ROUNDS; i++) {
        int timeout_ms = wait_race_timeout(i);
        r->f = fl_future_alloc();
        assert_non_null(r->f);
        r->code = i % 2 == 0 ? FL_OK : FL_EUSER + 1 + i % 5;
        r->v = r->code == FL_OK ? val_new(&freed, i) : NULL;
        r->rc = -1;
        uint64_t began = fl_clock_now_ns();
        r->at_ns = began + wait_race_delay(i, timeout_ms);
        atomic_store_explicit(&r->go, i, memory_order_release);
        int rc = fl_future_wait(r->f, timeout_ms);
        scribble_stack();
        spin_until(&r->done, i);
        if (r->rc != FL_OK)
            fail_msg("round %d: the completion returned %s", i,
                     fl_err_name(r->rc));
        if (fl_future_error(r->f) != r->code)
            fail_msg("round %d: the future holds %s, want %s", i,
                     fl_err_name(fl_future_error(r->f)), fl_err_name(r->code));
        if (rc == FL_ETIMEDOUT) {
            uint64_t after = r->done_ns - began;
            if (after < (uint64_t)timeout_ms * 1000000u)
                fail_msg("round %d: the wait (timeout %d ms) timed out, but "
                         "the completion returned %llu ns after it began",
                         i, timeout_ms, (unsigned long long)after);
            timeouts++;
        } else if (rc == r->code) {
            results++;
        } else {
            fail_msg("round %d (timeout %d ms): wait returned %s, want "
                     "FL_ETIMEDOUT or %s",
                     i, timeout_ms, fl_err_name(rc), fl_err_name(r->code));
        }
        if (r->code == FL_OK) {
            assert_ptr_equal(r->v, fl_future_value(r->f));
            oks++;
        }
        fl_future_release(r->f);
    }
    atomic_store_explicit(&r->go, -1, memory_order_release);
    assert_int_equal(0, pthread_join(t, NULL));
    print_message("wait race: %d timed out, %d saw the result\n", timeouts,
                  results);
    assert_int_equal(oks, atomic_load(&freed));
    /* The 100 ms rounds see the result; how many rounds time out is up
     * to the machine (with one CPU free, the completer's busy wait runs
     * before the waiter's give-up and every wait sees the result). */
    if (results == 0)
        fail_msg("no wait saw the result: %d timed out", timeouts);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_new_future_is_pending_with_empty_accessors),
        FL_TEST(test_null_future_arguments_are_rejected),
        FL_TEST(test_complete_null_future_returns_einval_and_still_frees_value),
        FL_TEST(test_complete_succeeds_and_exposes_the_value),
        FL_TEST(test_second_complete_returns_ealready_and_frees_its_value),
        FL_TEST(test_fail_after_complete_returns_ealready_and_keeps_the_value),
        FL_TEST(test_complete_after_fail_returns_ealready_and_frees_the_value),
        FL_TEST(test_second_fail_returns_ealready_and_keeps_the_first_error),
        FL_TEST(test_fail_sets_the_code_and_the_formatted_message),
        FL_TEST(test_fail_with_null_format_uses_strerror),
        FL_TEST(test_fail_with_fl_ok_is_invalid_and_leaves_the_future_pending),
        FL_TEST(test_fail_message_is_truncated_at_255_bytes),
        FL_TEST(test_failv_formats_like_fail),
        FL_TEST(test_take_value_moves_the_value_out_exactly_once),
        FL_TEST(test_take_value_of_pending_or_failed_future_is_null),
        FL_TEST(test_value_is_freed_when_the_last_reference_goes),
        FL_TEST(test_callback_runs_at_once_on_the_caller_if_already_complete),
        FL_TEST(test_callback_runs_once_on_the_completing_thread),
        FL_TEST(test_callback_runs_on_failure_and_sees_the_error),
        FL_TEST(test_callbacks_run_in_registration_order),
        FL_TEST(
            test_pending_future_released_by_everyone_never_runs_its_callbacks),
        FL_TEST(test_then_maps_the_value_once_the_source_succeeds),
        FL_TEST(test_then_on_an_already_successful_future_completes_at_once),
        FL_TEST(
            test_then_propagates_failure_code_and_message_without_calling_fn),
        FL_TEST(test_then_fn_returning_an_error_fails_the_derived_future),
        FL_TEST(test_compose_takes_the_inner_success_and_moves_its_value),
        FL_TEST(test_compose_takes_the_inner_failure_code_and_message),
        FL_TEST(test_compose_propagates_source_failure_without_calling_fn),
        FL_TEST(test_compose_fn_returning_null_fails_with_enomem),
        FL_TEST(test_all_succeeds_with_null_once_every_input_succeeds),
        FL_TEST(test_all_fails_at_once_with_the_first_failure),
        FL_TEST(test_all_of_zero_futures_is_already_successful),
        FL_TEST(test_all_of_null_array_with_inputs_returns_null),
        FL_TEST(test_all_of_already_complete_inputs_completes_at_once),
        FL_TEST(test_cancel_fails_with_ecanceled_then_runs_the_hook_once),
        FL_TEST(test_cancel_without_hook_fails_with_ecanceled),
        FL_TEST(
            test_cancel_after_complete_returns_ealready_and_never_runs_the_hook),
        FL_TEST(test_cancel_hook_does_not_run_when_the_future_fails_otherwise),
        FL_TEST(test_set_cancel_hook_on_a_complete_future_returns_ealready),
        FL_TEST(test_set_timeout_fails_a_pending_future_with_etimedout),
        FL_TEST(test_completing_before_the_timeout_wins_and_stays_successful),
        FL_TEST(test_completing_a_future_cancels_its_timeout_timer),
        FL_TEST(test_set_timeout_rejects_bad_arguments),
        FL_TEST(test_shutdown_drops_a_pending_timeout_without_firing_it),
        FL_TEST(
            test_wait_timeout_returns_etimedout_and_leaves_the_future_pending),
        FL_TEST(test_wait_returns_the_result_of_a_complete_future),
        FL_TEST(test_wait_wakes_when_another_thread_completes),
        FL_TEST(test_wait_rejects_null_and_negative_timeouts),
        FL_TEST(test_wait_of_zero_ms_is_a_poll),
        FL_TEST(test_wait_that_timed_out_leaves_the_future_usable),
        FL_TEST(test_one_completion_wakes_every_blocked_waiter),
        FL_TEST(test_wait_in_a_receive_callback_returns_edeadlk_at_once),
        FL_TEST(test_wait_in_an_actor_exec_function_returns_edeadlk_at_once),
        FL_TEST(test_wait_in_a_timer_callback_returns_edeadlk_at_once),
        FL_TEST(test_racing_complete_fail_cancel_and_timeout_have_one_winner),
        FL_TEST(test_callback_registration_racing_completion_runs_each_once),
        FL_TEST(test_wait_timing_out_as_the_future_completes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
