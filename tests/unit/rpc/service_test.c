/*
 * service_test.c - the RPC service: connecting (handshake, errors), self
 * gateways, lookup, addresses and timeouts, close/shutdown with failing
 * endpoints, and the scheduled executor (once, fixed rate, fixed delay,
 * cancel).
 */
#include "rpc_fixture.h"

#include <time.h>

/* ---- helpers ------------------------------------------------------------- */

/* OtherGateway, for an endpoint implementing two services. */
static void og_ping(Fltest__OtherGateway_Service *svc, const Fltest__Empty *in,
                    Fltest__Empty_Closure closure, void *closure_data)
{
    (void)svc;
    (void)in;
    Fltest__Empty e = FLTEST__EMPTY__INIT;
    closure(&e, closure_data);
}

static Fltest__OtherGateway_Service other_impl =
    FLTEST__OTHER_GATEWAY__INIT(og_);

/* A run_async task that runs fn(svc) on the main thread and records rc. */
typedef struct on_main {
    int (*fn)(fl_rpc_service_t *svc);
    atomic_int rc;
    fl_test_latch_t *done;
} on_main_t;

static void on_main_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)state;
    on_main_t *m = arg;
    atomic_store(&m->rc, m->fn(fl_rpc_endpoint_service(ep)));
    fl_test_latch_count_down(m->done);
}

/* Three started endpoints; e[1]'s on_stop fails, e[2]'s returns pending
 * (completed by the test). */
typedef struct trio {
    tep_t st[3];
    fl_rpc_endpoint_t *ep[3];
    fl_future_t *term[3];
    fl_future_t *pending; /* e[2]'s on_stop future (test's reference) */
} trio_t;

static void trio_begin(trio_t *t, fl_rpc_service_t *svc, bool fail_one)
{
    static const char *ids[3] = {"e0", "e1", "e2"};
    for (int i = 0; i < 3; i++)
        tep_init(&t->st[i]);
    if (fail_one) {
        fl_future_t *f = fl_future_alloc();
        assert_fl_ok(fl_future_fail(f, FL_EUSER + 5, "stop %d failed", 1));
        t->st[1].stop_future = f;
    }
    t->pending = tep_pending_stop(&t->st[2]);
    for (int i = 0; i < 3; i++) {
        t->ep[i] = tep_create_started(svc, ids[i], &t->st[i], NULL);
        t->term[i] = fl_rpc_endpoint_termination(t->ep[i]);
        assert_non_null(t->term[i]);
    }
}

static void trio_end(trio_t *t)
{
    for (int i = 0; i < 3; i++) {
        fl_future_release(t->term[i]);
        fl_rpc_endpoint_free(t->ep[i]);
    }
    fl_future_release(t->pending);
    fl_test_latch_free(t->st[2].stopping);
}

/* What the scheduled executor's tasks saw. */
#define MAX_RUNS 64

typedef struct sched_ctx {
    atomic_int runs;
    uint64_t start_ns[MAX_RUNS];
    uint64_t end_ns[MAX_RUNS];
    int64_t work_ms;             /* time each run takes */
    int cancel_at;               /* the run that cancels itself; 0 none */
    _Atomic fl_rpc_task_id_t id; /* published after scheduling */
    atomic_int cancel_rc;
    atomic_int cancelled;
    fl_test_latch_t *done; /* counted down by every run */
} sched_ctx_t;

