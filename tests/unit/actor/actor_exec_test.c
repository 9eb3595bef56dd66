/*
 * actor_exec_test.c - exec on an actor's thread in mailbox order, and
 * on_complete_in: future callbacks run inside an actor.
 */
#include "actor_fixture.h"

/* ---- exec and on_complete_in --------------------------------------------- */

typedef struct exec_log {
    probe_t *p; /* shares the probe's log */
    fl_actor_ref_t ref;
    int value;
    atomic_int *ran;
    atomic_int *freed;
    atomic_bool *wrong_thread;
} exec_log_t;

static void exec_log_free(void *arg)
{
    atomic_fetch_add(((exec_log_t *)arg)->freed, 1);
}

static void exec_append(fl_system_t *sys, fl_actor_ref_t self, void *st,
                        void *arg)
{
    exec_log_t *e = arg;
    probe_t *p = st;
    if (fl_self().id != e->ref.id || self.id != e->ref.id || p != e->p ||
        fl_system_current() != sys)
        atomic_store(e->wrong_thread, true);
    int n = atomic_fetch_add(&p->received, 1);
    if (n < LOG_MAX)
        p->log[n] = e->value;
    atomic_fetch_add(e->ran, 1);
    if (p->got)
        fl_test_latch_count_down(p->got);
}

static void test_exec_runs_on_the_actors_thread_in_mailbox_order(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    enum { N = 200 };
    p.got = fl_test_latch_alloc(N);
    atomic_int ran = 0, freed = 0;
    atomic_bool wrong = false;
    exec_log_t args[N];
    fl_actor_ref_t a = spawn_probe(sys, &p, NULL);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, i)));
        } else {
            args[i] = (exec_log_t){.p = &p,
                                   .ref = a,
                                   .value = i,
                                   .ran = &ran,
                                   .freed = &freed,
                                   .wrong_thread = &wrong};
            assert_fl_ok(
                fl_actor_exec(sys, a, exec_append, &args[i], exec_log_free));
        }
    }
    fl_test_latch_await(p.got);
    for (int i = 0; i < N; i++)
        if (p.log[i] != i)
            fail_msg("position %d holds %d: exec out of mailbox order", i,
                     p.log[i]);
    assert_int_equal(N / 2, atomic_load(&ran));
    assert_false(atomic_load(&wrong));
    end_system(sys);
    /* fn ran, so arg_free was never needed. */
    assert_int_equal(0, atomic_load(&freed));
    fl_test_latch_free(p.got);
}

static void
test_exec_on_a_stopped_actor_returns_eunreachable_and_frees_arg(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    atomic_int freed = 0;
    fl_actor_ref_t a = spawn_stopped_noop(sys);
    assert_fl(FL_EUNREACHABLE,
              fl_actor_exec(sys, a, noop_exec, &freed, count_free));
    assert_int_equal(1, atomic_load(&freed));
    /* A NULL arg_free is fine. */
    assert_fl(FL_EUNREACHABLE, fl_actor_exec(sys, a, noop_exec, &freed, NULL));
    end_system(sys);
}

static void
test_exec_queued_behind_a_stop_frees_arg_instead_of_running(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    tracked_t t = {.freed_latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a = spawn_blocked_probe(sys, &p, 0);
    assert_fl_ok(fl_actor_exec(sys, a, tracked_exec, &t, tracked_free));
    fl_future_t *term = termination_of(sys, a);
    assert_fl_ok(fl_actor_stop(sys, a));
    fl_test_latch_count_down(p.block);
    fl_test_latch_await(t.freed_latch);
    wait_terminated(term);
    end_system(sys);
    assert_int_equal(0, atomic_load(&t.ran));
    assert_int_equal(1, atomic_load(&t.freed));
    assert_int_equal(1, atomic_load(&p.stopped));
    probe_free_latches(&p);
    fl_test_latch_free(t.freed_latch);
}

typedef struct in_actor {
    fl_system_t *sys;
    fl_actor_ref_t ref;
    atomic_int ran;
    atomic_bool on_actor; /* fl_self() == ref and current == sys */
    atomic_bool saw_done;
    atomic_int err_seen;
    atomic_int freed;
    fl_test_latch_t *latch;
} in_actor_t;

static void in_actor_free(void *arg)
{
    atomic_fetch_add(&((in_actor_t *)arg)->freed, 1);
}

static void in_actor_cb(fl_future_t *f, void *arg)
{
    in_actor_t *x = arg;
    atomic_store(&x->on_actor,
                 fl_self().id == x->ref.id && fl_system_current() == x->sys);
    atomic_store(&x->saw_done, fl_future_done(f));
    atomic_store(&x->err_seen, fl_future_error(f));
    atomic_fetch_add(&x->ran, 1);
    fl_test_latch_count_down(x->latch);
}

static void
test_on_complete_in_runs_the_callback_on_the_actors_thread(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    in_actor_t x = {.sys = sys, .latch = fl_test_latch_alloc(1)};
    x.ref = spawn_noop(sys);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete_in(f, sys, x.ref, in_actor_cb, &x,
                                          in_actor_free));
    assert_int_equal(0, atomic_load(&x.ran));
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 1, NULL));
    fl_test_latch_await(x.latch);
    assert_int_equal(1, atomic_load(&x.ran));
    assert_true(atomic_load(&x.on_actor));
    assert_true(atomic_load(&x.saw_done));
    assert_fl(FL_EUSER + 1, atomic_load(&x.err_seen));
    end_system(sys);
    assert_int_equal(1, atomic_load(&x.ran));
    /* cb ran, so arg_free was not called instead. */
    assert_int_equal(0, atomic_load(&x.freed));
    fl_future_release(f);
    fl_test_latch_free(x.latch);
}

