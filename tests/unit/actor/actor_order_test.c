/*
 * actor_order_test.c - an actor runs serially and sees one sender's
 * messages in order.
 */
#include "actor_fixture.h"

/* ---- serial execution and ordering ------------------------------------- */

#define CONC_THREADS 4
#define CONC_PER_THREAD (20000 / SCALE)

typedef struct conc {
    atomic_bool in_actor;
    atomic_int overlaps;
    atomic_int handled;
    atomic_int order_errors;
    int next[CONC_THREADS]; /* actor-only: next expected sequence */
    int total;
    fl_test_latch_t *done;
    fl_system_t *sys;
    fl_actor_ref_t ref;
    pthread_barrier_t start;
    atomic_int send_errors;
} conc_t;

static void conc_enter(conc_t *c)
{
    if (atomic_exchange(&c->in_actor, true))
        atomic_fetch_add(&c->overlaps, 1);
    /* Widen the window a little. */
    for (volatile int i = 0; i < 50; i++) {
    }
}

static void conc_leave(conc_t *c)
{
    atomic_store(&c->in_actor, false);
    if (atomic_fetch_add(&c->handled, 1) + 1 == c->total)
        fl_test_latch_count_down(c->done);
}

static void conc_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                         fl_msg_t *msg)
{
    (void)sys;
    (void)self;
    conc_t *c = st;
    conc_enter(c);
    int *d = fl_msg_data(msg);
    if (d[1] != c->next[d[0]])
        atomic_fetch_add(&c->order_errors, 1);
    c->next[d[0]] = d[1] + 1;
    conc_leave(c);
}

static void conc_exec(fl_system_t *sys, fl_actor_ref_t self, void *st,
                      void *arg)
{
    (void)sys;
    (void)self;
    (void)arg;
    conc_t *c = st;
    conc_enter(c);
    conc_leave(c);
}

typedef struct conc_thread {
    conc_t *c;
    int id;
    pthread_t tid;
} conc_thread_t;

static void *conc_sender(void *arg)
{
    conc_thread_t *t = arg;
    conc_t *c = t->c;
    pthread_barrier_wait(&c->start);
    for (int i = 0; i < CONC_PER_THREAD; i++) {
        fl_msg_t *m = fl_msg_alloc(1, 2 * sizeof(int));
        int *d = fl_msg_data(m);
        d[0] = t->id;
        d[1] = i;
        if (fl_tell(c->sys, c->ref, m) != FL_OK)
            atomic_fetch_add(&c->send_errors, 1);
        if (i % 10 == 0 &&
            fl_actor_exec(c->sys, c->ref, conc_exec, NULL, NULL) != FL_OK)
            atomic_fetch_add(&c->send_errors, 1);
    }
    return NULL;
}

static void test_actor_never_runs_concurrently_with_itself(void **state)
{
    (void)state;
    conc_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->sys = fl_test_system(2);
    c->total = CONC_THREADS * (CONC_PER_THREAD + (CONC_PER_THREAD + 9) / 10);
    c->done = fl_test_latch_alloc(1);
    pthread_barrier_init(&c->start, NULL, CONC_THREADS);
    assert_fl_ok(fl_actor_spawn(c->sys, conc_receive, c, NULL, &c->ref));
    conc_thread_t th[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        th[i].c = c;
        th[i].id = i;
        assert_int_equal(0,
                         pthread_create(&th[i].tid, NULL, conc_sender, &th[i]));
    }
    for (int i = 0; i < CONC_THREADS; i++)
        assert_int_equal(0, pthread_join(th[i].tid, NULL));
    assert_int_equal(0, atomic_load(&c->send_errors));
    fl_test_latch_await(c->done);
    assert_int_equal(0, atomic_load(&c->overlaps));
    assert_int_equal(0, atomic_load(&c->order_errors));
    assert_int_equal(c->total, atomic_load(&c->handled));
    for (int i = 0; i < CONC_THREADS; i++)
        assert_int_equal(CONC_PER_THREAD, c->next[i]);
    end_system(c->sys);
    pthread_barrier_destroy(&c->start);
    fl_test_latch_free(c->done);
    free(c);
}

static void test_messages_from_one_sender_arrive_in_the_order_sent(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t *p = calloc(1, sizeof *p);
    spawn_probe_told(sys, p, LOG_MAX);
    for (int i = 0; i < LOG_MAX; i++)
        if (p->log[i] != i)
            fail_msg("message %d arrived at position %d", p->log[i], i);
    end_system(sys);
    fl_test_latch_free(p->got);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_actor_never_runs_concurrently_with_itself),
        FL_TEST(test_messages_from_one_sender_arrive_in_the_order_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