static void sched_ctx_init(sched_ctx_t *c, uint64_t runs_to_wait)
{
    memset(c, 0, sizeof *c);
    atomic_init(&c->cancel_rc, -1);
    c->done = fl_test_latch_alloc(runs_to_wait);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void sched_task(fl_rpc_service_t *svc, void *arg)
{
    sched_ctx_t *c = arg;
    int n = atomic_load(&c->runs);
    if (n < MAX_RUNS)
        c->start_ns[n] = fl_clock_now_ns();
    if (c->work_ms > 0)
        sleep_ms(c->work_ms); /* simulated work, not for ordering */
    if (n < MAX_RUNS)
        c->end_ns[n] = fl_clock_now_ns();
    if (c->cancel_at > 0 && n + 1 >= c->cancel_at &&
        !atomic_load(&c->cancelled)) {
        fl_rpc_task_id_t id = atomic_load(&c->id);
        if (id != 0) {
            atomic_store(&c->cancel_rc, fl_rpc_cancel(svc, id));
            atomic_store(&c->cancelled, 1);
        }
    }
    atomic_fetch_add(&c->runs, 1);
    fl_test_latch_count_down(c->done);
}

/* A one-shot task recording how many runs a sched_ctx had by then. */
typedef struct sentinel {
    sched_ctx_t *watched;
    atomic_int seen;
    fl_test_latch_t *done;
} sentinel_t;

static void sentinel_task(fl_rpc_service_t *svc, void *arg)
{
    (void)svc;
    sentinel_t *s = arg;
    atomic_store(&s->seen, atomic_load(&s->watched->runs));
    fl_test_latch_count_down(s->done);
}

/* Asserts that c has no runs after now: one sentinel right away (it runs
 * on the timer thread after any run in progress) and one `later_ms` later
 * must see the same count. Returns that count. */
static int assert_no_more_runs(fl_rpc_service_t *svc, sched_ctx_t *c,
                               int64_t later_ms)
{
    fl_test_latch_t *l = fl_test_latch_alloc(2);
    sentinel_t s1 = {.watched = c, .done = l};
    sentinel_t s2 = {.watched = c, .done = l};
    assert_fl_ok(fl_rpc_schedule(svc, sentinel_task, &s1, 0, NULL));
    assert_fl_ok(fl_rpc_schedule(svc, sentinel_task, &s2, later_ms, NULL));
    wait_latch(l);
    fl_test_latch_free(l);
    assert_int_equal(atomic_load(&s1.seen), atomic_load(&s2.seen));
    return atomic_load(&s1.seen);
}

static void noop_task(fl_rpc_service_t *svc, void *arg)
{
    (void)svc;
    (void)arg;
}

/* ---- connect ------------------------------------------------------------- */

static void
test_connect_to_an_existing_endpoint_gives_a_working_gateway(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "target", FX_START);

    fl_rpc_gateway_t *gw =
        gw_connect(cli_of(fx.svc), tep_address(fx.svc, "target").s, TG, NULL);
    assert_string_equal(fl_rpc_endpoint_address(fx.ep),
                        fl_rpc_gateway_address(gw));
    assert_string_equal(tran_hostname(), fl_rpc_gateway_hostname(gw));
    assert_non_null(fl_rpc_gateway_service(gw));
    assert_ptr_equal(TG, fl_rpc_gateway_service(gw)->descriptor);
    expect_echo(gw, "connected", 1);

    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

static void
test_connect_to_a_missing_id_fails_econnect_naming_the_address(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    char msg[512];
    fx_addr_t nobody = tep_address(svc, "nobody");
    assert_fl(FL_ECONNECT,
              gw_connect_error(cli_of(svc), nobody.s, TG, msg, sizeof msg));
    if (!strstr(msg, nobody.s))
        fail_msg("message \"%s\" does not name the address", msg);

    svc_end(svc);
}

static void test_connect_to_a_malformed_address_fails_econnect(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    char msg[512];
    assert_fl(FL_ECONNECT, gw_connect_error(cli_of(svc), "not-an-address", TG,
                                            msg, sizeof msg));
    if (!strstr(msg, "not-an-address"))
        fail_msg("message \"%s\" does not name the address", msg);

    svc_end(svc);
}

static void
test_connect_with_a_service_the_endpoint_lacks_fails_ehandshake(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "target", FX_START);

    char msg[512];
    assert_fl(FL_EHANDSHAKE,
              gw_connect_error(fx.svc, fl_rpc_endpoint_address(fx.ep), OTHER,
                               msg, sizeof msg));
    if (!strstr(msg, "The rpc endpoint does not support the gateway ") ||
        !strstr(msg, "OtherGateway"))
        fail_msg("unexpected handshake message \"%s\"", msg);

    ep_fx_end(&fx);
}

