/*
 * src/cluster/registration.c - the retrying registration (contract 3.1):
 * connect, attempt, retry with doubling timeouts and jittered delays.
 *
 * Every step runs on the owner's main thread: the connect and attempt
 * futures continue there (fl_rpc_on_complete) and the delays are the
 * owner's scheduled tasks. Each hop holds a reference to the registration;
 * a hop that the owner drops (not started, terminated) fails the result
 * with FL_EUNREACHABLE. Cancellation may come from any thread: the flag is
 * checked by every step, so a late answer is ignored.
 */
#include <fling/registration.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/internal.h"

struct fl_registration {
    atomic_uint refs; /* the handle's, one per pending hop */
    atomic_bool cancelled;
    atomic_bool started;
    fl_rpc_endpoint_t *owner;
    char *owner_id; /* copied: hop_dropped may run after the owner is gone */
    char *address;
    char *label; /* "<address>" or "<address> (<name>)", for messages */
    const ProtobufCServiceDescriptor *desc;
    bool fenced;
    fl_fencing_token_t token;
    fl_registration_invoke_cb invoke;
    void *arg;
    fl_registration_opts_t opts;
    uint64_t rng; /* the internal random source's state */
    fl_future_t *result;

    /* Main thread only. */
    fl_rpc_gateway_t *gw; /* connected, owned until a success */
    unsigned attempt;     /* attempts so far, for the logs */
    int64_t timeout_ms;   /* the next attempt's */

    pthread_mutex_t lk; /* guards timer: cancel may come from any thread */
    fl_rpc_scheduled_t *timer;
};

static void step_connect(fl_registration_t *reg);
/* Calls the registration function: attempt number reg->attempt (counted
 * by the caller), timeout reg->timeout_ms. */
static void step_attempt(fl_registration_t *reg);

