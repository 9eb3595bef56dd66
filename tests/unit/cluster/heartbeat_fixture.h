/*
 * heartbeat_fixture.h - the fixture of heartbeat_test.c: two nodes
 * ("sender", "receiver") of one service, each an endpoint implementing
 * the gateway of heartbeat_gateways.proto with a heartbeat manager whose
 * callbacks record events; fake and witness targets; running jobs on a
 * node's main thread. One includer only (its functions are static).
 *
 * heartbeat_test runs once per transport (unit/rpc/rpc_transport.h): over
 * TCP the service listens on 127.0.0.1 port 0 and the nodes call each
 * other through it. Cases whose subject is the manager's own logic
 * (timeouts, thresholds, options) run in the local run only
 * (FX_LOCAL_ONLY).
 */
#ifndef HEARTBEAT_FIXTURE_H
#define HEARTBEAT_FIXTURE_H

#include "fl_test.h"

#include <fling/heartbeat.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heartbeat_gateways.pb-c.h"
#include "unit/rpc/rpc_transport.h"

#define WAIT_MS 20000
#define M_REQUEST 0
#define M_RECEIVE 1
#define HB (&hbtest__heartbeat_gateway__descriptor)

/* How the fake target of a sender answers: one letter per call. */
#define SCRIPT_MAX 32

typedef struct ev_copy {
    char target[64];
    int err;
    char message[1024];
    int64_t last_heartbeat_ms, silent_ms, timeout_ms;
} ev_copy_t;

typedef struct node {
    const char *name;
    fl_heartbeat_role_t role;
    fl_rpc_endpoint_t *ep;
    fl_rpc_gateway_t *peer; /* to the other node */
    fl_heartbeat_manager_t *m;
    fl_test_latch_t *started;
    atomic_int mute;       /* the handlers ack without telling the manager */
    atomic_int sends;      /* heartbeats sent to the real peer */
    atomic_int arg_frees;  /* send_arg_free calls */
    atomic_int fake_sends; /* calls to the fake target */
    atomic_int witness_heard;
    char script[SCRIPT_MAX + 1]; /* U unreachable, O other, S success */
    /* Events and payloads, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ntimeouts, nunreachable, nincompatible, nreports;
    int unreachable_at; /* fake_sends when on_unreachable ran */
    ev_copy_t timeout, unreachable, incompatible;
    char last_payload[64];
    char last_origin[64];
} node_t;

/* ---- the fixture ---------------------------------------------------------
 */

static void bump(node_t *n, int *counter)
{
    pthread_mutex_lock(&n->mu);
    (*counter)++;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

/* Waits until *counter >= want (read under mu); fails the test if not. */
static void wait_count(node_t *n, const int *counter, int want,
                       const char *what)
{
    struct timespec dl = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&n->mu);
    while (*counter < want)
        if (pthread_cond_timedwait(&n->cv, &n->mu, &dl) != 0)
            break;
    int got = *counter;
    pthread_mutex_unlock(&n->mu);
    if (got < want)
        fail_msg("%s: %s reached %d, wanted %d", n->name, what, got, want);
}

static int count_of(node_t *n, const int *counter)
{
    pthread_mutex_lock(&n->mu);
    int v = *counter;
    pthread_mutex_unlock(&n->mu);
    return v;
}

static void copy_event(ev_copy_t *c, const fl_heartbeat_event_t *ev)
{
    snprintf(c->target, sizeof c->target, "%s", ev->target);
    snprintf(c->message, sizeof c->message, "%s", ev->message);
    c->err = ev->err;
    c->last_heartbeat_ms = ev->last_heartbeat_ms;
    c->silent_ms = ev->silent_ms;
    c->timeout_ms = ev->timeout_ms;
}

static void on_timeout(void *arg, const fl_heartbeat_event_t *ev)
{
    node_t *n = arg;
    pthread_mutex_lock(&n->mu);
    copy_event(&n->timeout, ev);
    pthread_mutex_unlock(&n->mu);
    bump(n, &n->ntimeouts);
}

static void on_unreachable(void *arg, const fl_heartbeat_event_t *ev)
{
    node_t *n = arg;
    pthread_mutex_lock(&n->mu);
    copy_event(&n->unreachable, ev);
    n->unreachable_at = atomic_load(&n->fake_sends);
    pthread_mutex_unlock(&n->mu);
    bump(n, &n->nunreachable);
}

