/*
 * io_turn_test.c - calls from the network run on the service's I/O thread
 * (fl_rpc_service_opts_t.no_io_turns, src/rpc/tcp_server.c): a remote call to
 * an idle endpoint runs there, a local call on a worker; with no_io_turns
 * every call goes to the workers; the two paths together keep an
 * endpoint's calls serial; an endpoint whose turns there take over 1 ms
 * twice in a row moves to the workers for good (and says so in an INFO
 * line), while a slow call between fast ones moves nothing.
 *
 * One process: a server on 127.0.0.1, port 0, with endpoints "first" and
 * "second" (CalcGateway of hostile_gateways.proto, with the handlers
 * below), and a local-only client service connected to both. Add answers
 * v + 1 and, as its text, where it ran: "io" (fl__net_on_io_thread()),
 * "worker", or "not-main" if it was not on the endpoint's main thread.
 *
 * An endpoint is idle again once a call that ran on the I/O thread has
 * been answered (the turn ends before the answer is written); after one
 * that ran on a worker, or after its start, it may not be yet, so
 * settle_on_io calls until a call runs on the I/O thread.
 */
#include "wire_client.h"

#include "remote/net.h"

#define CALC (&flhostile__calc_gateway__descriptor)

#define SLOW_MS 3         /* a "slow" Add's sleep: over the 1 ms limit */
#define PIPELINE 64       /* remote calls in flight in the serial case */
#define REMOTE_CALLS 4096 /* remote calls of the serial case */
#define LOCAL_MIN 1024    /* local calls and tasks the hammer makes at least */
#define LOCAL_WINDOW 16   /* its local calls in flight */
#define ROUNDS 6          /* slow/fast rounds of the strike cases */

typedef enum { RAN_IO, RAN_WORKER, RAN_OFF_MAIN, RAN_KINDS } ran_t;
static const char *const ran_names[RAN_KINDS] = {"io", "worker", "not-main"};

/* An endpoint's state; calc_start's on_start takes it as its calc_t. */
typedef struct io_ep {
    calc_t calc; /* first */
    atomic_int inside;
    atomic_int overlaps;
    /* Calls and tasks run, deliberately NOT atomic: only the main thread
     * touches it, so TSan reports a handler on the I/O thread and one on
     * a worker that do not happen one after the other. */
    long runs;
} io_ep_t;

/* Marks the endpoint's main thread busy, counting an overlap if it was. */
static void serial_enter(io_ep_t *st)
{
    if (atomic_exchange(&st->inside, 1) != 0)
        atomic_fetch_add(&st->overlaps, 1);
    st->runs++;
}

/* Add: v + 1, and where it ran; text "slow" sleeps SLOW_MS first. */
static void io_add(Flhostile__CalcGateway_Service *svc,
                   const Flhostile__Num *in, Flhostile__Num_Closure closure,
                   void *closure_data)
{
    (void)svc;
    io_ep_t *st = fl_rpc_call_state(closure_data);
    serial_enter(st);
    ran_t ran = !fl_rpc_in_main_thread(fl_rpc_call_endpoint(closure_data))
                    ? RAN_OFF_MAIN
                : fl__net_on_io_thread() ? RAN_IO
                                         : RAN_WORKER;
    if (strcmp(in->text, "slow") == 0) {
        struct timespec ts = {0, SLOW_MS * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    Flhostile__Num r = FLHOSTILE__NUM__INIT;
    r.v = in->v + 1;
    r.text = (char *)ran_names[ran];
    closure(&r, closure_data);
    atomic_store(&st->inside, 0);
}

static void io_depth(Flhostile__CalcGateway_Service *s,
                     const Flhostile__Chain *in, Flhostile__Num_Closure closure,
                     void *data)
{
    calc_depth(s, in, closure, data);
}

static ProtobufCService *const *io_services(void)
{
    static Flhostile__CalcGateway_Service impl =
        FLHOSTILE__CALC_GATEWAY__INIT(io_);
    static ProtobufCService *const services[1] = {&impl.base};
    return services;
}

/* ---- the INFO line of an endpoint moving to the workers ------------------ */

static struct {
    pthread_mutex_t mu;
    unsigned moves[2]; /* under mu: lines naming "first", "second" */
    char line[512];    /* under mu: the last of them */
} moved = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *const ids[2] = {"first", "second"};

/* The log sink: errors and warnings to stderr; notes the move lines. */
static void log_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    const char *msg = rec->message;
    if (rec->level <= FL_LOG_WARN)
        fprintf(stderr, "fling: %s\n", msg);
    if (strstr(msg, "go to the worker threads") == NULL)
        return;
    pthread_mutex_lock(&moved.mu);
    for (int i = 0; i < 2; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "endpoint %s: ", ids[i]);
        if (strncmp(msg, prefix, strlen(prefix)) == 0)
            moved.moves[i]++;
    }
    snprintf(moved.line, sizeof moved.line, "%s", msg);
    pthread_mutex_unlock(&moved.mu);
}

