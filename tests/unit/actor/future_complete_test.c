/*
 * future_complete_test.c - one-shot futures: alloc and accessors,
 * completion and failure exactly once, values and their frees, and
 * callbacks.
 */
#include "future_fixture.h"

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

static void test_fail_message_is_truncated_at_the_maximum(void **state)
{
    (void)state;
    char big[FL_FUTURE_MESSAGE_MAX + 500];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER, "%s", big));
    const char *m = fl_future_message(f);
    assert_int_equal(FL_FUTURE_MESSAGE_MAX - 1, strlen(m));
    assert_int_equal(0, strncmp(m, big, FL_FUTURE_MESSAGE_MAX - 1));
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
        FL_TEST(test_fail_message_is_truncated_at_the_maximum),
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