static void on_incompatible(void *arg, const fl_heartbeat_event_t *ev)
{
    node_t *n = arg;
    pthread_mutex_lock(&n->mu);
    copy_event(&n->incompatible, ev);
    pthread_mutex_unlock(&n->mu);
    bump(n, &n->nincompatible);
}

/* The payload for target: "<role>-to-<target>". */
static void retrieve(void *arg, const char *target, const void **data,
                     size_t *len)
{
    node_t *n = arg;
    static __thread char buf[128];
    snprintf(buf, sizeof buf, "%s-to-%s", n->name, target);
    *data = buf;
    *len = strlen(buf);
}

static void report(void *arg, const char *origin, const void *data, size_t len)
{
    node_t *n = arg;
    pthread_mutex_lock(&n->mu);
    snprintf(n->last_payload, sizeof n->last_payload, "%.*s", (int)len,
             (const char *)data);
    snprintf(n->last_origin, sizeof n->last_origin, "%s", origin);
    pthread_mutex_unlock(&n->mu);
    bump(n, &n->nreports);
}

/* The handlers: hand the heartbeat to the manager, fail the call with its
 * refusal. */
static void handle(const Hbtest__Heartbeat *in, Hbtest__Ack_Closure closure,
                   void *cd, bool request)
{
    node_t *n = fl_rpc_call_state(cd);
    if (!atomic_load(&n->mute)) {
        fl_heartbeat_timing_t tm;
        fl_heartbeat_msg_t msg = {.origin = in->origin,
                                  .target = in->target,
                                  .payload = in->payload.data,
                                  .payload_len = in->payload.len};
        if (in->timing != NULL) {
            tm.interval_ms = in->timing->interval_ms;
            tm.timeout_ms = in->timing->timeout_ms;
            msg.timing = &tm;
        }
        char why[512];
        int rc =
            request
                ? fl_heartbeat_receive_request(n->m, &msg, why, sizeof why)
                : fl_heartbeat_receive_response(n->m, &msg, why, sizeof why);
        if (rc != FL_OK) {
            fl_rpc_fail(cd, rc, "%s", why);
            return;
        }
    }
    Hbtest__Ack ack = HBTEST__ACK__INIT;
    closure(&ack, cd);
}

static void h_request_heartbeat(Hbtest__HeartbeatGateway_Service *s,
                                const Hbtest__Heartbeat *in,
                                Hbtest__Ack_Closure closure, void *cd)
{
    (void)s;
    handle(in, closure, cd, true);
}

static void h_receive_heartbeat(Hbtest__HeartbeatGateway_Service *s,
                                const Hbtest__Heartbeat *in,
                                Hbtest__Ack_Closure closure, void *cd)
{
    (void)s;
    handle(in, closure, cd, false);
}

static Hbtest__HeartbeatGateway_Service impl =
    HBTEST__HEARTBEAT_GATEWAY__INIT(h_);

/* The send function of the real peer: one call through the gateway. */
static fl_future_t *send_real(void *arg, const fl_heartbeat_msg_t *msg)
{
    node_t *n = arg;
    Hbtest__Heartbeat req = HBTEST__HEARTBEAT__INIT;
    Hbtest__Timing tm = HBTEST__TIMING__INIT;
    req.origin = (char *)msg->origin;
    req.target = (char *)msg->target;
    req.payload.data = (uint8_t *)msg->payload;
    req.payload.len = msg->payload_len;
    if (msg->timing != NULL) {
        tm.interval_ms = msg->timing->interval_ms;
        tm.timeout_ms = msg->timing->timeout_ms;
        req.timing = &tm;
    }
    fl_future_t *f = NULL;
    unsigned method = n->role == FL_HEARTBEAT_SENDER ? M_REQUEST : M_RECEIVE;
    fl_rpc_call(n->peer, method, &req.base, 0, &f);
    atomic_fetch_add(&n->sends, 1);
    return f;
}

static void count_free(void *arg)
{
    node_t *n = arg;
    atomic_fetch_add(&n->arg_frees, 1);
}