static void
test_connect_to_a_created_endpoint_succeeds_calls_not_started(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "created", FX_GW);

    assert_fl(FL_ENOTSTARTED, echo_code(fx.gw));
    char msg[512];
    assert_fl(FL_EHANDSHAKE,
              gw_connect_error(fx.svc, fl_rpc_endpoint_address(fx.ep), OTHER,
                               msg, sizeof msg));

    ep_fx_end(&fx);
}

static void
test_connect_to_an_endpoint_with_two_services_reaches_both(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    static ProtobufCService *two[2];
    two[0] = tep_services()[0];
    two[1] = &other_impl.base;
    fl_rpc_endpoint_opts_t o = tep_opts("two", &st, NULL);
    o.services = two;
    o.nservices = 2;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    tep_start(ep, &st);

    fx_addr_t two_at = tep_address(svc, "two");
    fl_rpc_gateway_t *tg = gw_connect(cli_of(svc), two_at.s, TG, NULL);
    fl_rpc_gateway_t *og = gw_connect(cli_of(svc), two_at.s, OTHER, NULL);
    expect_echo(tg, "first service", 1);
    Fltest__Empty e = FLTEST__EMPTY__INIT;
    assert_fl_ok(call_code(og, 0, &e.base));

    fl_rpc_gateway_free(tg);
    fl_rpc_gateway_free(og);
    tep_end(ep);
    svc_end(svc);
}

static void
test_create_with_a_service_without_descriptor_fails_einval(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st;
    tep_init(&st);
    static ProtobufCService bare; /* descriptor NULL */
    static ProtobufCService *const services[1] = {&bare};
    fl_rpc_endpoint_opts_t o = tep_opts("bare", &st, NULL);
    o.services = services;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl(FL_EINVAL, fl_rpc_endpoint_create(svc, &o, &ep));

    svc_end(svc);
}

static void
test_connect_after_shutdown_fails_eclosed_and_leaves_out_null(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    fx_addr_t x = tep_address(svc, "x");
    assert_fl_ok(svc_shutdown(svc));

    fl_future_t *f = fl_future_alloc(); /* a non-NULL value to overwrite */
    fl_future_t *keep = f;
    assert_fl(FL_ECLOSED, fl_rpc_connect(cli_of(svc), x.s, TG, NULL, &f));
    assert_null(f);

    fl_future_release(keep);
    svc_free(svc);
}

/* ---- self gateway -------------------------------------------------------- */

static void
test_self_gateway_for_an_unimplemented_service_is_enotsup(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "self", FX_START);

    fl_rpc_gateway_t *gw = NULL;
    assert_fl(FL_ENOTSUP, fl_rpc_self_gateway(fx.ep, OTHER, &gw));

    ep_fx_end(&fx);
}

static void test_self_gateway_reaches_the_endpoint(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "self", FX_START);

    fl_rpc_gateway_t *gw = NULL;
    assert_fl_ok(fl_rpc_self_gateway(fx.ep, TG, &gw));
    assert_non_null(gw);
    assert_string_equal(fl_rpc_endpoint_address(fx.ep),
                        fl_rpc_gateway_address(gw));
    expect_echo(gw, "self", 1);

    fl_rpc_gateway_free(gw);
    ep_fx_end(&fx);
}

/* ---- lookup -------------------------------------------------------------- */

static void test_lookup_finds_a_live_endpoint_by_id(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st1, st2;
    tep_init(&st1);
    tep_init(&st2);
    fl_rpc_endpoint_t *e1 = tep_create(svc, "one", &st1, NULL);
    fl_rpc_endpoint_t *e2 = tep_create_started(svc, "two", &st2, NULL);

    fl_rpc_endpoint_t *found = NULL;
    assert_fl_ok(fl_rpc_service_lookup(svc, "one", &found));
    assert_ptr_equal(e1, found);
    assert_fl_ok(fl_rpc_service_lookup(svc, "two", &found));
    assert_ptr_equal(e2, found);
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(svc, "three", &found));
    assert_fl(FL_EINVAL, fl_rpc_service_lookup(svc, NULL, &found));

    tep_end(e1);
    tep_end(e2);
    svc_end(svc);
}

static void test_lookup_after_termination_is_enoent(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "gone", FX_START);
    tep_end(fx.ep);

    fl_rpc_endpoint_t *found = NULL;
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(fx.svc, "gone", &found));

    svc_end(fx.svc);
}