static void moved_reset(void)
{
    pthread_mutex_lock(&moved.mu);
    moved.moves[0] = moved.moves[1] = 0;
    moved.line[0] = '\0';
    pthread_mutex_unlock(&moved.mu);
}

/* The move lines naming ids[i] since the case's fx_start; the last line
 * into line. */
static unsigned moves_of(int i, char *line, size_t n)
{
    pthread_mutex_lock(&moved.mu);
    unsigned m = moved.moves[i];
    snprintf(line, n, "%s", moved.line);
    pthread_mutex_unlock(&moved.mu);
    return m;
}

/* ---- the server, its endpoints and the gateways -------------------------- */

typedef struct io_fx {
    fl_rpc_service_t *server, *client;
    fl_rpc_endpoint_t *ep[2];
    io_ep_t st[2];
    fl_rpc_gateway_t *remote[2]; /* through the client service, over TCP */
    fl_rpc_gateway_t *local[2];  /* the server's own, in-process */
} io_fx_t;

static void fx_start(io_fx_t *fx, bool no_io_turns)
{
    memset(fx, 0, sizeof *fx);
    moved_reset();
    fl_rpc_service_opts_t so = {.workers = 2,
                                .bind_host = "127.0.0.1",
                                .port = "0",
                                .no_io_turns = no_io_turns};
    assert_fl_ok(fl_rpc_service_alloc(&so, &fx->server));
    fl_rpc_service_opts_t co = {.workers = 2, .name = "io-client"};
    assert_fl_ok(fl_rpc_service_alloc(&co, &fx->client));
    for (int i = 0; i < 2; i++) {
        assert_fl_ok(calc_start(fx->server, ids[i], &fx->st[i].calc,
                                io_services(), 1, &fx->ep[i]));
        fx->remote[i] = fl_test_connect(
            fx->client, fl_rpc_endpoint_address(fx->ep[i]), CALC, NULL);
        char local[64];
        snprintf(local, sizeof local, "fling://local/%s", ids[i]);
        fx->local[i] = fl_test_connect(fx->server, local, CALC, NULL);
    }
}

static void fx_end(io_fx_t *fx)
{
    for (int i = 0; i < 2; i++) {
        assert_int_equal(0, atomic_load(&fx->st[i].overlaps));
        fl_rpc_gateway_free(fx->remote[i]);
        fl_rpc_gateway_free(fx->local[i]);
        assert_fl_ok(calc_end(fx->ep[i]));
    }
    fl_test_service_end(fx->client);
    fl_test_service_end(fx->server);
}

/* Waits for an Add(v) call's future: it must answer v + 1; returns where
 * it ran. Does not release f. */
static ran_t add_result(fl_future_t *f, int64_t v)
{
    fl_test_future_ok(f, "Add(%lld)", (long long)v);
    const Flhostile__Num *r = fl_future_value(f);
    assert_non_null(r);
    assert_int_equal(v + 1, r->v);
    for (int k = 0; k < RAN_KINDS; k++)
        if (strcmp(r->text, ran_names[k]) == 0)
            return (ran_t)k;
    fail_msg("Add(%lld) answered text \"%s\"", (long long)v, r->text);
    return RAN_KINDS;
}

static fl_future_t *add_call(fl_rpc_gateway_t *gw, int64_t v, const char *text)
{
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = (char *)text;
    return fl_test_call(gw, M_ADD, &req.base, WAIT_MS);
}

/* Add(v, text) through gw, waited for; where it ran. */
static ran_t add(fl_rpc_gateway_t *gw, int64_t v, const char *text)
{
    fl_future_t *f = add_call(gw, v, text);
    ran_t ran = add_result(f, v);
    fl_future_release(f);
    return ran;
}

#define expect_ran(want, got)                                                  \
    do {                                                                       \
        ran_t w_ = (want), g_ = (got);                                         \
        if (w_ != g_)                                                          \
            fail_msg("%s: ran on %s, want %s", #got, ran_names[g_],            \
                     ran_names[w_]);                                           \
    } while (0)

/* Fast remote calls until one runs on the I/O thread: the endpoint is idle
 * then. */
static void settle_on_io(fl_rpc_gateway_t *remote)
{
    for (int tries = 0; tries < 1000; tries++)
        if (add(remote, -1, "fast") == RAN_IO)
            return;
    fail_msg("no call ran on the I/O thread in 1000 tries");
}

/* ---- cases --------------------------------------------------------------- */

/* By default a remote call to an idle endpoint runs on the server's I/O
 * thread (as the endpoint's main thread), a local call on a worker; both
 * endpoints alike. */
