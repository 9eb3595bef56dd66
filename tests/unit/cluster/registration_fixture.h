/*
 * registration_fixture.h - what the registration tests share: a capture of
 * the cluster log records (with the time each came), the scripted target
 * endpoint (registration_test.proto), the owner endpoint, the registration
 * function, and waits on their events.
 *
 * The target records each call (when it came, the timeout it carries, who
 * sent it) and answers as the case scripts; the registration function
 * records when the owner made each call. Delays between attempts are
 * measured there, on the owner's side; the tests wait on events (calls,
 * log records, futures), never on sleeps. Header-only (static inline):
 * each test is one program.
 *
 * Each program runs once per transport (tests/CMakeLists.txt,
 * FLING_TRANSPORT_TESTS), the transport as its argument
 * (unit/rpc/rpc_transport.h): over TCP the target listens on 127.0.0.1
 * port 0 and the owner stands on a second service, as in another process.
 * T(fn) is a case of both runs; T_ONCE(fn) one whose subject is the
 * registration's own logic (delays, cancellation, options), which the
 * transport plays no part in: the local run only.
 */
#ifndef REGISTRATION_FIXTURE_H
#define REGISTRATION_FIXTURE_H

#include "fl_test.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fling/registration.h>

#include "registration_test.pb-c.h"
#include "unit/rpc/rpc_transport.h"

#define REG (&flreg__registrar__descriptor)
#define TARGET_ID "reg_target"
#define MAXCALLS 32

/* ---- log capture (with the time each record came) ----------------------- */

typedef struct cap_rec {
    fl_log_level_t level;
    char message[800];
    char next_in_ms[24];
    uint64_t at_ns;
} cap_rec_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    cap_rec_t r[256];
    /* Set by cap_hold, cleared by the record it holds. */
    const char *hold_prefix;
    fl_test_latch_t *hold_gate;
} cap = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {{0}}, NULL, NULL};

static inline void cap_handler(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    if (rec->component != FL_LOGC_CLUSTER)
        return;
    pthread_mutex_lock(&cap.mu);
    if (cap.n < 256) {
        cap_rec_t *r = &cap.r[cap.n++];
        r->level = rec->level;
        r->at_ns = fl_clock_now_ns();
        snprintf(r->message, sizeof r->message, "%s", rec->message);
        r->next_in_ms[0] = '\0';
        for (size_t i = 0; i < rec->nfields; i++)
            if (strcmp(rec->fields[i].key, "next_in_ms") == 0)
                snprintf(r->next_in_ms, sizeof r->next_in_ms, "%s",
                         rec->fields[i].value);
    }
    fl_test_latch_t *hold = NULL;
    if (cap.hold_prefix != NULL &&
        strncmp(rec->message, cap.hold_prefix, strlen(cap.hold_prefix)) == 0) {
        hold = cap.hold_gate;
        cap.hold_prefix = NULL;
    }
    pthread_cond_broadcast(&cap.cv);
    pthread_mutex_unlock(&cap.mu);
    if (hold != NULL)
        (void)fl_test_latch_wait(hold, FL_TEST_WAIT_MS);
}

/* The next cluster record whose message begins with prefix holds the
 * thread that logs it, once captured, until gate opens (at most
 * FL_TEST_WAIT_MS): what that thread does after the record waits for the
 * test. prefix is borrowed until then. */
static inline void cap_hold(const char *prefix, fl_test_latch_t *gate)
{
    pthread_mutex_lock(&cap.mu);
    cap.hold_prefix = prefix;
    cap.hold_gate = gate;
    pthread_mutex_unlock(&cap.mu);
}

/* Waits for the first cluster record whose message begins with prefix. */
static inline cap_rec_t cap_wait(const char *prefix)
{
    cap_rec_t out = {0};
    struct timespec dl = fl_test_deadline(FL_TEST_WAIT_MS);
    pthread_mutex_lock(&cap.mu);
    for (;;) {
        for (int i = 0; i < cap.n; i++) {
            if (strncmp(cap.r[i].message, prefix, strlen(prefix)) == 0) {
                out = cap.r[i];
                pthread_mutex_unlock(&cap.mu);
                return out;
            }
        }
        if (pthread_cond_timedwait(&cap.cv, &cap.mu, &dl) != 0)
            break;
    }
    pthread_mutex_unlock(&cap.mu);
    fail_msg("no cluster record \"%s...\" within %d ms", prefix,
             FL_TEST_WAIT_MS);
    return out;
}

