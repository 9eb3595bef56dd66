/*
 * mailbox_stress_test.c - many producers, one mailbox: every message arrives
 * exactly once and in per-sender order, from plain threads and from actors.
 */
#include "fl_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FL_SANITIZE
#define SCALE 10
#else
#define SCALE 1
#endif

#define PRODUCERS 8
#define PER_PRODUCER (1000000 / SCALE)
#define TOTAL ((uint64_t)PRODUCERS * PER_PRODUCER)
/* Messages a producer may have in flight (memory bound, not ordering). */
#define WINDOW 65536
/* Messages an actor producer sends per turn. */
#define ACTOR_BATCH 512
#define WAIT_MS 300000

typedef struct payload {
    uint32_t producer;
    uint32_t pad;
    uint64_t seq;
} payload_t;

typedef struct consumer {
    /* Actor-only state (the consumer runs serially). */
    uint64_t next[PRODUCERS];
    uint64_t received;
    /* Shared. */
    atomic_uint_least64_t consumed[PRODUCERS]; /* read by producers */
    atomic_uint_least64_t duplicates_or_gaps;
    atomic_uint_least64_t bad_producer;
    atomic_uint_least64_t bad_sender;
    atomic_uint_least64_t bad_size;
    fl_actor_ref_t senders[PRODUCERS]; /* expected fl_msg_sender */
    fl_test_latch_t *done;
} consumer_t;

static void consumer_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                             fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    consumer_t *c = st;
    if (fl_msg_size(msg) != sizeof(payload_t)) {
        atomic_fetch_add(&c->bad_size, 1);
        return;
    }
    const payload_t *p = fl_msg_data(msg);
    if (p->producer >= PRODUCERS) {
        atomic_fetch_add(&c->bad_producer, 1);
        return;
    }
    if (fl_msg_sender(msg).id != c->senders[p->producer].id)
        atomic_fetch_add(&c->bad_sender, 1);
    /* Per-sender FIFO and exactly once: the next expected sequence only. */
    if (p->seq != c->next[p->producer])
        atomic_fetch_add(&c->duplicates_or_gaps, 1);
    c->next[p->producer] = p->seq + 1;
    atomic_fetch_add_explicit(&c->consumed[p->producer], 1,
                              memory_order_release);
    if (++c->received == TOTAL)
        fl_test_latch_count_down(c->done);
}

static fl_msg_t *make_msg(uint32_t producer, uint64_t seq)
{
    fl_msg_t *m = fl_msg_alloc(1, sizeof(payload_t));
    if (m != NULL) {
        payload_t *p = fl_msg_data(m);
        p->producer = producer;
        p->seq = seq;
    }
    return m;
}

static uint64_t consumed_total(consumer_t *c)
{
    uint64_t n = 0;
    for (int i = 0; i < PRODUCERS; i++)
        n += atomic_load(&c->consumed[i]);
    return n;
}

static void check_consumer(consumer_t *c)
{
    assert_int_equal(0, atomic_load(&c->bad_size));
    assert_int_equal(0, atomic_load(&c->bad_producer));
    assert_int_equal(0, atomic_load(&c->bad_sender));
    assert_int_equal(0, atomic_load(&c->duplicates_or_gaps));
    assert_int_equal(TOTAL, c->received);
    for (int i = 0; i < PRODUCERS; i++) {
        assert_int_equal(PER_PRODUCER, c->next[i]);
        assert_int_equal(PER_PRODUCER, atomic_load(&c->consumed[i]));
    }
}

/* ---- producers as plain threads ------------------------------------------ */

typedef struct producer_thread {
    fl_system_t *sys;
    fl_actor_ref_t to;
    consumer_t *c;
    uint32_t id;
    pthread_barrier_t *start;
    uint64_t send_errors;
    pthread_t tid;
} producer_thread_t;

static void *producer_main(void *arg)
{
    producer_thread_t *p = arg;
    pthread_barrier_wait(p->start);
    for (uint64_t seq = 0; seq < PER_PRODUCER; seq++) {
        while (seq - atomic_load_explicit(&p->c->consumed[p->id],
                                          memory_order_acquire) >=
               WINDOW)
            sched_yield();
        fl_msg_t *m = make_msg(p->id, seq);
        if (m == NULL || fl_tell(p->sys, p->to, m) != FL_OK)
            p->send_errors++;
    }
    return NULL;
}