/* ---- addresses, timeouts, systems ---------------------------------------- */

static void
test_local_service_has_an_empty_address_and_port_minus_one(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);

    assert_string_equal("", fl_rpc_service_address(svc));
    assert_int_equal(-1, fl_rpc_service_port(svc));

    svc_end(svc);
}

static void test_service_timeout_defaults_to_10000_ms(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    assert_int_equal(FL_RPC_DEFAULT_TIMEOUT_MS, fl_rpc_service_timeout(svc));
    assert_int_equal(10000, fl_rpc_service_timeout(svc));
    svc_end(svc);

    fl_rpc_service_t *svc2 = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc2)); /* NULL opts */
    assert_int_equal(10000, fl_rpc_service_timeout(svc2));
    svc_end(svc2);
}

static void
test_service_default_timeout_applies_to_calls_without_one(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(80);
    assert_int_equal(80, fl_rpc_service_timeout(svc));
    tep_t st;
    tep_init(&st);
    st.blocked = fl_test_latch_alloc(1);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "ep", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);

    Fltest__EchoRequest req = echo_req("blocked", 1);
    uint64_t t0 = fl_clock_now_ns();
    fl_future_t *f = call_async_req(gw, M_BLOCK, &req.base, 0);
    expect_timed_out(f, t0, 80);

    wait_latch(st.blocked);
    tep_release_parked(&st, "late", 0);
    fl_future_release(f);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    fl_test_latch_free(st.blocked);
    svc_end(svc);
}

static void test_service_on_a_borrowed_system_leaves_it_running(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_rpc_service_opts_t o = {0};
    o.system = sys;
    svc_listen(&o);
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&o, &svc));
    assert_ptr_equal(sys, fl_rpc_service_system(svc));
    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_t *ep = tep_create_started(svc, "ep", &st, NULL);
    fl_rpc_gateway_t *gw = gw_to(svc, ep, NULL);
    expect_echo(gw, "borrowed", 1);
    fl_rpc_gateway_free(gw);
    tep_end(ep);
    svc_end(svc);

    /* The system is still ours and still works (a closed one would say
     * FL_ECLOSED). */
    fl_msg_t *m = fl_msg_alloc(1, 8);
    assert_non_null(m);
    fl_actor_ref_t nobody = {0};
    assert_fl(FL_EUNREACHABLE, fl_tell(sys, nobody, m));
    assert_fl_ok(fl_system_shutdown(sys));
    fl_system_free(sys);
}

static void test_service_owns_a_system_when_given_none(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    fl_system_t *sys = fl_rpc_service_system(svc);
    assert_non_null(sys);
    assert_int_equal(2, fl_system_workers(sys));
    svc_end(svc); /* shuts it down and frees it: LSan/valgrind check */
}

static int shutdown_fn(fl_rpc_service_t *svc)
{
    return fl_rpc_service_shutdown(svc);
}

static void test_shutdown_on_a_runtime_thread_fails_edeadlk(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    on_main_t m = {.fn = shutdown_fn, .done = fl_test_latch_alloc(1)};
    atomic_init(&m.rc, -1);
    assert_fl_ok(fl_rpc_run_async(fx.ep, on_main_task, &m, NULL));
    wait_latch(m.done);
    assert_fl(FL_EDEADLK, atomic_load(&m.rc));

    fl_test_latch_free(m.done);
    ep_fx_end_closed(&fx);
}

static void test_calls_after_shutdown_fail_eclosed(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START | FX_GW);
    assert_fl_ok(svc_shutdown(fx.svc));

    Fltest__EchoRequest req = echo_req("after shutdown", 1);
    fl_future_t *f = (fl_future_t *)&req; /* must become NULL */
    assert_fl(FL_ECLOSED, fl_rpc_call(fx.gw, M_ECHO, &req.base, 0, &f));
    assert_null(f);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req;
    assert_fl(FL_ECLOSED,
              fl_rpc_call_sync(fx.gw, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);
    tell_count(fx.gw, 0, 0);
    assert_fl(FL_ECLOSED, fl_rpc_last_error());
    assert_int_equal(0, atomic_load(&fx.st.counts));

    fl_rpc_gateway_free(fx.gw);
    fl_rpc_endpoint_free(fx.ep);
    svc_free(fx.svc);
}