/* ---- the target ---------------------------------------------------------- */

typedef enum act {
    ACT_SUCCESS = 0, /* answers success, id 100 + call number */
    ACT_REJECT,      /* answers rejection "no slots for you", id 200 + n */
    ACT_FAILURE,     /* answers failure "resource manager is starting" */
    ACT_ERROR,       /* fails the call: FL_EUSER + 1 "registry busy" */
    ACT_HOLD         /* keeps the call open (never answered, or later) */
} act_t;

typedef struct target {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    act_t script[MAXCALLS]; /* beyond nscript: ACT_SUCCESS */
    int nscript;
    int n;
    uint64_t at_ns[MAXCALLS];
    int64_t timeout_ms[MAXCALLS];
    char caller[MAXCALLS][16];
    fl_rpc_call_t *held[MAXCALLS];
    Flreg__RegisterReply_Closure closure[MAXCALLS];
} target_t;

static target_t tg = {.mu = PTHREAD_MUTEX_INITIALIZER};

static inline void reply(Flreg__RegisterReply_Closure closure, void *cd,
                         int outcome, const char *reason, int64_t id)
{
    Flreg__RegisterReply r = FLREG__REGISTER_REPLY__INIT;
    r.outcome = outcome;
    r.reason = (char *)reason;
    r.id = id;
    closure(&r, cd);
}

static inline void h_register_task_manager(Flreg__Registrar_Service *svc,
                                           const Flreg__RegisterRequest *in,
                                           Flreg__RegisterReply_Closure closure,
                                           void *cd)
{
    (void)svc;
    if (strcmp(in->caller, "probe") == 0) {
        reply(closure, cd, FL_REGISTRATION_SUCCESS, "", 99);
        return;
    }
    pthread_mutex_lock(&tg.mu);
    int i = tg.n;
    if (i >= MAXCALLS) { /* the test then fails on the count */
        pthread_mutex_unlock(&tg.mu);
        fl_rpc_fail(cd, FL_ELIMIT, "too many calls");
        return;
    }
    tg.at_ns[i] = fl_clock_now_ns();
    tg.timeout_ms[i] = in->timeout_ms;
    snprintf(tg.caller[i], sizeof tg.caller[i], "%s", in->caller);
    act_t a = i < tg.nscript ? tg.script[i] : ACT_SUCCESS;
    if (a == ACT_HOLD) {
        tg.held[i] = fl_rpc_defer(cd);
        tg.closure[i] = closure;
    }
    tg.n++;
    pthread_cond_broadcast(&tg.cv);
    pthread_mutex_unlock(&tg.mu);
    switch (a) {
    case ACT_SUCCESS:
        reply(closure, cd, FL_REGISTRATION_SUCCESS, "", 100 + i);
        break;
    case ACT_REJECT:
        reply(closure, cd, FL_REGISTRATION_REJECTION, "no slots for you",
              200 + i);
        break;
    case ACT_FAILURE:
        reply(closure, cd, FL_REGISTRATION_FAILURE,
              "resource manager is starting", 0);
        break;
    case ACT_ERROR:
        fl_rpc_fail(cd, FL_EUSER + 1, "registry busy");
        break;
    case ACT_HOLD:
        break;
    }
}

static inline void target_reset(const act_t *script, int n)
{
    pthread_mutex_lock(&tg.mu);
    fl_test_cond_init(&tg.cv);
    tg.n = 0;
    tg.nscript = n;
    for (int i = 0; i < n; i++)
        tg.script[i] = script[i];
    memset(tg.held, 0, sizeof tg.held);
    pthread_mutex_unlock(&tg.mu);
}

/* Waits until the target has had n calls. */
static inline void target_wait(int n)
{
    struct timespec dl = fl_test_deadline(FL_TEST_WAIT_MS);
    pthread_mutex_lock(&tg.mu);
    while (tg.n < n)
        if (pthread_cond_timedwait(&tg.cv, &tg.mu, &dl) != 0)
            break;
    int got = tg.n;
    pthread_mutex_unlock(&tg.mu);
    if (got < n)
        fail_msg("the target had %d calls, want %d within %d ms", got, n,
                 FL_TEST_WAIT_MS);
}