static void
test_on_complete_in_of_a_complete_future_runs_on_the_actors_thread(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    in_actor_t x = {.sys = sys, .latch = fl_test_latch_alloc(1)};
    x.ref = spawn_noop(sys);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    assert_fl_ok(
        fl_future_on_complete_in(f, sys, x.ref, in_actor_cb, &x, NULL));
    fl_test_latch_await(x.latch);
    assert_true(atomic_load(&x.on_actor));
    assert_fl_ok(atomic_load(&x.err_seen));
    end_system(sys);
    assert_int_equal(1, atomic_load(&x.ran));
    fl_future_release(f);
    fl_test_latch_free(x.latch);
}

/* Waits until t's arg has been freed, ends the system and checks that t was
 * freed once and never ran; then releases f and frees t's latch. */
static void end_freed_not_run(fl_system_t *sys, tracked_t *t, fl_future_t *f)
{
    fl_test_latch_await(t->freed_latch);
    end_system(sys);
    assert_int_equal(1, atomic_load(&t->freed));
    assert_int_equal(0, atomic_load(&t->ran));
    fl_future_release(f);
    fl_test_latch_free(t->freed_latch);
}

static void
test_on_complete_in_frees_arg_when_the_actor_stopped_first(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    tracked_t t = {.freed_latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a = spawn_noop(sys);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete_in(f, sys, a, tracked_future_cb, &t,
                                          tracked_free));
    stop_and_wait(sys, a);
    assert_fl_ok(fl_future_complete(f, NULL, NULL));
    end_freed_not_run(sys, &t, f);
}

static void
test_on_complete_in_for_a_stopped_actor_frees_arg_and_never_runs(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    tracked_t t = {.freed_latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a = spawn_stopped_noop(sys);
    fl_future_t *f = fl_future_alloc();
    int rc = fl_future_on_complete_in(f, sys, a, tracked_future_cb, &t,
                                      tracked_free);
    /* Either refused at once (arg freed at once) or accepted and freed when
     * f completes: never run. */
    if (rc == FL_OK) {
        assert_fl_ok(fl_future_complete(f, NULL, NULL));
    } else {
        assert_fl(FL_EUNREACHABLE, rc);
        assert_int_equal(1, atomic_load(&t.freed));
    }
    end_freed_not_run(sys, &t, f);
}

/* A future freed pending drops its continuation: the argument is freed
 * once, at the release, and the continuation (with the exec message built
 * for it at registration) never runs nor leaks (ASan, valgrind). */
static void
test_on_complete_in_of_a_future_freed_pending_frees_arg_once(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    tracked_t t = {.freed_latch = fl_test_latch_alloc(1)};
    fl_actor_ref_t a = spawn_noop(sys);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete_in(f, sys, a, tracked_future_cb, &t,
                                          tracked_free));
    assert_int_equal(0, atomic_load(&t.freed));
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&t.freed));
    end_freed_not_run(sys, &t, NULL);
}

/* Counts the frees of a future's value. */
static void count_value_free(void *v)
{
    atomic_fetch_add((atomic_int *)v, 1);
}