/* The fake target: answers each call as its script says. */
static fl_future_t *send_fake(void *arg, const fl_heartbeat_msg_t *msg)
{
    (void)msg;
    node_t *n = arg;
    int i = atomic_fetch_add(&n->fake_sends, 1) + 1;
    char c = i <= (int)strlen(n->script) ? n->script[i - 1] : 'U';
    fl_future_t *f = fl_future_alloc();
    if (c == 'S')
        fl_future_complete(f, NULL, NULL);
    else if (c == 'O')
        fl_future_fail(f, FL_ETIMEDOUT, "fake #%d timed out", i);
    else
        fl_future_fail(f, FL_EUNREACHABLE, "recipient unreachable: fake #%d",
                       i);
    return f;
}

/* The witness target: answers every request at once, on the main thread,
 * so a test can wait for rounds to go by. */
static void witness_answer(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)arg;
    node_t *n = state;
    fl_heartbeat_msg_t msg = {.origin = "witness"};
    char why[256];
    fl_heartbeat_receive_response(n->m, &msg, why, sizeof why);
    pthread_mutex_lock(&n->mu);
    atomic_fetch_add(&n->witness_heard, 1);
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static fl_future_t *send_witness(void *arg, const fl_heartbeat_msg_t *msg)
{
    (void)msg;
    node_t *n = arg;
    fl_rpc_run_async(n->ep, witness_answer, NULL, NULL);
    fl_future_t *f = fl_future_alloc();
    fl_future_complete(f, NULL, NULL);
    return f;
}

/* Waits until the witness was heard from `more` more times; fails the
 * test if not, at once if the witness timed out (no round goes to it
 * after: the machine stalled longer than the timeout). */
static void wait_witness(node_t *n, int more)
{
    int want = atomic_load(&n->witness_heard) + more;
    struct timespec dl = fl_test_deadline(WAIT_MS);
    pthread_mutex_lock(&n->mu);
    bool lost = false;
    while (atomic_load(&n->witness_heard) < want &&
           !(lost = strcmp(n->timeout.target, "witness") == 0))
        if (pthread_cond_timedwait(&n->cv, &n->mu, &dl) != 0)
            break;
    ev_copy_t ev = n->timeout;
    pthread_mutex_unlock(&n->mu);
    if (lost)
        fail_msg("%s: the witness timed out: %s", n->name, ev.message);
    if (atomic_load(&n->witness_heard) < want)
        fail_msg("%s: the witness was not heard from %d more times", n->name,
                 more);
}

static int n_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    fl_test_latch_count_down(((node_t *)state)->started);
    return FL_OK;
}

/* ---- running on a node's main thread -------------------------------------
 */

typedef struct job {
    node_t *n;
    int (*fn)(struct job *j);
    /* inputs and outputs */
    const char *id;
    const fl_heartbeat_opts_t *opts;
    int rc;
    int64_t value;
    char err[512];
    /* job_oom: runs inner with the oom_n-th allocation failing, and says
     * whether it came (oom_fixture.h). */
    int (*inner)(struct job *j);
    uint64_t oom_n;
    bool oom_hit;
} job_t;

static int run_job(fl_rpc_endpoint_t *ep, void *state, void *arg, void **out,
                   fl_free_cb *out_free)
{
    (void)ep;
    (void)state;
    (void)out;
    (void)out_free;
    job_t *j = arg;
    j->rc = j->fn(j);
    return FL_OK;
}

/* Runs j->fn on j->n's main thread and waits for it. */
static void on_main(job_t *j)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call_async(j->n->ep, run_job, j, NULL, WAIT_MS, &f));
    fl_test_future_ok(f, "job on %s", j->n->name);
    fl_future_release(f);
}

static int job_alloc(job_t *j)
{
    return fl_heartbeat_manager_alloc(j->n->ep, j->opts, &j->n->m, j->err,
                                      sizeof j->err);
}

static int job_monitor_peer(job_t *j)
{
    return fl_heartbeat_monitor(j->n->m, j->id, send_real, j->n, count_free);
}

static int job_monitor_fake(job_t *j)
{
    return fl_heartbeat_monitor(j->n->m, "fake", send_fake, j->n, NULL);
}

static int job_monitor_witness(job_t *j)
{
    return fl_heartbeat_monitor(j->n->m, "witness", send_witness, j->n, NULL);
}

static int job_unmonitor(job_t *j)
{
    return fl_heartbeat_unmonitor(j->n->m, j->id);
}

static int job_last(job_t *j)
{
    j->value = fl_heartbeat_last_from(j->n->m, j->id);
    return FL_OK;
}