/* Answers held call i with outcome (id 100 + i, or 200 + i; a failure
 * with the reason ACT_FAILURE gives). */
static inline void target_answer(int i, int outcome)
{
    pthread_mutex_lock(&tg.mu);
    fl_rpc_call_t *c = tg.held[i];
    Flreg__RegisterReply_Closure closure = tg.closure[i];
    tg.held[i] = NULL;
    pthread_mutex_unlock(&tg.mu);
    assert_non_null(c);
    reply(closure, c, outcome,
          outcome == FL_REGISTRATION_FAILURE ? "resource manager is starting"
                                             : "",
          (outcome == FL_REGISTRATION_SUCCESS ? 100 : 200) + i);
}

/* Answers every call still held (their callers gave up). */
static inline void target_release_held(void)
{
    for (int i = 0; i < MAXCALLS; i++) {
        pthread_mutex_lock(&tg.mu);
        fl_rpc_call_t *c = tg.held[i];
        tg.held[i] = NULL;
        pthread_mutex_unlock(&tg.mu);
        if (c != NULL)
            fl_rpc_fail(c, FL_ECANCELED, "test over");
    }
}

/* ---- the fixture: target and owner endpoints ----------------------------- */

static Flreg__Registrar_Service impl = FLREG__REGISTRAR__INIT(h_);
static ProtobufCService *const services[1] = {&impl.base};

typedef struct fx {
    fl_rpc_service_t *tsvc; /* the target's; the owner's too when local */
    fl_rpc_service_t *osvc; /* cli_of(tsvc) */
    fl_rpc_endpoint_t *target;
    fl_rpc_endpoint_t *owner;
    fl_fencing_token_t token;
    char address[256];
    char label[300]; /* "<address> (registrar)" */
} fx_t;

static inline fl_rpc_endpoint_t *start_ep(fl_rpc_service_t *svc, const char *id,
                                          const fl_fencing_token_t *tok)
{
    fl_rpc_endpoint_opts_t o = {0};
    o.id = id;
    o.services = services;
    o.nservices = 1;
    o.fencing_token = tok;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    assert_fl_ok(fl_rpc_endpoint_start(ep));
    return ep;
}

static inline void fx_target(fx_t *fx)
{
    fx->target = start_ep(fx->tsvc, TARGET_ID, &fx->token);
    assert_string_equal(fl_rpc_endpoint_address(fx->target), fx->address);
}

/* Services for this run's transport and the owner; the target too if
 * with_target. */
static inline void fx_init(fx_t *fx, bool with_target)
{
    memset(fx, 0, sizeof *fx);
    fx->token = fl_test_token(7);
    fl_rpc_service_opts_t so = {0};
    so.workers = 2;
    svc_listen(&so);
    assert_fl_ok(fl_rpc_service_alloc(&so, &fx->tsvc));
    fx->osvc = cli_of(fx->tsvc);
    snprintf(fx->address, sizeof fx->address, "%s",
             tep_address(fx->tsvc, TARGET_ID).s);
    snprintf(fx->label, sizeof fx->label, "%s (registrar)", fx->address);
    fx->owner = start_ep(fx->osvc, "reg_owner", NULL);
    if (with_target)
        fx_target(fx);
}

static inline void fx_end(fx_t *fx)
{
    target_release_held();
    if (fx->target != NULL)
        fl_test_endpoint_end(fx->target);
    fl_test_endpoint_end(fx->owner);
    cli_end(fx->tsvc);
    fl_test_service_end(fx->tsvc);
}

/* ---- the registration function ------------------------------------------- */

typedef struct invoker {
    fx_t *fx;
    int refuse;          /* != FL_OK: the function returns it */
    int refuse_once;     /* != FL_OK: its first call returns it */
    atomic_int off_main; /* calls not on the owner's main thread */
    atomic_int calls;
    atomic_int bad_token; /* calls given another token than the target's */
    uint64_t sent_ns[MAXCALLS]; /* when call k was made (main thread) */
} invoker_t;