static void test_service_alloc_rejects_bad_options_with_einval(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = NULL;
    fl_rpc_service_opts_t o = {0};
    o.workers = 1000; /* an actor system has at most 256 */
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(&o, &svc));
    assert_null(svc);
    assert_fl(FL_EINVAL, fl_rpc_service_alloc(NULL, NULL));
}

static fl_future_t *close_future_seen;

static int close_fn(fl_rpc_service_t *svc)
{
    close_future_seen = fl_rpc_service_close(svc); /* never blocks */
    return close_future_seen ? FL_OK : FL_ENOMEM;
}

static void test_service_close_from_a_main_thread_completes(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);
    fl_future_t *t = fl_rpc_endpoint_termination(fx.ep);

    on_main_t m = {.fn = close_fn, .done = fl_test_latch_alloc(1)};
    atomic_init(&m.rc, -1);
    assert_fl_ok(fl_rpc_run_async(fx.ep, on_main_task, &m, NULL));
    wait_latch(m.done);
    assert_fl_ok(atomic_load(&m.rc));
    assert_fl_ok(future_code(close_future_seen)); /* closes its caller too */
    assert_fl_ok(future_code(t));
    assert_int_equal(1, atomic_load(&fx.st.stops));

    fl_future_release(close_future_seen);
    close_future_seen = NULL;
    fl_future_release(t);
    fl_test_latch_free(m.done);
    ep_fx_end_closed(&fx);
}

static void test_shutdown_drops_pending_scheduled_tasks(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t once, periodic;
    sched_ctx_init(&once, 1);
    sched_ctx_init(&periodic, 1);
    assert_fl_ok(fl_rpc_schedule(svc, sched_task, &once, 60000, NULL));
    assert_fl_ok(fl_rpc_schedule_at_fixed_rate(svc, sched_task, &periodic,
                                               60000, 1000, NULL));

    uint64_t t0 = fl_clock_now_ns();
    assert_fl_ok(fl_rpc_service_shutdown(svc));
    uint64_t el = ms_since(t0);
    if (el >= 5000)
        fail_msg("shutdown took %llu ms", (unsigned long long)el);
    assert_int_equal(0, atomic_load(&once.runs));
    assert_int_equal(0, atomic_load(&periodic.runs));

    svc_free(svc);
    fl_test_latch_free(once.done);
    fl_test_latch_free(periodic.done);
}

/* ---- close and shutdown -------------------------------------------------- */

static void test_service_close_without_failures_succeeds(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st[2];
    tep_init(&st[0]);
    tep_init(&st[1]);
    fl_rpc_endpoint_t *e0 = tep_create_started(svc, "e0", &st[0], NULL);
    fl_rpc_endpoint_t *e1 = tep_create(svc, "e1", &st[1], NULL);

    fl_future_t *c = fl_rpc_service_close(svc);
    assert_fl_ok(future_code(c));
    assert_int_equal(1, atomic_load(&st[0].stops));
    assert_int_equal(0, atomic_load(&st[1].stops)); /* never started */
    fl_rpc_endpoint_t *found = NULL;
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(svc, "e0", &found));
    assert_fl(FL_ENOENT, fl_rpc_service_lookup(svc, "e1", &found));
    assert_fl_ok(fl_rpc_service_shutdown(svc));

    fl_future_release(c);
    fl_rpc_endpoint_free(e0);
    fl_rpc_endpoint_free(e1);
    svc_free(svc);
}

static void test_service_close_waits_for_pending_on_stop_futures(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    trio_t t;
    trio_begin(&t, svc, false);

    fl_future_t *c = fl_rpc_service_close(svc);
    wait_latch(t.st[2].stopping);
    assert_fl_ok(future_code(t.term[0]));
    assert_fl_ok(future_code(t.term[1]));
    assert_false(fl_future_done(t.term[2]));
    assert_false(fl_future_done(c)); /* e2 has not terminated */

    assert_fl_ok(fl_future_complete(t.pending, NULL, NULL));
    assert_fl_ok(future_code(c));
    assert_fl_ok(future_code(t.term[2]));

    fl_future_release(c);
    trio_end(&t);
    svc_end(svc);
}

