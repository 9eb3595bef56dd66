/*
 * pool_trim_test.c - a flood's memory goes back to the allocator once it
 * has drained (issue 14, item 16): the block pool keeps a bounded amount
 * of free blocks (common/pool.h, FL__POOL_KEEP_BYTES), not everything a
 * burst ever allocated.
 *
 * SENDERS threads outside the runtime tell NMSGS messages in all to one
 * actor whose first message holds it until every message is queued, so
 * that they all live at once; then it drains them. The bytes fling holds
 * are counted through fl_replace_allocator (tests/fl_alloc.h): at the
 * peak they must have grown by the messages' size at least, and once the
 * queue has drained (and the senders have exited) they must come back
 * within KEEP_BOUND of the baseline: the workers give the surplus back
 * when they run out of work, so the test waits (FL_TEST_WAIT_MS at most)
 * for the count to get there.
 */
#include "fl_alloc.h"
#include "fl_test.h"

#include "common/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#ifdef FL_SANITIZE
#define NMSGS 200000u
#else
#define NMSGS 1000000u
#endif
#define SENDERS 4u
#define PAYLOAD 64u /* header + payload: a 128-byte block */
#define MSG_HOLD 1u
#define MSG_DATA 2u

/* What the pool may keep after the drain: a class's shared stack, and
 * less than a batch in each thread's cache (a few threads), rounded up. */
#define KEEP_BOUND ((int64_t)FL__POOL_KEEP_BYTES * 2)

typedef struct sink {
    fl_test_latch_t *gate;    /* opened once every message is queued */
    fl_test_latch_t *drained; /* counted down by the last message */
    uint64_t got;             /* the actor's alone */
} sink_t;

static void sink_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                         fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    sink_t *s = state;
    if (fl_msg_type(msg) == MSG_HOLD) {
        fl_test_latch_wait(s->gate, FL_TEST_WAIT_MS);
        return;
    }
    if (++s->got == NMSGS)
        fl_test_latch_count_down(s->drained);
}

typedef struct sender {
    pthread_t thread;
    fl_system_t *sys;
    fl_actor_ref_t to;
    int failed; /* the first code fl_tell returned that was not FL_OK */
} sender_t;

static void *sender_main(void *arg)
{
    sender_t *s = arg;
    for (unsigned i = 0; i < NMSGS / SENDERS && s->failed == FL_OK; i++) {
        fl_msg_t *m = fl_msg_alloc(MSG_DATA, PAYLOAD);
        s->failed = m == NULL ? FL_ENOMEM : fl_tell(s->sys, s->to, m);
    }
    return NULL;
}

static void test_a_drained_flood_gives_its_memory_back(void **unused)
{
    (void)unused;
    fl_system_t *sys = fl_test_system(2);
    sink_t sink = {.gate = fl_test_latch_alloc(1),
                   .drained = fl_test_latch_alloc(1)};
    fl_actor_ref_t a = {0};
    assert_fl_ok(fl_actor_spawn(sys, sink_receive, &sink, NULL, &a));
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(MSG_HOLD, 0)));
    int64_t base = fl_alloc_live();

    sender_t senders[SENDERS];
    for (unsigned i = 0; i < SENDERS; i++) {
        senders[i] = (sender_t){.sys = sys, .to = a};
        assert_int_equal(0, pthread_create(&senders[i].thread, NULL,
                                           sender_main, &senders[i]));
    }
    for (unsigned i = 0; i < SENDERS; i++) {
        pthread_join(senders[i].thread, NULL);
        assert_fl_ok(senders[i].failed);
    }
    int64_t peak = fl_alloc_live();
    fl_test_latch_count_down(sink.gate);
    assert_int_equal(0, fl_test_latch_wait(sink.drained, FL_TEST_WAIT_MS));
    uint64_t t0 = fl_clock_now_ns();
    int64_t after = fl_alloc_live();
    while (after - base > KEEP_BOUND &&
           fl_test_ms_since(t0) < FL_TEST_WAIT_MS) {
        sched_yield();
        after = fl_alloc_live();
    }
    print_message("live bytes: baseline %lld, peak +%lld, after the drain "
                  "+%lld (bound %lld) within %llu ms\n",
                  (long long)base, (long long)(peak - base),
                  (long long)(after - base), (long long)KEEP_BOUND,
                  (unsigned long long)fl_test_ms_since(t0));
    assert_true(peak - base >= (int64_t)NMSGS * 128);
    if (after - base > KEEP_BOUND)
        fail_msg("%d ms after the drain fling still holds %lld bytes more "
                 "than before the flood (at most %lld kept)",
                 FL_TEST_WAIT_MS, (long long)(after - base),
                 (long long)KEEP_BOUND);

    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
    fl_test_latch_free(sink.gate);
    fl_test_latch_free(sink.drained);
}

int main(void)
{
    if (fl_alloc_install() != FL_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        FL_TEST(test_a_drained_flood_gives_its_memory_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