static inline int map_reply(void *arg, void *value, void **out,
                            fl_free_cb *out_free)
{
    (void)arg;
    const Flreg__RegisterReply *r = value;
    *out = fl_registration_response_alloc((fl_registration_outcome_t)r->outcome,
                                          (void *)(intptr_t)r->id, NULL, "%s",
                                          r->reason);
    *out_free = fl_registration_response_free;
    return *out != NULL ? FL_OK : FL_ENOMEM;
}

static inline int reg_invoke(fl_rpc_gateway_t *gw,
                             const fl_fencing_token_t *tok, int64_t timeout_ms,
                             void *arg, fl_future_t **out)
{
    invoker_t *iv = arg;
    int k = atomic_fetch_add(&iv->calls, 1);
    if (k < MAXCALLS)
        iv->sent_ns[k] = fl_clock_now_ns();
    if (!fl_rpc_in_main_thread(iv->fx->owner))
        atomic_fetch_add(&iv->off_main, 1);
    if (tok == NULL || memcmp(tok->bytes, iv->fx->token.bytes, 16) != 0)
        atomic_fetch_add(&iv->bad_token, 1);
    if (iv->refuse != FL_OK)
        return iv->refuse;
    if (iv->refuse_once != FL_OK) {
        int rc = iv->refuse_once;
        iv->refuse_once = FL_OK;
        return rc;
    }
    Flreg__RegisterRequest req = FLREG__REGISTER_REQUEST__INIT;
    req.caller = "owner";
    req.timeout_ms = timeout_ms;
    fl_future_t *f = NULL;
    int rc = fl_rpc_call(gw, 0, &req.base, timeout_ms, &f);
    if (rc != FL_OK)
        return rc;
    *out = fl_future_then(f, map_reply, NULL);
    fl_future_release(f);
    return *out != NULL ? FL_OK : FL_ENOMEM;
}

static inline fl_registration_spec_t spec_of(fx_t *fx, invoker_t *iv,
                                             const fl_registration_opts_t *o)
{
    iv->fx = fx;
    fl_registration_spec_t s = {0};
    s.target_name = "registrar";
    s.address = fx->address;
    s.desc = REG;
    s.token = &fx->token;
    s.invoke = reg_invoke;
    s.arg = iv;
    s.opts = o;
    return s;
}

static inline fl_registration_opts_t opts_of(int64_t initial, int64_t max,
                                             int64_t error_delay,
                                             int64_t refused_delay,
                                             double jitter)
{
    fl_registration_opts_t o;
    fl_registration_opts_default(&o);
    o.initial_timeout_ms = initial;
    o.max_timeout_ms = max;
    o.error_delay_ms = error_delay;
    o.refused_delay_ms = refused_delay;
    o.jitter = jitter;
    return o;
}

static inline fl_registration_t *reg_start(fx_t *fx, invoker_t *iv,
                                           const fl_registration_opts_t *o)
{
    fl_registration_spec_t s = spec_of(fx, iv, o);
    fl_registration_t *reg = NULL;
    char why[256] = "";
    assert_fl_ok(fl_registration_alloc(fx->owner, &s, &reg, why, sizeof why));
    assert_string_equal(why, "");
    assert_fl_ok(fl_registration_start(reg));
    return reg;
}

/* Waits for the result and checks that it is a success or rejection with
 * the payload id; returns the response (borrowed from the future). */
static inline fl_registration_response_t *
result_ok(fl_registration_t *reg, fl_registration_outcome_t outcome, int64_t id)
{
    fl_future_t *f = fl_registration_future(reg);
    fl_test_future_ok(f, "registration");
    fl_registration_response_t *r = fl_future_value(f);
    assert_non_null(r);
    assert_int_equal(r->outcome, outcome);
    assert_int_equal((intptr_t)r->payload, id);
    return r;
}

/* A Register call from the owner's main thread (caller "sentinel"): it
 * reaches the target after every call the owner made before it. */
static inline void sentinel_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    Flreg__RegisterRequest req = FLREG__REGISTER_REQUEST__INIT;
    req.caller = "sentinel";
    fl_future_t *f = NULL;
    if (fl_rpc_call(arg, 0, &req.base, 0, &f) == FL_OK) /* else: no call */
        fl_future_release(f);
}

/* Proves that the owner queued no further attempt before now: the next
 * call the target gets (number `next`) is the sentinel. */