static void test_remote_calls_run_on_the_io_thread(void **state)
{
    (void)state;
    io_fx_t fx;
    fx_start(&fx, false);
    for (int i = 0; i < 2; i++) {
        settle_on_io(fx.remote[i]);
        for (int k = 0; k < 3; k++) {
            expect_ran(RAN_IO, add(fx.remote[i], 10 * k, "fast"));
            expect_ran(RAN_WORKER, add(fx.local[i], 10 * k + 1, "fast"));
            settle_on_io(fx.remote[i]);
        }
    }
    fx_end(&fx);
}

/* no_io_turns: every remote call runs on a worker. */
static void test_no_io_turns_sends_every_call_to_the_workers(void **state)
{
    (void)state;
    io_fx_t fx;
    fx_start(&fx, true);
    for (int k = 0; k < 8; k++)
        for (int i = 0; i < 2; i++)
            expect_ran(RAN_WORKER, add(fx.remote[i], k, "fast"));
    fx_end(&fx);
}

/* The hammer: local calls (LOCAL_WINDOW in flight) and run_async tasks to
 * one endpoint from its own thread, until told to stop after LOCAL_MIN.
 * Records, never asserts (cmocka's asserts are the test thread's). */
typedef struct hammer {
    fl_rpc_gateway_t *gw;
    fl_rpc_endpoint_t *ep;
    atomic_bool stop;
    atomic_long tasks_run;
    long calls, tasks, failures; /* the hammer's; read after the join */
} hammer_t;

static void hammer_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    io_ep_t *st = state;
    hammer_t *h = arg;
    serial_enter(st);
    atomic_fetch_add(&h->tasks_run, 1);
    atomic_store(&st->inside, 0);
}

static void hammer_check(hammer_t *h, fl_future_t *f, int64_t v)
{
    const Flhostile__Num *r = NULL;
    if (fl_future_wait(f, WAIT_MS) == FL_OK)
        r = fl_future_value(f);
    if (r == NULL || r->v != v + 1)
        h->failures++;
    fl_future_release(f);
}

static void *hammer_main(void *p)
{
    hammer_t *h = p;
    fl_future_t *win[LOCAL_WINDOW] = {0};
    for (long i = 0; i < LOCAL_MIN || !atomic_load(&h->stop); i++) {
        long slot = i % LOCAL_WINDOW;
        if (win[slot] != NULL)
            hammer_check(h, win[slot], i - LOCAL_WINDOW);
        win[slot] = NULL;
        if (fl_rpc_run_async(h->ep, hammer_task, h, NULL) == FL_OK)
            h->tasks++;
        else
            h->failures++;
        Flhostile__Num req = FLHOSTILE__NUM__INIT;
        req.v = i;
        req.text = "fast";
        if (fl_rpc_call(h->gw, M_ADD, &req.base, WAIT_MS, &win[slot]) != FL_OK)
            h->failures++;
        h->calls = i + 1;
    }
    for (long i = h->calls; i < h->calls + LOCAL_WINDOW; i++)
        if (win[i % LOCAL_WINDOW] != NULL)
            hammer_check(h, win[i % LOCAL_WINDOW], i - LOCAL_WINDOW);
    return NULL;
}

/* Remote calls (PIPELINE in flight) and a hammer of local calls and tasks
 * on one endpoint at once: never two at a time, every answer right, and
 * the remote calls ran on the I/O thread (endpoint idle) and on workers
 * (endpoint busy with the hammer's work). */
static void test_io_turns_and_workers_stay_serial(void **state)
{
    (void)state;
    io_fx_t fx;
    fx_start(&fx, false);
    settle_on_io(fx.remote[0]);
    long runs = fx.st[0].runs;
    hammer_t h = {.gw = fx.local[0], .ep = fx.ep[0]};
    atomic_init(&h.stop, false);
    atomic_init(&h.tasks_run, 0);
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, hammer_main, &h));
    fl_future_t *win[PIPELINE];
    long ran[RAN_KINDS] = {0};
    /* At least REMOTE_CALLS, then on until both kinds of turn were seen:
     * on a loaded machine the hammer may get no CPU for a while. */
    uint64_t until = fl_clock_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    long sent = 0;
    for (long i = 0; i < sent + PIPELINE; i++) {
        long slot = i % PIPELINE;
        if (i >= PIPELINE) {
            ran[add_result(win[slot], i - PIPELINE)]++;
            fl_future_release(win[slot]);
        }
        bool more =
            i < REMOTE_CALLS || ((ran[RAN_IO] == 0 || ran[RAN_WORKER] == 0) &&
                                 fl_clock_now_ns() < until);
        if (i == sent && more) {
            win[slot] = add_call(fx.remote[0], i, "fast");
            sent++;
        }
    }
    atomic_store(&h.stop, true);
    assert_int_equal(0, pthread_join(th, NULL));
    assert_int_equal(0, h.failures);
    assert_true(h.calls >= LOCAL_MIN);
    assert_int_equal(h.calls, h.tasks);
    assert_int_equal(h.tasks, atomic_load(&h.tasks_run));
    /* Every call and task answered, the last local call after the tasks:
     * the count is final, and what it counted happened before. */
    assert_int_equal(sent + h.calls + h.tasks, fx.st[0].runs - runs);
    assert_int_equal(0, ran[RAN_OFF_MAIN]);
    assert_int_equal(sent, ran[RAN_IO] + ran[RAN_WORKER]);
    if (ran[RAN_IO] == 0 || ran[RAN_WORKER] == 0)
        fail_msg("remote calls on the I/O thread: %ld, on workers: %ld",
                 ran[RAN_IO], ran[RAN_WORKER]);
    fx_end(&fx);
}

