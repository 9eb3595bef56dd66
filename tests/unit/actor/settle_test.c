/*
 * settle_test.c - messages that owe an answer by other means than an ask's
 * future (FL__MF_SETTLE, actor/msg.h; an RPC call from the wire is
 * one): the runtime calls their settle function exactly where it fails an
 * unanswered ask, with the code and reason an ask would get, and a
 * receive callback that pays the debt leaves nothing to settle.
 */
#include "fl_test.h"

#include "actor/msg.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define T_OWING 7u

/* What the settle function saw, for the test thread. */
typedef struct record {
    pthread_mutex_t mu;
    int calls;   /* settle calls, paid or not */
    int settled; /* settle calls that found the debt owed */
    int err;
    char why[200];
    bool why_null;
    fl_test_latch_t *done; /* counted down by each settling call */
} record_t;

/* The payload of an owing message: the settle function first. */
typedef struct owing {
    fl__settle_fn settle;
    record_t *rec;
    bool owed;
} owing_t;

static void settle(fl_msg_t *m, int err, const char *why)
{
    owing_t *o = fl_msg_data(m);
    record_t *r = o->rec;
    pthread_mutex_lock(&r->mu);
    r->calls++;
    bool owed = o->owed;
    if (owed) {
        o->owed = false;
        r->settled++;
        r->err = err;
        r->why_null = why == NULL;
        snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    }
    pthread_mutex_unlock(&r->mu);
    if (owed && r->done != NULL)
        fl_test_latch_count_down(r->done);
}

static void record_init(record_t *r, uint64_t expected)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->done = fl_test_latch_alloc(expected);
    assert_non_null(r->done);
}

static void record_fini(record_t *r)
{
    fl_test_latch_free(r->done);
    pthread_mutex_destroy(&r->mu);
}

static fl_msg_t *owing_msg(record_t *r)
{
    fl_msg_t *m = fl_msg_alloc(T_OWING, sizeof(owing_t));
    assert_non_null(m);
    owing_t *o = fl_msg_data(m);
    o->settle = settle;
    o->rec = r;
    o->owed = true;
    m->flags |= FL__MF_SETTLE;
    return m;
}

static void wait_settled(record_t *r)
{
    if (fl_test_latch_wait(r->done, FL_TEST_WAIT_MS) != 0)
        fail_msg("the owing message was not settled in %d ms", FL_TEST_WAIT_MS);
}

/* Asserts exactly one settlement, with err and a reason containing part
 * (NULL: the reason was NULL). */
static void expect_settled(record_t *r, int err, const char *part)
{
    pthread_mutex_lock(&r->mu);
    int settled = r->settled, got = r->err;
    bool why_null = r->why_null;
    char why[sizeof r->why];
    snprintf(why, sizeof why, "%s", r->why);
    pthread_mutex_unlock(&r->mu);
    assert_int_equal(1, settled);
    assert_fl(err, got);
    if (part == NULL) {
        assert_true(why_null);
    } else if (strstr(why, part) == NULL) {
        fail_msg("reason \"%s\" does not contain \"%s\"", why, part);
    }
}

/* ---- actors ---------------------------------------------------------------
 */

/* Ignores everything: an owing message it gets is never paid by it. */
static void ignore_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                           fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    (void)state;
    (void)msg;
}

/* Pays every owing message itself, then counts it on the latch in state. */
static void pay_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                        fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    owing_t *o = fl_msg_data(msg);
    pthread_mutex_lock(&o->rec->mu);
    o->owed = false;
    pthread_mutex_unlock(&o->rec->mu);
    fl_test_latch_count_down(state);
}

/* A gate: the first message blocks its handler until the test opens it. */
typedef struct gate {
    fl_test_latch_t *entered;
    fl_test_latch_t *open;
} gate_t;

static void gate_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    gate_t *g = state;
    if (fl_msg_type(msg) == T_OWING)
        return; /* an owing message left unpaid */
    fl_test_latch_count_down(g->entered);
    if (fl_test_latch_wait(g->open, FL_TEST_WAIT_MS) != 0)
        fprintf(stderr, "settle_test: the gate was never opened\n");
}

static fl_actor_ref_t spawn(fl_system_t *sys, fl_receive_cb fn, void *state)
{
    fl_actor_ref_t ref;
    assert_fl_ok(fl_actor_spawn(sys, fn, state, NULL, &ref));
    return ref;
}

static void stop_and_wait(fl_system_t *sys, fl_actor_ref_t ref)
{
    fl_future_t *t = NULL;
    assert_fl_ok(fl_actor_termination(sys, ref, &t));
    assert_fl_ok(fl_actor_stop(sys, ref));
    assert_fl_ok(fl_future_wait(t, FL_TEST_WAIT_MS));
    fl_future_release(t);
}

/* ---- cases ----------------------------------------------------------------
 */