static inline void assert_no_more_attempts(fx_t *fx, int next)
{
    fl_rpc_gateway_t *gw =
        fl_test_connect(fx->osvc, fx->address, REG, &fx->token);
    assert_fl_ok(fl_rpc_run_async(fx->owner, sentinel_task, gw, NULL));
    target_wait(next + 1);
    assert_string_equal(tg.caller[next], "sentinel");
    fl_rpc_gateway_free(gw);
}

static inline int setup(void **state)
{
    cap.n = 0;
    cap.hold_prefix = NULL;
    fl_test_cond_init(&cap.cv);
    fl_log_set_handler(cap_handler, NULL);
    assert_fl_ok(fl_log_set_trace("cluster"));
    return fl_test_arm(state);
}

static inline int teardown(void **state)
{
    fl_log_set_handler(NULL, NULL);
    return fl_test_disarm(state);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T_ONCE(fn)                                                             \
    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,              \
                                             FX_MARK_LOCAL_ONLY)

/* Every invocation ran on the owner's main thread with the target's token. */
static inline void assert_invoker(invoker_t *iv, int calls)
{
    assert_int_equal(atomic_load(&iv->calls), calls);
    assert_int_equal(atomic_load(&iv->off_main), 0);
    assert_int_equal(atomic_load(&iv->bad_token), 0);
}

/* Spacing of the owner's calls i and i+1 (the invoker's clock, read as
 * each call is made): at least want_ms, exactly, because the owner waits
 * out the timeout or delay after making call i; at most 400 ms late.
 * Measured where the calls are made, not where they arrive: on a loaded
 * machine call i's way to the target can be slower than call i+1's
 * (a gap of 100 ms once arrived as 75). */
static inline void assert_gap(const invoker_t *iv, int i, int64_t want_ms)
{
    char what[64];
    snprintf(what, sizeof what, "the gap after attempt %d", i + 1);
    uint64_t gap = (iv->sent_ns[i + 1] - iv->sent_ns[i]) / 1000000u;
    fl_test_assert_elapsed(what, gap, (uint64_t)want_ms,
                           (uint64_t)want_ms + 400);
}

/* Waits for the debug record of the answer to `attempt` that came after
 * a cancel, and checks its text. */
static inline void expect_answer_ignored(const fx_t *fx, int attempt)
{
    char want[1024];
    snprintf(want, sizeof want,
             "Ignoring the answer to registration attempt %d at %s: the "
             "registration was cancelled",
             attempt, fx->label);
    cap_rec_t r = cap_wait("Ignoring the answer");
    assert_int_equal(r.level, FL_LOG_DEBUG);
    assert_string_equal(r.message, want);
}

/* Where a registration at fx's target that met out of memory stopped, by
 * the message of its result (each computed here, in full): 1 at its start
 * (fl_registration_start refused), 2 at a later step; fails the test on
 * any other message. */
static inline int oom_step_of(const fx_t *fx, const char *msg)
{
    char want[16][512];
    int n = 0;
    const char *l = fx->label;
    snprintf(want[n++], sizeof want[0],
             "Registration at %s could not start: no memory to run a task on "
             "rpc endpoint 'reg_owner'",
             l);
    snprintf(want[n++], sizeof want[0],
             "Registration at %s could not start: could not queue a task to "
             "rpc endpoint 'reg_owner': out of memory",
             l);
    int starts = n;
    snprintf(want[n++], sizeof want[0],
             "Registration at %s failed: fl_rpc_connect: out of memory", l);
    const char *steps[] = {"wait for the connection", "wait for the answer",
                           "schedule the next attempt"};
    for (int i = 0; i < 3; i++)
        snprintf(want[n++], sizeof want[0],
                 "Registration at %s stopped: could not %s on its owner "
                 "endpoint 'reg_owner': out of memory",
                 l, steps[i]);
    for (int k = 1; k <= 3; k++)
        snprintf(want[n++], sizeof want[0],
                 "Registration at %s failed: the registration function "
                 "returned FL_ENOMEM (out of memory) on attempt %d",
                 l, k);
    for (int i = 0; i < n; i++)
        if (strcmp(msg, want[i]) == 0)
            return i < starts ? 1 : 2;
    fail_msg("unexpected message after out of memory: %s", msg);
    return -1;
}

#endif /* REGISTRATION_FIXTURE_H */