static void
test_service_close_reports_an_on_stop_failure_and_ends_all_others(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    trio_t t;
    trio_begin(&t, svc, true);

    fl_future_t *c = fl_rpc_service_close(svc);
    wait_latch(t.st[2].stopping);
    assert_fl(FL_EUSER + 5, future_code(t.term[1]));
    assert_false(fl_future_done(c));
    assert_fl_ok(fl_future_complete(t.pending, NULL, NULL));

    assert_fl(FL_EUSER + 5, future_code(c));
    assert_string_equal("stop 1 failed", fl_future_message(c));
    assert_fl_ok(future_code(t.term[0]));
    assert_fl_ok(future_code(t.term[2]));
    for (int i = 0; i < 3; i++)
        assert_int_equal(1, atomic_load(&t.st[i].stops));

    fl_future_release(c);
    trio_end(&t);
    assert_fl(FL_EUSER + 5, fl_rpc_service_shutdown(svc));
    svc_free(svc);
}

static void
test_service_shutdown_returns_the_first_termination_failure(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    tep_t st[2];
    tep_init(&st[0]);
    tep_init(&st[1]);
    fl_future_t *f = fl_future_alloc();
    assert_fl_ok(fl_future_fail(f, FL_EUSER + 6, "shutdown failure"));
    st[1].stop_future = f;
    fl_rpc_endpoint_t *e0 = tep_create_started(svc, "e0", &st[0], NULL);
    fl_rpc_endpoint_t *e1 = tep_create_started(svc, "e1", &st[1], NULL);

    assert_fl(FL_EUSER + 6, fl_rpc_service_shutdown(svc));
    assert_fl(FL_EUSER + 6, fl_rpc_service_shutdown(svc)); /* idempotent */
    assert_int_equal(1, atomic_load(&st[0].stops));
    assert_int_equal(1, atomic_load(&st[1].stops));

    fl_rpc_endpoint_free(e0);
    fl_rpc_endpoint_free(e1);
    svc_free(svc);
}

static void
test_service_close_is_idempotent_and_returns_the_same_future(void **state)
{
    (void)state;
    ep_fx_t fx;
    ep_fx_begin(&fx, "ep", FX_START);

    fl_future_t *c1 = fl_rpc_service_close(fx.svc);
    fl_future_t *c2 = fl_rpc_service_close(fx.svc);
    assert_non_null(c1);
    assert_ptr_equal(c1, c2);
    assert_fl_ok(future_code(c1));
    assert_int_equal(1, atomic_load(&fx.st.stops));

    fl_future_release(c1);
    fl_future_release(c2);
    ep_fx_end_closed(&fx);
}

static void test_service_close_refuses_new_endpoints_with_eclosed(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    fl_future_t *c = fl_rpc_service_close(svc);
    assert_fl_ok(future_code(c));

    tep_t st;
    tep_init(&st);
    fl_rpc_endpoint_opts_t o = tep_opts("late", &st, NULL);
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl(FL_ECLOSED, fl_rpc_endpoint_create(svc, &o, &ep));

    fl_future_release(c);
    svc_end(svc);
}

/* ---- the scheduled executor ---------------------------------------------- */

