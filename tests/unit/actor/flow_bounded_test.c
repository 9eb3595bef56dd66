/*
 * flow_bounded_test.c - fl_tell_bounded and fl_actor_queued (docs/guide.md,
 * "Flow control"): a full mailbox refuses at once (FL_EFULL) and the
 * message stays the caller's; a wait succeeds when the receiver drains,
 * times out (never early), is refused on a runtime thread (FL_EDEADLK) and
 * ends with FL_ECLOSED when the system closes; bad arguments; the default
 * bound and an actor's own; tells_full counts. The receiver is held in a
 * gate the test opens.
 */
#include "flow_fixture.h"

#include <sys/syscall.h>

#define BOUND 16

/* A system (workers 2, default bound) with a held sink of bound BOUND,
 * filled by fl_tell to its bound with the ints 0..BOUND-2 (the gate
 * message is the first one): its got_int counts the BOUND - 1 and `more`
 * further ints. */
static fl_actor_ref_t full_sink(fl_system_t **sys, sink_t *s, unsigned more)
{
    *sys = flow_system(2, FLOW_EXACT_BOUND);
    fl_actor_ref_t to = sink_spawn(*sys, s, BOUND, 0);
    s->got_int = fl_test_latch_alloc(BOUND - 1 + more);
    sink_hold(*sys, to, s);
    for (int i = 0; i < BOUND - 1; i++)
        assert_fl_ok(fl_tell(*sys, to, fl_test_msg_int(FLOW_INT, i)));
    assert_int_equal(BOUND, flow_queued(*sys, to));
    return to;
}

/* Opens the gate of full_sink's sink (`more` as given there) and waits
 * until it has handled the BOUND - 1 ints and its turns have counted them
 * out. */
static void drain(fl_system_t *sys, fl_actor_ref_t to, sink_t *s, unsigned more)
{
    sink_open(s);
    wait_latch_count(s->got_int, more);
    FLOW_WAIT_FOR(flow_queued(sys, to) == 0, "sink not drained: %u queued",
                  flow_queued(sys, to));
    for (int i = 0; i < BOUND - 1; i++)
        assert_int_equal(i, s->ints[i]);
}

static void end_sink(fl_system_t *sys, sink_t *s)
{
    end_system(sys);
    assert_int_equal(0, atomic_load(&s->gate_timeouts));
    sink_free(s);
}

/* ---- refused at once --------------------------------------------------- */

static void test_full_mailbox_refuses_at_once_and_keeps_the_message(void **st)
{
    (void)st;
    fl_system_t *sys;
    sink_t s;
    fl_actor_ref_t to = full_sink(&sys, &s, 1);
    fl_msg_t *m = fl_test_msg_int(FLOW_INT, 99);
    assert_fl(FL_EFULL, fl_tell_bounded(sys, to, m, 0));
    assert_string_equal("recipient's mailbox is full", fl_strerror(FL_EFULL));
    assert_int_equal(1, flow_stats(sys).tells_full);
    assert_int_equal(BOUND, flow_queued(sys, to));
    /* Still the caller's: sent again once the mailbox drained. */
    assert_int_equal(FLOW_INT, fl_msg_type(m));
    drain(sys, to, &s, 1);
    assert_fl_ok(fl_tell_bounded(sys, to, m, 0));
    fl_test_latch_await(s.got_int);
    assert_int_equal(BOUND, atomic_load(&s.nints));
    assert_int_equal(99, s.ints[BOUND - 1]);
    assert_int_equal(1, flow_stats(sys).tells_full);
    end_sink(sys, &s);
}

/* ---- waits ----------------------------------------------------------------
 */

typedef struct opener {
    fl_system_t *sys;
    sink_t *s;
    long delay_ms; /* from the full mailbox to the opening */
    atomic_int timed_out;
} opener_t;

/* Opens the sink's gate delay_ms after a bounded tell has found it
 * full. */
