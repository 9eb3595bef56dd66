/*
 * future_combine_test.c - futures built on futures: then, compose and all.
 */
#include "future_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