static void test_schedule_runs_the_task_once_after_the_delay(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 1);

    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_task_id_t id = 0;
    assert_fl_ok(fl_rpc_schedule(svc, sched_task, &c, 30, &id));
    assert_true(id != 0);
    wait_latch(c.done);
    uint64_t waited = (c.start_ns[0] - t0) / NS_PER_MS;
    if (waited < 30)
        fail_msg("ran after %llu ms, want >= 30", (unsigned long long)waited);
    assert_int_equal(1, assert_no_more_runs(svc, &c, 60));
    assert_fl(FL_ENOENT, fl_rpc_cancel(svc, id)); /* finished */

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void
test_schedule_at_fixed_rate_runs_on_its_deadlines_until_cancelled(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 5);
    const int64_t initial = 20, period = 15;

    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_task_id_t id = 0;
    assert_fl_ok(fl_rpc_schedule_at_fixed_rate(svc, sched_task, &c, initial,
                                               period, &id));
    wait_latch(c.done); /* at least 5 runs */
    assert_fl_ok(fl_rpc_cancel(svc, id));
    int runs = assert_no_more_runs(svc, &c, 4 * period);
    assert_true(runs >= 5);

    /* Run k starts no earlier than its deadline initial + k * period. */
    for (int k = 0; k < 5; k++) {
        uint64_t at = (c.start_ns[k] - t0) / NS_PER_MS;
        if (at < (uint64_t)(initial + k * period))
            fail_msg("run %d at %llu ms, deadline %lld ms", k,
                     (unsigned long long)at, (long long)(initial + k * period));
    }

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void test_schedule_with_fixed_delay_waits_between_runs(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 3);
    c.work_ms = 15; /* a fixed rate of 20 ms would leave only ~5 ms gaps */
    c.cancel_at = 3;
    const int64_t delay = 20;

    fl_rpc_task_id_t id = 0;
    assert_fl_ok(
        fl_rpc_schedule_with_fixed_delay(svc, sched_task, &c, 0, delay, &id));
    atomic_store(&c.id, id);
    wait_latch(c.done);
    assert_int_equal(3, assert_no_more_runs(svc, &c, 3 * (delay + 15)));
    assert_fl_ok(atomic_load(&c.cancel_rc)); /* cancelled from the task */

    for (int k = 0; k + 1 < 3; k++) {
        uint64_t gap = (c.start_ns[k + 1] - c.end_ns[k]) / NS_PER_MS;
        if (gap < (uint64_t)delay)
            fail_msg("gap after run %d is %llu ms, want >= %lld", k,
                     (unsigned long long)gap, (long long)delay);
    }

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void test_cancel_returns_ok_then_enoent(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 1);

    fl_rpc_task_id_t id = 0;
    assert_fl_ok(fl_rpc_schedule(svc, sched_task, &c, 60000, &id));
    assert_fl_ok(fl_rpc_cancel(svc, id));
    assert_fl(FL_ENOENT, fl_rpc_cancel(svc, id));
    assert_int_equal(0, assert_no_more_runs(svc, &c, 10));

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void test_cancel_of_a_periodic_task_returns_ok_then_enoent(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    sched_ctx_t c;
    sched_ctx_init(&c, 2);

    fl_rpc_task_id_t id = 0;
    assert_fl_ok(
        fl_rpc_schedule_with_fixed_delay(svc, sched_task, &c, 0, 10, &id));
    wait_latch(c.done);
    assert_fl_ok(fl_rpc_cancel(svc, id));
    assert_fl(FL_ENOENT, fl_rpc_cancel(svc, id));
    (void)assert_no_more_runs(svc, &c, 40);

    fl_test_latch_free(c.done);
    svc_end(svc);
}

static void test_cancel_of_an_unknown_task_is_enoent(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    assert_fl(FL_ENOENT, fl_rpc_cancel(svc, (fl_rpc_task_id_t)987654321));
    svc_end(svc);
}

static void test_schedule_rejects_bad_arguments_with_einval(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    int arg = 0;
    fl_rpc_task_id_t id = 0;

    assert_fl(FL_EINVAL, fl_rpc_schedule(svc, noop_task, &arg, -1, &id));
    assert_fl(FL_EINVAL, fl_rpc_schedule(svc, NULL, &arg, 10, &id));
    assert_fl(FL_EINVAL,
              fl_rpc_schedule_at_fixed_rate(svc, noop_task, &arg, -1, 10, &id));
    assert_fl(FL_EINVAL,
              fl_rpc_schedule_at_fixed_rate(svc, noop_task, &arg, 0, 0, &id));
    assert_fl(FL_EINVAL,
              fl_rpc_schedule_at_fixed_rate(svc, noop_task, &arg, 0, -5, &id));
    assert_fl(FL_EINVAL,
              fl_rpc_schedule_at_fixed_rate(svc, NULL, &arg, 0, 10, &id));
    assert_fl(FL_EINVAL, fl_rpc_schedule_with_fixed_delay(svc, noop_task, &arg,
                                                          -1, 10, &id));
    assert_fl(FL_EINVAL, fl_rpc_schedule_with_fixed_delay(svc, noop_task, &arg,
                                                          0, 0, &id));
    assert_fl(FL_EINVAL,
              fl_rpc_schedule_with_fixed_delay(svc, NULL, &arg, 0, 10, &id));

    svc_end(svc);
}