static void *open_when_full(void *arg)
{
    opener_t *o = arg;
    uint64_t t0 = fl_clock_now_ns();
    fl_system_stats_t st;
    while (fl_system_stats(o->sys, &st) == FL_OK && st.tells_full == 0) {
        if (fl_test_ms_since(t0) > WAIT_MS) {
            atomic_store(&o->timed_out, 1);
            break;
        }
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    if (o->delay_ms > 0)
        nanosleep(&(struct timespec){0, o->delay_ms * 1000000L}, NULL);
    sink_open(o->s);
    return NULL;
}

static void test_wait_succeeds_when_the_receiver_drains(void **st)
{
    (void)st;
    fl_system_t *sys;
    sink_t s;
    fl_actor_ref_t to = full_sink(&sys, &s, 1);
    opener_t o = {.sys = sys, .s = &s};
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, open_when_full, &o));
    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(
        fl_tell_bounded(sys, to, fl_test_msg_int(FLOW_INT, 99), WAIT_MS));
    fl_test_assert_elapsed("the wait for room", fl_test_ms_since(t0), 0,
                           WAIT_MS);
    assert_int_equal(0, pthread_join(t, NULL));
    assert_int_equal(0, atomic_load(&o.timed_out));
    fl_test_latch_await(s.got_int);
    /* After the ones it waited behind. */
    for (int i = 0; i < BOUND - 1; i++)
        assert_int_equal(i, s.ints[i]);
    assert_int_equal(99, s.ints[BOUND - 1]);
    assert_int_equal(1, flow_stats(sys).tells_full);
    end_sink(sys, &s);
}

#define SHORT_MS 200

static void test_wait_times_out_not_early(void **st)
{
    (void)st;
    fl_system_t *sys;
    sink_t s;
    fl_actor_ref_t to = full_sink(&sys, &s, 1);
    fl_msg_t *m = fl_test_msg_int(FLOW_INT, 99);
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT, fl_tell_bounded(sys, to, m, SHORT_MS));
    fl_test_assert_elapsed("a bounded tell of 200 ms", fl_test_ms_since(t0),
                           SHORT_MS, SHORT_MS + WAIT_MS);
    assert_int_equal(1, flow_stats(sys).tells_full);
    assert_int_equal(BOUND, flow_queued(sys, to));
    /* Still the caller's. */
    drain(sys, to, &s, 1);
    assert_fl_ok(fl_tell_bounded(sys, to, m, FL_INFINITE));
    fl_test_latch_await(s.got_int);
    assert_int_equal(99, s.ints[BOUND - 1]);
    assert_int_equal(1, flow_stats(sys).tells_full);
    end_sink(sys, &s);
}

/* A timeout too far for its nanoseconds to fit 64 bits waits as long as
 * needed: its deadline saturates, it does not wrap into the past. The
 * gate opens FAR_OPEN_MS after the tell found the mailbox full. */
#define FAR_OPEN_MS 100

static void test_far_timeout_waits(void **st)
{
    (void)st;
    const int64_t far[] = FL_TEST_FAR_MS;
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        fl_system_t *sys;
        sink_t s;
        fl_actor_ref_t to = full_sink(&sys, &s, 1);
        opener_t o = {.sys = sys, .s = &s, .delay_ms = FAR_OPEN_MS};
        pthread_t t;
        assert_int_equal(0, pthread_create(&t, NULL, open_when_full, &o));
        uint64_t t0 = fl_clock_now_ns();
        int rc =
            fl_tell_bounded(sys, to, fl_test_msg_int(FLOW_INT, 99), far[i]);
        uint64_t ms = fl_test_ms_since(t0);
        assert_int_equal(0, pthread_join(t, NULL));
        if (rc != FL_OK)
            fail_msg("a bounded tell of %lld ms: %s after %llu ms",
                     (long long)far[i], fl_err_name(rc),
                     (unsigned long long)ms);
        fl_test_assert_elapsed("a far bounded tell", ms, FAR_OPEN_MS, WAIT_MS);
        fl_test_latch_await(s.got_int);
        assert_int_equal(99, s.ints[BOUND - 1]);
        end_sink(sys, &s);
    }
}

/* ---- a runtime thread may not wait -------------------------------------- */

typedef struct waiter {
    fl_actor_ref_t to;
    int rc[3];
    int type_after; /* the message's type after the refusals */
    fl_test_latch_t *done;
} waiter_t;

/* From an actor or the timer thread: a wait is refused, a refusal at
 * once is not; the message stays the caller's. */
static void try_waits(fl_system_t *sys, waiter_t *w)
{
    fl_msg_t *m = fl_test_msg_int(FLOW_INT, 99);
    w->rc[0] = fl_tell_bounded(sys, w->to, m, 100);
    w->rc[1] = fl_tell_bounded(sys, w->to, m, FL_INFINITE);
    w->rc[2] = fl_tell_bounded(sys, w->to, m, 0);
    w->type_after = (int)fl_msg_type(m);
    fl_msg_free(m);
    fl_test_latch_count_down(w->done);
}