static int job_stop(job_t *j)
{
    return fl_heartbeat_manager_stop(j->n->m);
}

static int job_free(job_t *j)
{
    fl_heartbeat_manager_free(j->n->m);
    j->n->m = NULL;
    return FL_OK;
}

static int do_job(node_t *n, int (*fn)(job_t *), const char *id)
{
    job_t j = {.n = n, .fn = fn, .id = id};
    on_main(&j);
    return j.rc;
}

static int64_t last_from(node_t *n, const char *id)
{
    job_t j = {.n = n, .fn = job_last, .id = id};
    on_main(&j);
    return j.value;
}

typedef struct pair {
    fl_rpc_service_t *svc;
    node_t s, r;
} pair_t;

static fl_heartbeat_opts_t opts_of(node_t *n, int64_t interval, int64_t timeout)
{
    fl_heartbeat_opts_t o = {.id = n->name,
                             .role = n->role,
                             .interval_ms = interval,
                             .timeout_ms = timeout,
                             .on_timeout = on_timeout,
                             .on_unreachable = on_unreachable,
                             .on_incompatible = on_incompatible,
                             .retrieve_payload = retrieve,
                             .report_payload = report,
                             .arg = n};
    return o;
}

static void node_init(pair_t *p, node_t *n, const char *name,
                      fl_heartbeat_role_t role)
{
    memset(n, 0, sizeof *n);
    n->name = name;
    n->role = role;
    pthread_mutex_init(&n->mu, NULL);
    fl_test_cond_init(&n->cv);
    n->started = fl_test_latch_alloc(1);
    ProtobufCService *svcs[] = {&impl.base};
    fl_rpc_endpoint_opts_t eo = {.id = name,
                                 .services = svcs,
                                 .nservices = 1,
                                 .state = n,
                                 .on_start = n_on_start};
    assert_fl_ok(fl_rpc_endpoint_create(p->svc, &eo, &n->ep));
    assert_fl_ok(fl_rpc_endpoint_start(n->ep));
    fl_test_latch_await(n->started);
}

/* Both nodes of a service for this run's transport, and their gateways
 * to each other, without managers. */
static void pair_nodes(pair_t *p)
{
    fl_rpc_service_opts_t svo = {0};
    svc_listen(&svo);
    assert_fl_ok(fl_rpc_service_alloc(&svo, &p->svc));
    node_init(p, &p->s, "sender", FL_HEARTBEAT_SENDER);
    node_init(p, &p->r, "receiver", FL_HEARTBEAT_RECEIVER);
    p->s.peer =
        fl_test_connect(p->svc, fl_rpc_endpoint_address(p->r.ep), HB, NULL);
    p->r.peer =
        fl_test_connect(p->svc, fl_rpc_endpoint_address(p->s.ep), HB, NULL);
}

/* Starts both nodes of a service for this run's transport and their
 * managers with these timings (the sender's first, then the receiver's);
 * the receiver monitors the sender, then (if `link`) the sender monitors
 * the receiver. */
static void pair_start(pair_t *p, int64_t si, int64_t st, int64_t ri,
                       int64_t rt, bool link)
{
    pair_nodes(p);
    fl_heartbeat_opts_t so = opts_of(&p->s, si, st);
    fl_heartbeat_opts_t ro = opts_of(&p->r, ri, rt);
    job_t j = {.n = &p->s, .fn = job_alloc, .opts = &so};
    on_main(&j);
    assert_fl_ok(j.rc);
    j = (job_t){.n = &p->r, .fn = job_alloc, .opts = &ro};
    on_main(&j);
    assert_fl_ok(j.rc);
    assert_fl_ok(do_job(&p->r, job_monitor_peer, "sender"));
    if (link)
        assert_fl_ok(do_job(&p->s, job_monitor_peer, "receiver"));
}

static void node_end(node_t *n)
{
    if (n->m != NULL)
        do_job(n, job_free, NULL);
    fl_test_endpoint_end(n->ep);
    fl_rpc_gateway_free(n->peer);
    fl_test_latch_free(n->started);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
}

static void pair_end(pair_t *p)
{
    node_end(&p->s);
    node_end(&p->r);
    fl_test_service_end(p->svc);
}

/* "2026-12-05T01:02:03.456Z", as the manager writes it. */
static void iso(char *buf, size_t len, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* HEARTBEAT_FIXTURE_H */