static void never_cb(fl_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* A continuation without arg_free (the small hop, whose system and actor
 * ride in its message's header) to an actor that stopped first never
 * runs, and lets go of the future: the value is freed once, when the last
 * other reference goes. */
static void
test_on_complete_in_without_arg_free_to_a_stopped_actor_lets_go_of_f(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    atomic_int ran = 0, value_freed = 0;
    fl_actor_ref_t a = spawn_noop(sys);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_on_complete_in(f, sys, a, never_cb, &ran, NULL));
    stop_and_wait(sys, a);
    assert_fl_ok(fl_future_complete(f, &value_freed, count_value_free));
    /* The dead letter has released the hop's reference: ours is the last. */
    assert_int_equal(0, atomic_load(&value_freed));
    fl_future_release(f);
    assert_int_equal(1, atomic_load(&value_freed));
    end_system(sys);
    assert_int_equal(0, atomic_load(&ran));
}

/* An actor asks another from its receive callback and continues on its own
 * thread when the reply comes: the pattern on_complete_in exists for. */
typedef struct asker {
    fl_system_t *sys;
    fl_actor_ref_t self;
    fl_actor_ref_t responder;
    atomic_int ask_rc;
    atomic_int reply_value;
    atomic_int reply_err;
    atomic_bool continued_on_self;
    atomic_bool overlapped; /* continuation ran during a receive */
    atomic_bool in_receive;
    fl_test_latch_t *done;
} asker_t;

static void asker_continue(fl_future_t *f, void *arg)
{
    asker_t *a = arg;
    if (atomic_load(&a->in_receive))
        atomic_store(&a->overlapped, true);
    atomic_store(&a->continued_on_self,
                 fl_self().id == a->self.id && fl_system_current() == a->sys);
    atomic_store(&a->reply_err, fl_future_error(f));
    fl_msg_t *reply = fl_future_value(f);
    atomic_store(&a->reply_value, reply ? msg_get_int(reply) : -1);
    fl_future_release(f); /* the reference fl_ask gave the receive callback */
    fl_test_latch_count_down(a->done);
}

static void asker_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                          fl_msg_t *msg)
{
    (void)msg;
    asker_t *a = st;
    atomic_store(&a->in_receive, true);
    fl_future_t *f = NULL;
    fl_msg_t *req = fl_msg_alloc(T_REPLY, sizeof(int));
    *(int *)fl_msg_data(req) = 99;
    int rc = fl_ask(sys, a->responder, req, 5000, &f);
    atomic_store(&a->ask_rc, rc);
    if (rc == FL_OK && fl_future_on_complete_in(f, sys, self, asker_continue, a,
                                                NULL) != FL_OK)
        atomic_store(&a->ask_rc, FL_EINTERNAL);
    atomic_store(&a->in_receive, false);
}

static void
test_ask_from_an_actor_continues_on_its_own_thread_with_on_complete_in(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    responder_t r = {.rc1 = -1};
    asker_t a = {.sys = sys, .ask_rc = -1, .done = fl_test_latch_alloc(1)};
    a.responder = spawn_responder(sys, &r, 0);
    assert_fl_ok(fl_actor_spawn(sys, asker_receive, &a, NULL, &a.self));
    assert_fl_ok(fl_tell(sys, a.self, fl_test_msg_int(1, 0)));
    fl_test_latch_await(a.done);
    assert_fl_ok(atomic_load(&a.ask_rc));
    assert_fl_ok(atomic_load(&a.reply_err));
    assert_int_equal(100, atomic_load(&a.reply_value));
    assert_true(atomic_load(&a.continued_on_self));
    assert_false(atomic_load(&a.overlapped));
    /* The request carried the asking actor as its sender. */
    assert_int_equal(a.self.id, atomic_load(&r.sender));
    end_system(sys);
    fl_test_latch_free(a.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_exec_runs_on_the_actors_thread_in_mailbox_order),
        FL_TEST(
            test_exec_on_a_stopped_actor_returns_eunreachable_and_frees_arg),
        FL_TEST(test_exec_queued_behind_a_stop_frees_arg_instead_of_running),
        FL_TEST(test_on_complete_in_runs_the_callback_on_the_actors_thread),
        FL_TEST(
            test_on_complete_in_without_arg_free_to_a_stopped_actor_lets_go_of_f),
        FL_TEST(
            test_on_complete_in_of_a_complete_future_runs_on_the_actors_thread),
        FL_TEST(test_on_complete_in_frees_arg_when_the_actor_stopped_first),
        FL_TEST(test_on_complete_in_of_a_future_freed_pending_frees_arg_once),
        FL_TEST(
            test_on_complete_in_for_a_stopped_actor_frees_arg_and_never_runs),
        FL_TEST(
            test_ask_from_an_actor_continues_on_its_own_thread_with_on_complete_in),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