static void waiter_receive(fl_system_t *sys, fl_actor_ref_t self, void *st,
                           fl_msg_t *msg)
{
    (void)self;
    (void)msg;
    try_waits(sys, st);
}

static void waiter_timer(fl_system_t *sys, void *arg)
{
    try_waits(sys, arg);
}

static void assert_refused(waiter_t *w)
{
    fl_test_latch_await(w->done);
    assert_fl(FL_EDEADLK, w->rc[0]);
    assert_fl(FL_EDEADLK, w->rc[1]);
    assert_fl(FL_EFULL, w->rc[2]);
    assert_int_equal(FLOW_INT, w->type_after);
    fl_test_latch_free(w->done);
}

static void test_wait_is_refused_on_runtime_threads(void **st)
{
    (void)st;
    fl_system_t *sys;
    sink_t s;
    fl_actor_ref_t to = full_sink(&sys, &s, 0);
    waiter_t w = {.to = to, .done = fl_test_latch_alloc(1)};
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, waiter_receive, &w, NULL, &a));
    assert_fl_ok(fl_tell(sys, a, fl_msg_alloc(FLOW_GO, 0)));
    assert_refused(&w);
    assert_int_equal(3, flow_stats(sys).tells_full);
    waiter_t t = {.to = to, .done = fl_test_latch_alloc(1)};
    assert_fl_ok(fl_timer_start(sys, waiter_timer, &t, 0, 0, NULL));
    assert_refused(&t);
    assert_int_equal(6, flow_stats(sys).tells_full);
    assert_int_equal(BOUND, flow_queued(sys, to));
    drain(sys, to, &s, 0);
    end_sink(sys, &s);
}

/* ---- closing the system ends a wait -------------------------------------- */

typedef struct closer {
    fl_system_t *sys;
    fl_actor_ref_t to;
    _Atomic pid_t tid;
    atomic_int rc;
} closer_t;

static void *tell_forever(void *arg)
{
    closer_t *c = arg;
    atomic_store(&c->tid, (pid_t)syscall(SYS_gettid));
    atomic_store(&c->rc,
                 fl_tell_bounded(c->sys, c->to, fl_test_msg_int(FLOW_INT, 99),
                                 FL_INFINITE));
    return NULL;
}

/* True when thread tid of this process is asleep (state S). */
static bool thread_sleeps(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "tid (comm) S ...": the state follows the last ')'. */
    const char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && p[2] == 'S';
}

static void test_waiting_tell_ends_when_the_system_closes(void **st)
{
    (void)st;
    fl_system_t *sys;
    sink_t s;
    fl_actor_ref_t to = full_sink(&sys, &s, 0);
    closer_t c = {.sys = sys, .to = to, .rc = -1};
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, tell_forever, &c));
    /* Waiting: it found the mailbox full and sleeps. */
    FLOW_WAIT_FOR(flow_stats(sys).tells_full == 1 && atomic_load(&c.tid) != 0 &&
                      thread_sleeps(atomic_load(&c.tid)),
                  "the bounded tell is not waiting");
    assert_int_equal(-1, atomic_load(&c.rc));
    assert_fl_ok(fl_system_close(sys));
    FLOW_WAIT_FOR(atomic_load(&c.rc) != -1,
                  "the bounded tell still waits after the close");
    assert_int_equal(0, pthread_join(t, NULL));
    assert_fl(FL_ECLOSED, atomic_load(&c.rc));
    /* The held sink finishes its message; the rest are dead letters. */
    sink_open(&s);
    end_sink(sys, &s);
}

/* ---- arguments ------------------------------------------------------------
 */