/* splitmix64: the default random source of the jitter. */
static uint64_t rng_next(void *arg)
{
    uint64_t *s = arg;
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static fl_registration_t *reg_ref(fl_registration_t *reg)
{
    /* Relaxed: taken while another reference is held. */
    atomic_fetch_add_explicit(&reg->refs, 1, memory_order_relaxed);
    return reg;
}

static void reg_unref(void *p)
{
    fl_registration_t *reg = p;
    /* acq_rel: the last release sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&reg->refs, 1, memory_order_acq_rel) != 1)
        return;
    fl_rpc_gateway_free(reg->gw);
    fl_rpc_scheduled_free(reg->timer);
    fl_future_release(reg->result);
    pthread_mutex_destroy(&reg->lk);
    fl__free(reg->owner_id);
    fl__free(reg->address);
    fl__free(reg->label);
    fl__free(reg);
}

static bool is_cancelled(const fl_registration_t *reg)
{
    return atomic_load_explicit(&reg->cancelled, memory_order_acquire);
}

static void fail_unreachable(fl_registration_t *reg)
{
    if (!is_cancelled(reg))
        fl_future_fail(reg->result, FL_EUNREACHABLE,
                       "Registration at %s stopped: its owner endpoint '%s' "
                       "is no longer running",
                       reg->label, reg->owner_id);
}

/* The hop this thread is handing to the owner (hand_over), and whether the
 * owner dropped it within that call: a refusal (FL_ENOMEM ...) must fail
 * the result with its own reason, not as an owner that stopped. */
static _Thread_local struct {
    const fl_registration_t *reg;
    bool dropped;
} handing;

/* A hop the owner dropped without running it: nobody will retry, so the
 * result must not stay pending. */
static void hop_dropped(void *p)
{
    fl_registration_t *reg = p;
    if (handing.reg == reg)
        handing.dropped = true; /* hand_over says why */
    else
        fail_unreachable(reg);
    reg_unref(reg);
}

/* Before a call that hands a hop of reg (freed by hop_dropped) to the
 * owner. */
static void hand_begin(fl_registration_t *reg)
{
    handing.reg = reg;
    handing.dropped = false;
}

/* After it, with what it returned: a refusal fails the result with its
 * reason; a hop dropped within an accepted call, as the owner stopping. */
static void hand_end(fl_registration_t *reg, int rc, const char *what)
{
    bool dropped = handing.dropped;
    handing.reg = NULL;
    handing.dropped = false;
    if (rc != FL_OK) {
        if (!is_cancelled(reg))
            fl_future_fail(reg->result, rc,
                           "Registration at %s stopped: could not %s on its "
                           "owner endpoint '%s': %s",
                           reg->label, what, reg->owner_id, fl_strerror(rc));
    } else if (dropped) {
        fail_unreachable(reg);
    }
}

static void fail_result(fl_registration_t *reg, int err, const char *msg)
{
    FL_LOG_KV(
        FL_LOG_WARN,
        FL_KV(FL_F("target", reg->label), FL_F("error", fl_err_name(err))),
        "%s", msg);
    fl_future_fail(reg->result, err, "%s", msg);
}

/* The scheduled step of reg has come: its handle is done with. */
static void timer_ran(fl_registration_t *reg)
{
    pthread_mutex_lock(&reg->lk);
    fl_rpc_scheduled_free(reg->timer);
    reg->timer = NULL;
    pthread_mutex_unlock(&reg->lk);
}

static void run_connect(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    fl_registration_t *reg = arg;
    timer_ran(reg);
    step_connect(reg);
    reg_unref(reg);
}

static void run_attempt(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    fl_registration_t *reg = arg;
    timer_ran(reg);
    reg->attempt++;
    step_attempt(reg);
    reg_unref(reg);
}

/* Runs fn on the main thread after delay_ms (the delay already jittered). */
static void schedule(fl_registration_t *reg, fl_rpc_run_cb fn, int64_t delay_ms)
{
    if (is_cancelled(reg))
        return;
    fl_rpc_scheduled_t *h = NULL;
    hand_begin(reg);
    int rc = fl_rpc_schedule_run_async(reg->owner, fn, reg_ref(reg),
                                       hop_dropped, delay_ms, &h);
    hand_end(reg, rc, "schedule the next attempt");
    if (rc != FL_OK)
        return;
    pthread_mutex_lock(&reg->lk);
    fl_rpc_scheduled_free(reg->timer);
    reg->timer = h;
    pthread_mutex_unlock(&reg->lk);
    /* A cancel between the check above and the store could not see h. */
    if (is_cancelled(reg))
        fl_rpc_scheduled_cancel(h);
}

static void on_connected(fl_future_t *f, void *arg)
{
    fl_registration_t *reg = arg;
    if (is_cancelled(reg))
        goto out;
    int err = fl_future_error(f);
    if (err != FL_OK) {
        int64_t d =
            fl_registration_jitter(&reg->opts, reg->opts.error_delay_ms);
        FL_LOG_KV(FL_LOG_INFO,
                  FL_KV(FL_F("target", reg->label),
                        FL_FU64("attempt", reg->attempt),
                        FL_FU64("next_in_ms", d)),
                  "Registration at %s attempt %u could not connect: %s; "
                  "attempt %u starts in %lld ms",
                  reg->label, reg->attempt, fl_future_message(f),
                  reg->attempt + 1, (long long)d);
        schedule(reg, run_connect, d);
        goto out;
    }
    fl_rpc_gateway_free(reg->gw); /* none: connect_later dropped it */
    reg->gw = fl_future_take_value(f);
    reg->timeout_ms = reg->opts.initial_timeout_ms;
    step_attempt(reg);
out:
    reg_unref(reg);
}

static void step_connect(fl_registration_t *reg)
{
    if (is_cancelled(reg))
        return;
    reg->attempt++;
    fl_future_t *f = NULL;
    int rc = fl_rpc_connect(fl_rpc_endpoint_service(reg->owner), reg->address,
                            reg->desc, reg->fenced ? &reg->token : NULL, &f);
    if (rc != FL_OK) {
        char msg[FL_FUTURE_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "Registration at %s failed: %s", reg->label,
                 fl_rpc_last_message());
        fail_result(reg, rc, msg);
        return;
    }
    hand_begin(reg);
    rc = fl_rpc_on_complete(reg->owner, f, on_connected, reg_ref(reg),
                            hop_dropped);
    hand_end(reg, rc, "wait for the connection");
    fl_future_release(f);
}

/* Attempt reg->attempt failed with an error (why): the next one connects
 * anew after the error delay, as Flink's startRegistrationLater does. The
 * gateway is dropped: its endpoint may be gone for good (a target that
 * restarted under the same address is a new endpoint, which only a new
 * connect reaches). */
static void connect_later(fl_registration_t *reg, const char *why)
{
    unsigned n = reg->attempt;
    int64_t d = fl_registration_jitter(&reg->opts, reg->opts.error_delay_ms);
    FL_LOG_KV(FL_LOG_INFO,
              FL_KV(FL_F("target", reg->label), FL_FU64("attempt", n),
                    FL_FU64("next_in_ms", d)),
              "Registration at %s attempt %u failed: %s; attempt %u connects "
              "again in %lld ms",
              reg->label, n, why, n + 1, (long long)d);
    fl_rpc_gateway_free(reg->gw);
    reg->gw = NULL;
    schedule(reg, run_connect, d);
}

/* The timeout of the attempt after one that timed out: doubled, capped. */
static int64_t next_timeout(const fl_registration_t *reg)
{
    int64_t t = reg->timeout_ms;
    int64_t max = reg->opts.max_timeout_ms;
    return t > max / 2 ? max : 2 * t;
}

static void on_answer(fl_future_t *f, void *arg)
{
    fl_registration_t *reg = arg;
    if (is_cancelled(reg)) {
        FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("target", reg->label)),
                  "Ignoring the answer to registration attempt %u at %s: the "
                  "registration was cancelled",
                  reg->attempt, reg->label);
        goto out;
    }
    unsigned n = reg->attempt;
    int err = fl_future_error(f);
    if (err == FL_ETIMEDOUT) {
        int64_t t = next_timeout(reg);
        FL_LOG_KV(FL_LOG_INFO,
                  FL_KV(FL_F("target", reg->label), FL_FU64("attempt", n),
                        FL_FU64("next_in_ms", 0)),
                  "Registration at %s attempt %u timed out after %lld ms; "
                  "attempt %u starts now with a timeout of %lld ms",
                  reg->label, n, (long long)reg->timeout_ms, n + 1,
                  (long long)t);
        reg->timeout_ms = t;
        reg->attempt++;
        step_attempt(reg);
        goto out;
    }
    if (err != FL_OK) {
        connect_later(reg, fl_future_message(f));
        goto out;
    }
    fl_registration_response_t *resp = fl_future_value(f);
    if (resp == NULL || resp->outcome == FL_REGISTRATION_FAILURE ||
        (resp->outcome != FL_REGISTRATION_SUCCESS &&
         resp->outcome != FL_REGISTRATION_REJECTION)) {
        int64_t d =
            fl_registration_jitter(&reg->opts, reg->opts.refused_delay_ms);
        FL_LOG_KV(FL_LOG_INFO,
                  FL_KV(FL_F("target", reg->label), FL_FU64("attempt", n),
                        FL_FU64("next_in_ms", d)),
                  "Registration at %s attempt %u was refused for now: %s; "
                  "attempt %u starts in %lld ms",
                  reg->label, n, resp == NULL ? "no response" : resp->reason,
                  n + 1, (long long)d);
        reg->timeout_ms = reg->opts.initial_timeout_ms;
        schedule(reg, run_attempt, d);
        goto out;
    }
    resp = fl_future_take_value(f);
    if (resp->outcome == FL_REGISTRATION_SUCCESS) {
        FL_LOG_KV(FL_LOG_INFO,
                  FL_KV(FL_F("target", reg->label), FL_FU64("attempt", n)),
                  "Registration at %s succeeded (attempt %u)", reg->label, n);
        resp->gateway = reg->gw;
        reg->gw = NULL;
    } else {
        FL_LOG_KV(FL_LOG_INFO,
                  FL_KV(FL_F("target", reg->label), FL_FU64("attempt", n)),
                  "Registration at %s was rejected (attempt %u); not retrying",
                  reg->label, n);
    }
    fl_future_complete(reg->result, resp, fl_registration_response_free);
out:
    reg_unref(reg);
}

