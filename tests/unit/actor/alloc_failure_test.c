/*
 * alloc_failure_test - out-of-memory injection: the n-th allocation from a
 * point on fails (fl__alloc_fail_after), for every n over a sequence of
 * calls. Every call must then answer FL_OK or FL_ENOMEM (never crash, never
 * half-succeed), and after teardown nothing may leak (the ASan build's
 * LeakSanitizer and the valgrind runs check that).
 */
#include "fl_test.h"

#include "common/internal.h"

#include <stdatomic.h>

static void echo(fl_system_t *sys, fl_actor_ref_t self, void *state,
                 fl_msg_t *msg)
{
    fl_msg_t *r = fl_msg_alloc(2, 8);
    if (r != NULL)
        fl_reply(msg, r); /* if NULL, the ask fails with FL_ENOREPLY */
}

static void hook(fl_system_t *sys, fl_actor_ref_t self, void *state) {}

static void cont(fl_future_t *f, void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

static void cont_free(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

static int map_ok(void *arg, void *value, void **out, fl_free_cb *out_free)
{
    *out = arg;
    return FL_OK;
}

#define ENOMEM_OR_OK(rc)                                                       \
    do {                                                                       \
        int r__ = (rc);                                                        \
        if (r__ != FL_OK && r__ != FL_ENOMEM)                                  \
            fail_msg("%s returned %s", #rc, fl_err_name(r__));                 \
    } while (0)

/* One pass: returns how many calls saw FL_ENOMEM (0 = injection point was
 * past the end of the sequence). */
static int one_pass(uint64_t n)
{
    fl_system_t *sys = fl_test_system(2);
    int enomem = 0;
    /* Settled (run or freed) by the time shutdown returns below. */
    _Atomic int ran = 0;
    fl__alloc_fail_after(n, false);

    fl_actor_opts_t o = {.name = "echo", .on_start = hook, .on_stop = hook};
    fl_actor_ref_t a = {0};
    int rc = fl_actor_spawn(sys, echo, NULL, &o, &a);
    ENOMEM_OR_OK(rc);
    enomem += rc == FL_ENOMEM;
    if (rc == FL_OK) {
        fl_msg_t *m = fl_msg_alloc(1, 8);
        if (m == NULL) {
            enomem++;
        } else {
            fl_future_t *f = NULL;
            rc = fl_ask(sys, a, m, 5000, &f);
            ENOMEM_OR_OK(rc);
            enomem += rc == FL_ENOMEM;
            if (rc == FL_OK) {
                assert_non_null(f);
                /* The echo's reply allocation may be the one that fails. */
                int out = fl_future_wait(f, FL_INFINITE);
                if (out != FL_OK && out != FL_ENOMEM && out != FL_ENOREPLY)
                    fail_msg("ask ended with %s", fl_err_name(out));
                fl_future_t *g = fl_future_then(f, map_ok, NULL);
                if (g == NULL)
                    enomem++;
                rc = fl_future_on_complete_in(f, sys, a, cont, (void *)&ran,
                                              cont_free);
                ENOMEM_OR_OK(rc);
                fl_future_release(g);
                fl_future_release(f);
            } else {
                assert_null(f);
            }
        }
        fl_msg_t *t = fl_msg_alloc(3, 8);
        if (t != NULL) {
            fl_timer_id_t id = 0;
            rc = fl_timer_send(sys, a, t, 1, 0, &id);
            ENOMEM_OR_OK(rc);
            enomem += rc == FL_ENOMEM;
        }
        fl_future_t *term = NULL;
        rc = fl_actor_termination(sys, a, &term);
        ENOMEM_OR_OK(rc);
        enomem += rc == FL_ENOMEM;
        rc = fl_actor_stop(sys, a);
        ENOMEM_OR_OK(rc);
        if (term != NULL) {
            if (rc == FL_OK)
                assert_fl_ok(fl_future_wait(term, 10000));
            fl_future_release(term);
        }
    }
    fl_future_t *lone = fl_future_alloc();
    if (lone == NULL) {
        enomem++;
    } else {
        rc = fl_future_set_timeout(sys, lone, 1);
        ENOMEM_OR_OK(rc);
        fl_future_wait(lone, 5000);
        fl_future_release(lone);
    }
    fl__alloc_fail_after(0, false);
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    /* The continuation either ran or had its argument freed, once. */
    if (atomic_load(&ran) > 1)
        fail_msg("continuation settled %d times", atomic_load(&ran));
    return enomem;
}

static void
test_every_single_allocation_failure_is_reported_not_fatal(void **unused)
{
    int hits = 0;
    for (uint64_t n = 1; n <= 80; n++)
        hits += one_pass(n) > 0;
    /* The sequence allocates well over 20 times: some injections must have
     * surfaced as FL_ENOMEM at the API. */
    assert_true(hits >= 5);
}

static void test_system_alloc_fails_cleanly_without_memory(void **unused)
{
    for (uint64_t n = 1; n <= 8; n++) {
        fl_system_t *sys = (fl_system_t *)(uintptr_t)1;
        fl__alloc_fail_after(n, true);
        int rc = fl_system_alloc(NULL, &sys);
        fl__alloc_fail_after(0, false);
        if (rc == FL_OK) {
            fl_system_free(sys);
        } else {
            assert_fl(FL_ENOMEM, rc);
            assert_null(sys);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_every_single_allocation_failure_is_reported_not_fatal),
        FL_TEST(test_system_alloc_fails_cleanly_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