static void test_tell_to_a_stopped_actor_settles_eunreachable(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_actor_ref_t ref = spawn(sys, ignore_receive, NULL);
    stop_and_wait(sys, ref);
    record_t r;
    record_init(&r, 1);
    assert_fl(FL_EUNREACHABLE, fl_tell(sys, ref, owing_msg(&r)));
    wait_settled(&r);
    expect_settled(&r, FL_EUNREACHABLE, "recipient unreachable: actor");
    expect_settled(&r, FL_EUNREACHABLE, "has stopped or does not exist");
    fl_system_free(sys);
    record_fini(&r);
}

static void test_receive_that_leaves_the_debt_settles_enoreply(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_actor_ref_t ref = spawn(sys, ignore_receive, NULL);
    record_t r;
    record_init(&r, 1);
    assert_fl_ok(fl_tell(sys, ref, owing_msg(&r)));
    wait_settled(&r);
    expect_settled(&r, FL_ENOREPLY, "returned without answering");
    fl_system_free(sys);
    record_fini(&r);
}

static void test_receive_that_pays_leaves_nothing_to_settle(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_test_latch_t *paid = fl_test_latch_alloc(3);
    assert_non_null(paid);
    fl_actor_ref_t ref = spawn(sys, pay_receive, paid);
    record_t r;
    record_init(&r, 1);
    for (int i = 0; i < 3; i++)
        assert_fl_ok(fl_tell(sys, ref, owing_msg(&r)));
    assert_int_equal(0, fl_test_latch_wait(paid, FL_TEST_WAIT_MS));
    /* Every message has been freed once the system is gone. */
    fl_system_free(sys);
    pthread_mutex_lock(&r.mu);
    int settled = r.settled, calls = r.calls;
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(0, settled);
    assert_true(calls >= 3); /* asked after each receive, found paid */
    fl_test_latch_free(paid);
    record_fini(&r);
}

static void test_message_freed_unsent_settles_enoreply(void **state)
{
    (void)state;
    record_t r;
    record_init(&r, 1);
    fl_msg_free(owing_msg(&r));
    expect_settled(&r, FL_ENOREPLY, NULL);
    record_fini(&r);
}

static void test_tell_on_a_closed_system_settles_eclosed(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_actor_ref_t ref = spawn(sys, ignore_receive, NULL);
    assert_fl_ok(fl_system_close(sys));
    record_t r;
    record_init(&r, 1);
    assert_fl(FL_ECLOSED, fl_tell(sys, ref, owing_msg(&r)));
    expect_settled(&r, FL_ECLOSED, "the actor system is closed");
    fl_system_free(sys);
    record_fini(&r);
}

/* Queued behind a message whose handler sees the actor's stop request:
 * the stop takes effect after that message and the queued one is a dead
 * letter. */
static void test_message_queued_at_stop_settles_eunreachable(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    gate_t g = {fl_test_latch_alloc(1), fl_test_latch_alloc(1)};
    assert_non_null(g.entered);
    assert_non_null(g.open);
    fl_actor_ref_t ref = spawn(sys, gate_receive, &g);
    fl_msg_t *first = fl_msg_alloc(1, 0);
    assert_non_null(first);
    assert_fl_ok(fl_tell(sys, ref, first));
    assert_int_equal(0, fl_test_latch_wait(g.entered, FL_TEST_WAIT_MS));
    record_t r;
    record_init(&r, 1);
    assert_fl_ok(fl_tell(sys, ref, owing_msg(&r)));
    fl_future_t *t = NULL;
    assert_fl_ok(fl_actor_termination(sys, ref, &t));
    assert_fl_ok(fl_actor_stop(sys, ref));
    fl_test_latch_count_down(g.open);
    wait_settled(&r);
    expect_settled(&r, FL_EUNREACHABLE, "recipient unreachable: actor");
    assert_fl_ok(fl_future_wait(t, FL_TEST_WAIT_MS));
    fl_future_release(t);
    fl_system_free(sys);
    fl_test_latch_free(g.entered);
    fl_test_latch_free(g.open);
    record_fini(&r);
}

static void test_a_clone_does_not_owe(void **state)
{
    (void)state;
    record_t r;
    record_init(&r, 1);
    fl_msg_t *m = owing_msg(&r);
    fl_msg_t *c = fl__msg_clone(m);
    assert_non_null(c);
    assert_int_equal(0, c->flags & FL__MF_SETTLE);
    fl_msg_free(c);
    pthread_mutex_lock(&r.mu);
    int calls = r.calls;
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(0, calls);
    fl_msg_free(m);
    expect_settled(&r, FL_ENOREPLY, NULL);
    record_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_tell_to_a_stopped_actor_settles_eunreachable),
        FL_TEST(test_receive_that_leaves_the_debt_settles_enoreply),
        FL_TEST(test_receive_that_pays_leaves_nothing_to_settle),
        FL_TEST(test_message_freed_unsent_settles_enoreply),
        FL_TEST(test_tell_on_a_closed_system_settles_eclosed),
        FL_TEST(test_message_queued_at_stop_settles_eunreachable),
        FL_TEST(test_a_clone_does_not_owe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