static void step_attempt(fl_registration_t *reg)
{
    if (is_cancelled(reg))
        return;
    fl_future_t *f = NULL;
    int rc = reg->invoke(reg->gw, reg->fenced ? &reg->token : NULL,
                         reg->timeout_ms, reg->arg, &f);
    if ((rc == FL_EUNREACHABLE || rc == FL_ECLOSED) && f == NULL) {
        /* The gateway refused at once (its endpoint or connection is
         * gone): an error of the attempt, not of the function. */
        char why[128];
        snprintf(why, sizeof why, "the registration function returned %s (%s)",
                 fl_err_name(rc), fl_strerror(rc));
        connect_later(reg, why);
        return;
    }
    if (rc != FL_OK || f == NULL) {
        char msg[FL_FUTURE_MESSAGE_MAX];
        if (rc == FL_OK)
            rc = FL_EINTERNAL;
        snprintf(msg, sizeof msg,
                 "Registration at %s failed: the registration function "
                 "returned %s (%s) on attempt %u",
                 reg->label, fl_err_name(rc), fl_strerror(rc), reg->attempt);
        fl_future_release(f);
        fail_result(reg, rc, msg);
        return;
    }
    /* The attempt's own bound, should the function's future have none:
     * FL_EEXIST (it has one) and FL_EALREADY (answered) are fine. */
    fl_future_set_timeout(
        fl_rpc_service_system(fl_rpc_endpoint_service(reg->owner)), f,
        reg->timeout_ms);
    hand_begin(reg);
    rc =
        fl_rpc_on_complete(reg->owner, f, on_answer, reg_ref(reg), hop_dropped);
    hand_end(reg, rc, "wait for the answer");
    fl_future_release(f);
}