static void test_bad_arguments(void **st)
{
    (void)st;
    fl_system_t *sys = flow_system(1, FLOW_EXACT_BOUND);
    fl_actor_ref_t a = spawn_noop(sys);
    /* A bad timeout, full mailbox or not: FL_EINVAL, the message
     * consumed. */
    assert_fl(FL_EINVAL,
              fl_tell_bounded(sys, a, fl_test_msg_int(FLOW_INT, 1), -2));
    assert_fl(FL_EINVAL,
              fl_tell_bounded(sys, a, fl_test_msg_int(FLOW_INT, 1), INT64_MIN));
    assert_fl(FL_EINVAL,
              fl_tell_bounded(NULL, a, fl_test_msg_int(FLOW_INT, 1), 0));
    assert_fl(FL_EINVAL, fl_tell_bounded(sys, a, NULL, 0));
    assert_int_equal(0, flow_stats(sys).tells_full);
    uint32_t q = 7;
    assert_fl(FL_EINVAL, fl_actor_queued(sys, a, NULL));
    assert_fl(FL_EINVAL, fl_actor_queued(NULL, a, &q));
    /* A stopped actor: as fl_tell, a dead letter. */
    fl_actor_ref_t gone = spawn_stopped_noop(sys);
    assert_fl(FL_EUNREACHABLE,
              fl_tell_bounded(sys, gone, fl_test_msg_int(FLOW_INT, 1), 0));
    assert_int_equal(1, flow_stats(sys).dead_letters);
    q = 7;
    assert_fl(FL_EUNREACHABLE, fl_actor_queued(sys, gone, &q));
    assert_int_equal(0, q);
    assert_int_equal(0, flow_stats(sys).tells_full);
    end_system(sys);
}

/* ---- the bounds -----------------------------------------------------------
 */

/* Holds a sink of bound `bound` in a system of bound sys_bound and fills
 * it with fl_tell to fill - 1 after the gate: the bounded tell that
 * follows finds room when fill < the effective bound, else FL_EFULL. */
static void bound_at(uint32_t sys_bound, uint32_t bound, uint32_t fill,
                     int want)
{
    fl_system_t *sys = flow_system(2, sys_bound);
    sink_t s;
    fl_actor_ref_t to = sink_spawn(sys, &s, bound, 0);
    s.got_int = fl_test_latch_alloc(fill - 1 + (want == FL_OK ? 1 : 0));
    sink_hold(sys, to, &s);
    for (uint32_t i = 0; i + 1 < fill; i++)
        assert_fl_ok(fl_tell(sys, to, fl_test_msg_int(FLOW_INT, 1)));
    if (s.exact ||
        (bound == 0 && sys_bound != 0 && sys_bound < 2 * FLOW_EXACT_BOUND))
        assert_int_equal(fill, flow_queued(sys, to));
    else /* sampled: a Weyl draw per thread is off by a few weights */
        assert_in_range(flow_queued(sys, to), fill - 64, fill + 64);
    fl_msg_t *m = fl_test_msg_int(FLOW_INT, 2);
    int rc = fl_tell_bounded(sys, to, m, 0);
    if (rc != want)
        fail_msg("bound %u in a system of %u, %u queued: %s, want %s", bound,
                 sys_bound, fill, fl_err_name(rc), fl_err_name(want));
    assert_int_equal(want == FL_OK ? 0 : 1, flow_stats(sys).tells_full);
    if (rc != FL_OK)
        fl_msg_free(m);
    sink_open(&s);
    fl_test_latch_await(s.got_int);
    end_sink(sys, &s);
}

static void test_default_bound_and_an_actors_own(void **st)
{
    (void)st;
    /* The default, FL_MAILBOX_DEFAULT (8192), whose count is sampled:
     * right to within a few weights of 8 either side. */
    assert_int_equal(8192, FL_MAILBOX_DEFAULT);
    bound_at(0, 0, FL_MAILBOX_DEFAULT - 128, FL_OK);
    bound_at(0, 0, FL_MAILBOX_DEFAULT + 128, FL_EFULL);
    /* A system's. */
    bound_at(64, 0, 63, FL_OK);
    bound_at(64, 0, 64, FL_EFULL);
    /* An actor's own, below and above the system's. */
    bound_at(64, 16, 16, FL_EFULL);
    bound_at(64, 16, 15, FL_OK);
    bound_at(16, 64, 63, FL_OK);
    bound_at(16, 64, 64, FL_EFULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_full_mailbox_refuses_at_once_and_keeps_the_message),
        FL_TEST(test_wait_succeeds_when_the_receiver_drains),
        FL_TEST(test_wait_times_out_not_early),
        FL_TEST(test_far_timeout_waits),
        FL_TEST(test_wait_is_refused_on_runtime_threads),
        FL_TEST(test_waiting_tell_ends_when_the_system_closes),
        FL_TEST(test_bad_arguments),
        FL_TEST(test_default_bound_and_an_actors_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