static void test_schedule_after_shutdown_is_eclosed(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = svc_new(0);
    assert_fl_ok(fl_rpc_service_shutdown(svc));

    int arg = 0;
    assert_fl(FL_ECLOSED, fl_rpc_schedule(svc, noop_task, &arg, 10, NULL));
    assert_fl(FL_ECLOSED, fl_rpc_schedule_at_fixed_rate(svc, noop_task, &arg,
                                                        10, 10, NULL));
    assert_fl(FL_ECLOSED, fl_rpc_schedule_with_fixed_delay(svc, noop_task, &arg,
                                                           10, 10, NULL));

    svc_free(svc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_connect_to_an_existing_endpoint_gives_a_working_gateway),
        FL_TEST(test_connect_to_a_missing_id_fails_econnect_naming_the_address),
        FL_TEST(test_connect_to_a_malformed_address_fails_econnect),
        FL_TEST(
            test_connect_with_a_service_the_endpoint_lacks_fails_ehandshake),
        FL_TEST(test_connect_to_a_created_endpoint_succeeds_calls_not_started),
        FL_TEST(test_connect_to_an_endpoint_with_two_services_reaches_both),
        FL_TEST(test_create_with_a_service_without_descriptor_fails_einval),
        FL_TEST(test_connect_after_shutdown_fails_eclosed_and_leaves_out_null),
        FL_TEST(test_self_gateway_for_an_unimplemented_service_is_enotsup),
        FL_TEST(test_self_gateway_reaches_the_endpoint),
        FL_TEST(test_lookup_finds_a_live_endpoint_by_id),
        FL_TEST(test_lookup_after_termination_is_enoent),
        /* A local-only service's address; a listening one has a port. */
        FX_LOCAL_ONLY(
            test_local_service_has_an_empty_address_and_port_minus_one),
        FL_TEST(test_service_timeout_defaults_to_10000_ms),
        FL_TEST(test_service_default_timeout_applies_to_calls_without_one),
        FL_TEST(test_service_on_a_borrowed_system_leaves_it_running),
        FL_TEST(test_service_owns_a_system_when_given_none),
        FL_TEST(test_shutdown_on_a_runtime_thread_fails_edeadlk),
        FL_TEST(test_service_close_without_failures_succeeds),
        FL_TEST(test_service_close_waits_for_pending_on_stop_futures),
        FL_TEST(
            test_service_close_reports_an_on_stop_failure_and_ends_all_others),
        FL_TEST(test_service_shutdown_returns_the_first_termination_failure),
        FL_TEST(test_service_close_is_idempotent_and_returns_the_same_future),
        FL_TEST(test_service_close_refuses_new_endpoints_with_eclosed),
        FL_TEST(test_schedule_runs_the_task_once_after_the_delay),
        FL_TEST(
            test_schedule_at_fixed_rate_runs_on_its_deadlines_until_cancelled),
        FL_TEST(test_schedule_with_fixed_delay_waits_between_runs),
        FL_TEST(test_cancel_returns_ok_then_enoent),
        FL_TEST(test_cancel_of_a_periodic_task_returns_ok_then_enoent),
        FL_TEST(test_cancel_of_an_unknown_task_is_enoent),
        FL_TEST(test_schedule_rejects_bad_arguments_with_einval),
        FL_TEST(test_schedule_after_shutdown_is_eclosed),
        FL_TEST(test_calls_after_shutdown_fail_eclosed),
        FL_TEST(test_service_alloc_rejects_bad_options_with_einval),
        FL_TEST(test_service_close_from_a_main_thread_completes),
        FL_TEST(test_shutdown_drops_pending_scheduled_tasks),
    };
    return FX_RUN(argc, argv, tests);
}