/*
 * ROUNDS rounds of a slow call to "first" and a fast call to ids[fast]:
 * the slow ones run on the I/O thread up to round `moves_at`, on workers
 * from then on; the fast ones on the I/O thread throughout. "first" says
 * it moved once if it did, "second" never.
 */
static void slow_fast_rounds(int fast, int moves_at)
{
    io_fx_t fx;
    fx_start(&fx, false);
    settle_on_io(fx.remote[0]);
    settle_on_io(fx.remote[fast]);
    for (int k = 0; k < ROUNDS; k++) {
        expect_ran(k < moves_at ? RAN_IO : RAN_WORKER,
                   add(fx.remote[0], 2 * k, "slow"));
        expect_ran(RAN_IO, add(fx.remote[fast], 2 * k + 1, "fast"));
    }
    char line[512];
    assert_int_equal(0, moves_of(1, line, sizeof line));
    assert_int_equal(moves_at < ROUNDS, moves_of(0, line, sizeof line));
    if (moves_at < ROUNDS &&
        strstr(line, "endpoint first: 2 turns in a row on the I/O "
                     "thread ran for 1000 us or more") == NULL)
        fail_msg("the move line reads \"%s\"", line);
    fx_end(&fx);
}

/* "first" sleeps SLOW_MS per call: its first two calls run on the I/O
 * thread, then it moves to the workers for good, saying so once; "second",
 * called between them, stays on the I/O thread. */
static void test_slow_endpoint_moves_to_the_workers(void **state)
{
    (void)state;
    slow_fast_rounds(1, 2);
}

/* A slow call after a fast one is one strike, and the fast one after it
 * clears it: slow, fast, slow, fast... to one endpoint all stay on the I/O
 * thread. */
static void test_strikes_reset_after_a_fast_turn(void **state)
{
    (void)state;
    slow_fast_rounds(0, ROUNDS);
}

/* PIPELINE slow calls sent back to back: a turn on the I/O thread ends
 * after its first slow call (the workers take the queue), so at most two of
 * them (two turns, then the endpoint moves) run there, whatever reads they
 * arrive in; every one is answered, in order of the endpoint's runs. */
static void test_a_turn_ends_after_one_slow_call(void **state)
{
    (void)state;
    io_fx_t fx;
    fx_start(&fx, false);
    settle_on_io(fx.remote[0]);
    fl_future_t *f[PIPELINE];
    for (int k = 0; k < PIPELINE; k++)
        f[k] = add_call(fx.remote[0], k, "slow");
    int ran[RAN_KINDS] = {0};
    for (int k = 0; k < PIPELINE; k++) {
        ran[add_result(f[k], k)]++;
        fl_future_release(f[k]);
    }
    assert_in_range(ran[RAN_IO], 1, 2);
    assert_int_equal(PIPELINE - ran[RAN_IO], ran[RAN_WORKER]);
    assert_int_equal(0, ran[RAN_OFF_MAIN]);
    expect_ran(RAN_IO, add(fx.remote[1], 1, "fast"));
    fx_end(&fx);
}

int main(void)
{
    fl_log_set_level(FL_LOG_INFO);
    fl_log_set_handler(log_sink, NULL);
    const struct CMUnitTest tests[] = {
        FL_TEST(test_remote_calls_run_on_the_io_thread),
        FL_TEST(test_no_io_turns_sends_every_call_to_the_workers),
        FL_TEST(test_io_turns_and_workers_stay_serial),
        FL_TEST(test_slow_endpoint_moves_to_the_workers),
        FL_TEST(test_strikes_reset_after_a_fast_turn),
        FL_TEST(test_a_turn_ends_after_one_slow_call),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fl_log_set_handler(NULL, NULL);
    return rc;
}