static void
test_8_threads_x_1m_messages_arrive_once_each_in_sender_order(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(0);
    consumer_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->done = fl_test_latch_alloc(1);
    /* Threads outside the runtime send with sender id 0 (calloc). */
    fl_actor_ref_t to;
    assert_fl_ok(fl_actor_spawn(sys, consumer_receive, c, NULL, &to));

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, PRODUCERS);
    producer_thread_t th[PRODUCERS];
    uint64_t t0 = fl_clock_now_ns();
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        th[i] = (producer_thread_t){
            .sys = sys, .to = to, .c = c, .id = i, .start = &start};
        assert_int_equal(
            0, pthread_create(&th[i].tid, NULL, producer_main, &th[i]));
    }
    for (int i = 0; i < PRODUCERS; i++) {
        assert_int_equal(0, pthread_join(th[i].tid, NULL));
        assert_int_equal(0, th[i].send_errors);
    }
    if (fl_test_latch_wait(c->done, WAIT_MS) != 0)
        fail_msg("consumer got %llu of %llu messages",
                 (unsigned long long)consumed_total(c),
                 (unsigned long long)TOTAL);
    double secs = (double)(fl_clock_now_ns() - t0) / 1e9;
    print_message("%llu messages from threads in %.2f s (%.2f M/s)\n",
                  (unsigned long long)TOTAL, secs, (double)TOTAL / secs / 1e6);
    assert_fl_ok(fl_system_shutdown(sys));
    check_consumer(c);
    fl_system_free(sys);
    pthread_barrier_destroy(&start);
    fl_test_latch_free(c->done);
    free(c);
}

/* ---- producers as actors ---------------------------------------------------
 */

typedef struct producer_actor {
    fl_actor_ref_t to;
    consumer_t *c;
    uint32_t id;
    uint64_t seq; /* actor-only */
    atomic_uint_least64_t send_errors;
} producer_actor_t;

static void producer_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                             fl_msg_t *msg)
{
    (void)msg;
    producer_actor_t *p = st;
    for (int i = 0; i < ACTOR_BATCH && p->seq < PER_PRODUCER; i++) {
        uint64_t consumed =
            atomic_load_explicit(&p->c->consumed[p->id], memory_order_acquire);
        if (p->seq - consumed >= WINDOW)
            break; /* let the consumer catch up; come back next turn */
        fl_msg_t *m = make_msg(p->id, p->seq);
        if (m == NULL || fl_tell(sys, p->to, m) != FL_OK)
            atomic_fetch_add(&p->send_errors, 1);
        p->seq++;
    }
    /* Continue in a later turn so the other actors get the workers too. */
    if (p->seq < PER_PRODUCER &&
        fl_tell(sys, self, fl_msg_alloc(2, 0)) != FL_OK)
        atomic_fetch_add(&p->send_errors, 1);
}

static void
test_8_actors_x_1m_messages_arrive_once_each_in_sender_order(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(0);
    consumer_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->done = fl_test_latch_alloc(1);
    fl_actor_ref_t to;
    assert_fl_ok(fl_actor_spawn(sys, consumer_receive, c, NULL, &to));

    producer_actor_t *pa = calloc(PRODUCERS, sizeof *pa);
    assert_non_null(pa);
    fl_actor_ref_t refs[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        pa[i].to = to;
        pa[i].c = c;
        pa[i].id = i;
        assert_fl_ok(
            fl_actor_spawn(sys, producer_receive, &pa[i], NULL, &refs[i]));
        /* Published to the consumer through the go message's send. */
        c->senders[i] = refs[i];
    }
    uint64_t t0 = fl_clock_now_ns();
    for (int i = 0; i < PRODUCERS; i++)
        assert_fl_ok(fl_tell(sys, refs[i], fl_msg_alloc(2, 0)));
    if (fl_test_latch_wait(c->done, WAIT_MS) != 0)
        fail_msg("consumer got %llu of %llu messages",
                 (unsigned long long)consumed_total(c),
                 (unsigned long long)TOTAL);
    double secs = (double)(fl_clock_now_ns() - t0) / 1e9;
    print_message("%llu messages from actors in %.2f s (%.2f M/s)\n",
                  (unsigned long long)TOTAL, secs, (double)TOTAL / secs / 1e6);
    assert_fl_ok(fl_system_shutdown(sys));
    for (int i = 0; i < PRODUCERS; i++) {
        assert_int_equal(0, atomic_load(&pa[i].send_errors));
        assert_int_equal(PER_PRODUCER, pa[i].seq);
    }
    check_consumer(c);
    fl_system_free(sys);
    fl_test_latch_free(c->done);
    free(pa);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_8_threads_x_1m_messages_arrive_once_each_in_sender_order),
        FL_TEST(test_8_actors_x_1m_messages_arrive_once_each_in_sender_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
