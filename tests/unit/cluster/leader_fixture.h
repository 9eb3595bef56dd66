/*
 * leader_fixture.h - what the leader election tests share: an owner
 * endpoint, an event log the callbacks write on the main thread and the
 * test thread waits on, and contender / listener callbacks that log.
 */
#ifndef LEADER_FIXTURE_H
#define LEADER_FIXTURE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <fling/leader.h>

#include "common/internal.h"
#include "fl_test.h"
#include "leader_probe.pb-c.h"

#define LOG_MAX 64
#define LINE_MAX_ 256

/* An event log: lines appended on a main thread, awaited on the test's. */
typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    char line[LOG_MAX][LINE_MAX_];
} rec_t;

static inline void rec_init(rec_t *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    fl_test_cond_init(&r->cv);
}

static inline void rec_fini(rec_t *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static inline void rec_add(rec_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void rec_add(rec_t *r, const char *fmt, ...)
{
    pthread_mutex_lock(&r->mu);
    if (r->n < LOG_MAX) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->line[r->n], LINE_MAX_, fmt, ap);
        va_end(ap);
        r->n++;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Waits up to ms for the log to hold n lines; returns how many it holds. */
static inline int rec_wait(rec_t *r, int n, int64_t ms)
{
    struct timespec dl = fl_test_deadline(ms);
    pthread_mutex_lock(&r->mu);
    while (r->n < n && pthread_cond_timedwait(&r->cv, &r->mu, &dl) == 0)
        ;
    int got = r->n;
    pthread_mutex_unlock(&r->mu);
    return got;
}

static inline int rec_count(rec_t *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* Line i of the log (the caller waited for it). */
static inline const char *rec_line(rec_t *r, int i)
{
    return r->line[i];
}

/* Fails the test unless the log reaches n lines within ms. */
#define REC_AWAIT(r, n, ms)                                                    \
    do {                                                                       \
        int got_ = rec_wait((r), (n), (ms));                                   \
        if (got_ < (n))                                                        \
            fail_msg("waited %d ms for %d events of " #r                       \
                     ", got %d (last: %s)",                                    \
                     (int)(ms), (n), got_,                                     \
                     got_ > 0 ? (r)->line[got_ - 1] : "none");                 \
    } while (0)

/* ---- the owner endpoint ----------------------------------------------------
 */

static void probe_nothing(Leadertest__LeaderProbe_Service *svc,
                          const Leadertest__LeaderNothing *in,
                          Leadertest__LeaderNothing_Closure done, void *cd)
{
    Leadertest__LeaderNothing out = LEADERTEST__LEADER_NOTHING__INIT;
    done(&out, cd);
}

static Leadertest__LeaderProbe_Service probe_impl =
    LEADERTEST__LEADER_PROBE__INIT(probe_);
static ProtobufCService *const probe_services[] = {&probe_impl.base};

/* A started endpoint `id` of svc. */
static inline fl_rpc_endpoint_t *owner_start(fl_rpc_service_t *svc,
                                             const char *id)
{
    fl_rpc_endpoint_opts_t o = {
        .id = id, .services = probe_services, .nservices = 1};
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    assert_fl_ok(fl_rpc_endpoint_start(ep));
    return ep;
}

/* Runs fn(arg) on ep's main thread and waits for it. */
typedef void (*main_fn)(void *arg);
typedef struct main_call {
    main_fn fn;
    void *arg;
} main_call_t;

static int main_call_cb(fl_rpc_endpoint_t *ep, void *state, void *arg,
                        void **out, fl_free_cb *out_free)
{
    main_call_t *c = arg;
    c->fn(c->arg);
    return FL_OK;
}

static inline void on_main(fl_rpc_endpoint_t *ep, main_fn fn, void *arg)
{
    main_call_t c = {fn, arg};
    fl_future_t *f = NULL;
    assert_fl_ok(
        fl_rpc_call_async(ep, main_call_cb, &c, NULL, FL_TEST_WAIT_MS, &f));
    assert_fl_ok(fl_test_future_code(f));
    fl_future_release(f);
}

/* ---- a contender that confirms at once, and a listener ------------------- */

typedef struct contender {
    rec_t rec;
    const char *address;
    fl_leader_election_t *le;
    /* Under rec.mu: the token of each grant, in order. */
    fl_fencing_token_t grants[LOG_MAX];
    int ngrants;
    char confirm_err[256];
} contender_t;

/* The token of c's grant k (0: the first), read under the record's lock
 * (a grant may come meanwhile on the main thread); fails the test if there
 * was no such grant. */
static inline fl_fencing_token_t contender_token(contender_t *c, int k)
{
    pthread_mutex_lock(&c->rec.mu);
    int n = c->ngrants;
    fl_fencing_token_t t = k < n ? c->grants[k] : (fl_fencing_token_t){{0}};
    pthread_mutex_unlock(&c->rec.mu);
    if (k >= n)
        fail_msg("contender %s has %d grants, not %d", c->address, n, k + 1);
    return t;
}

static void contender_grant(fl_leader_election_t *le,
                            const fl_fencing_token_t *token, void *arg)
{
    contender_t *c = arg;
    char hex[33];
    pthread_mutex_lock(&c->rec.mu);
    if (c->ngrants < LOG_MAX)
        c->grants[c->ngrants++] = *token;
    pthread_mutex_unlock(&c->rec.mu);
    int rc = fl_leader_election_confirm(le, token, c->address, c->confirm_err,
                                        sizeof c->confirm_err);
    rec_add(&c->rec, "grant %s confirm %s", fl_fencing_token_hex(token, hex),
            fl_err_name(rc));
}

static void contender_revoke(fl_leader_election_t *le, void *arg)
{
    contender_t *c = arg;
    rec_add(&c->rec, "revoke");
}

static const fl_leader_contender_t contender_cbs = {contender_grant,
                                                    contender_revoke};

static void listener_cb(fl_leader_retrieval_t *lr, const char *address,
                        const fl_fencing_token_t *token, void *arg)
{
    rec_t *r = arg;
    char hex[33];
    if (address == NULL)
        rec_add(r, "none");
    else
        rec_add(r, "leader %s %s", address, fl_fencing_token_hex(token, hex));
}

static void free_election(void *arg)
{
    fl_leader_election_free(arg);
}

static void free_retrieval(void *arg)
{
    fl_leader_retrieval_free(arg);
}

/*
 * Out of memory at the n-th allocation of fl_leader_*_alloc then
 * fl_leader_*_start of component on ep with o, for n = 1, 2, ... until
 * both succeed: each failure is FL_ENOMEM with its reason and no object;
 * the sanitizer builds check that nothing leaks. Every object is freed on
 * ep's main thread (the last right after its start). Sets how many runs
 * failed in alloc and in start.
 */
static inline void oom_each_allocation(fl_rpc_endpoint_t *ep,
                                       const fl_ha_opts_t *o, bool election,
                                       const char *component, int *in_alloc,
                                       int *in_start)
{
    const char *what = election ? "leader election" : "leader retrieval";
    char oom_alloc[256], oom_start[256], want[512];
    snprintf(oom_alloc, sizeof oom_alloc,
             "Could not create the %s of '%s': out of memory", what, component);
    snprintf(oom_start, sizeof oom_start,
             "Could not start the %s of '%s': out of memory", what, component);
    rec_t r;
    rec_init(&r);
    contender_t c = {.address = "fling://local/oom"};
    rec_init(&c.rec);
    *in_alloc = *in_start = 0;
    for (uint64_t n = 1;; n++) {
        fl_leader_election_t *le = NULL;
        fl_leader_retrieval_t *lr = NULL;
        char err[512] = "";
        fl__alloc_fail_after(n, false);
        int rc =
            election
                ? fl_leader_election_alloc(ep, o, component, &contender_cbs, &c,
                                           &le, err, sizeof err)
                : fl_leader_retrieval_alloc(ep, o, component, listener_cb, &r,
                                            &lr, err, sizeof err);
        if (rc != FL_OK) {
            fl__alloc_fail_after(0, false);
            assert_fl(FL_ENOMEM, rc);
            assert_null(election ? (void *)le : (void *)lr);
            assert_string_equal(oom_alloc, err);
            (*in_alloc)++;
            continue;
        }
        rc = election ? fl_leader_election_start(le, err, sizeof err)
                      : fl_leader_retrieval_start(lr, err, sizeof err);
        fl__alloc_fail_after(0, false);
        /* The main thread's own failures (the task that would open the
         * session) are logged and leave a dead object: freed like any. */
        on_main(ep, election ? free_election : free_retrieval,
                election ? (void *)le : (void *)lr);
        if (rc == FL_OK)
            break;
        assert_fl(FL_ENOMEM, rc);
        /* Out of memory in our allocations, or in the task posted to the
         * main thread (fl_rpc_run_async says why). */
        if (strcmp(err, oom_start) != 0) {
            snprintf(want, sizeof want, "Could not start the %s of '%s': %s",
                     what, component, fl_rpc_last_message());
            assert_string_equal(want, err);
        }
        (*in_start)++;
    }
    rec_fini(&c.rec);
    rec_fini(&r);
}

#endif