static void run_start(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    fl_registration_t *reg = arg;
    step_connect(reg);
    reg_unref(reg);
}

static char *label_of(const char *address, const char *name)
{
    size_t n = strlen(address) + (name ? strlen(name) + 3 : 0) + 1;
    char *s = fl__malloc(n);
    if (s == NULL)
        return NULL;
    if (name != NULL)
        snprintf(s, n, "%s (%s)", address, name);
    else
        snprintf(s, n, "%s", address);
    return s;
}

/* Cancelling the result cancels the registration (the hook runs only while
 * the result is pending, so while the handle is alive). */
static void on_result_cancelled(fl_future_t *f, void *arg)
{
    (void)f;
    fl_registration_cancel(arg);
}

int fl_registration_alloc(fl_rpc_endpoint_t *owner,
                          const fl_registration_spec_t *spec,
                          fl_registration_t **out, char *why, size_t why_len)
{
    if (out != NULL)
        *out = NULL;
    const char *missing = owner == NULL           ? "owner"
                          : out == NULL           ? "out"
                          : spec == NULL          ? "spec"
                          : spec->address == NULL ? "spec->address"
                          : spec->desc == NULL    ? "spec->desc"
                          : spec->invoke == NULL  ? "spec->invoke"
                                                  : NULL;
    if (missing != NULL) {
        fl__say(why, why_len, "%s must not be NULL", missing);
        return FL_EINVAL;
    }
    fl_registration_opts_t o;
    if (spec->opts != NULL)
        o = *spec->opts;
    else
        fl_registration_opts_default(&o);
    int rc = fl_registration_opts_validate(&o, why, why_len);
    if (rc != FL_OK)
        return rc;
    fl_registration_t *reg = fl__calloc(1, sizeof *reg);
    if (reg == NULL)
        goto oom;
    atomic_init(&reg->refs, 1);
    atomic_init(&reg->cancelled, false);
    atomic_init(&reg->started, false);
    pthread_mutex_init(&reg->lk, NULL);
    reg->owner = owner;
    reg->desc = spec->desc;
    reg->fenced = spec->token != NULL;
    if (reg->fenced)
        reg->token = *spec->token;
    reg->invoke = spec->invoke;
    reg->arg = spec->arg;
    reg->opts = o;
    if (reg->opts.random == NULL) {
        reg->rng = fl_clock_now_ns() ^ (uint64_t)(uintptr_t)reg;
        reg->opts.random = rng_next;
        reg->opts.random_arg = &reg->rng;
    }
    reg->owner_id = fl__strdup(fl_rpc_endpoint_id(owner));
    reg->address = fl__strdup(spec->address);
    reg->label = label_of(spec->address, spec->target_name);
    reg->result = fl_future_alloc();
    if (reg->owner_id == NULL || reg->address == NULL || reg->label == NULL ||
        reg->result == NULL) {
        reg_unref(reg);
        goto oom;
    }
    fl_future_set_cancel_hook(reg->result, on_result_cancelled, reg);
    *out = reg;
    return FL_OK;
oom:
    fl__say(why, why_len, "out of memory making the registration at %s",
            spec->address);
    return FL_ENOMEM;
}

int fl_registration_start(fl_registration_t *reg)
{
    if (reg == NULL)
        return FL_EINVAL;
    if (atomic_exchange_explicit(&reg->started, true, memory_order_acq_rel))
        return FL_ESTATE;
    int rc = fl_rpc_run_async(reg->owner, run_start, reg_ref(reg), reg_unref);
    if (rc != FL_OK)
        fl_future_fail(reg->result, rc,
                       "Registration at %s could not start: %s", reg->label,
                       fl_rpc_last_message());
    return rc;
}

fl_future_t *fl_registration_future(const fl_registration_t *reg)
{
    return reg == NULL ? NULL : reg->result;
}

void fl_registration_cancel(fl_registration_t *reg)
{
    if (reg == NULL ||
        atomic_exchange_explicit(&reg->cancelled, true, memory_order_acq_rel))
        return;
    fl_future_fail(reg->result, FL_ECANCELED,
                   "Registration at %s was cancelled", reg->label);
    pthread_mutex_lock(&reg->lk);
    fl_rpc_scheduled_t *h = reg->timer;
    reg->timer = NULL;
    pthread_mutex_unlock(&reg->lk);
    /* The cancelled task frees its reference through hop_dropped. */
    fl_rpc_scheduled_cancel(h);
    fl_rpc_scheduled_free(h);
}

bool fl_registration_is_cancelled(const fl_registration_t *reg)
{
    return reg != NULL && is_cancelled(reg);
}

void fl_registration_free(fl_registration_t *reg)
{
    if (reg == NULL)
        return;
    fl_registration_cancel(reg);
    reg_unref(reg);
}
