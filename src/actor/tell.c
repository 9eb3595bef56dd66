/*
 * tell.c - sending: fl_tell, fl_ask and the claiming tells of claim.h,
 * and answering an ask (fl_reply, fl_reply_error, fl_msg_take_reply).
 */
#include "actor/claim.h"
#include "actor/deliver.h"
#include "actor/future.h"
#include "actor/system.h"

#include <stdarg.h>

/* Push m to the actor it names, as fl__deliver, but when the push makes
 * the actor runnable, hand it to *claim instead of scheduling it. */
static int deliver_claim(fl_system_t *sys, fl_msg_t *m, fl__claim_t *claim)
{
    fl__actor_t *a = fl__target_of(sys, m, false);
    if (a == NULL) {
        fl__dead_letter(sys, m, "has stopped or does not exist");
        return FL_EUNREACHABLE;
    }
    fl__flow_pushed(sys, a, fl__flow_weigh(a, m));
    if (fl__mpscq_push(&a->head, &m->node)) {
        claim->sys = sys;
        claim->a = a;
    }
    return FL_OK;
}

/* fl_tell, and fl__tell_claim when claim is not NULL. counted: the
 * thread holds a claim on sys, which counts it in already. */
static FL_ALWAYS_INLINE int tell(fl_system_t *sys, fl_actor_ref_t to,
                                 fl_msg_t *msg, fl__claim_t *claim,
                                 bool counted)
{
    if (msg == NULL)
        return FL_EINVAL;
    if (sys == NULL) {
        fl_msg_free(msg);
        return FL_EINVAL;
    }
    /* Only a thread outside every runtime may take a turn over. */
    if (claim != NULL && fl__tls_sys != NULL)
        claim = NULL;
    bool external = counted || fl__sys_enter(sys);
    int rc;
    if (fl__unlikely(fl__sys_closed(sys))) {
        fl__msg_settle(msg, FL_ECLOSED, "the actor system is closed");
        fl_msg_free(msg);
        rc = FL_ECLOSED;
    } else {
        msg->target = to.id;
        msg->sender = external ? 0 : fl__tls_actor;
        rc = claim != NULL ? deliver_claim(sys, msg, claim)
                           : fl__deliver(sys, msg, false);
    }
    /* A claimer stays counted in until fl__claim_run. */
    if (!counted && (claim == NULL || claim->a == NULL))
        fl__sys_leave(sys, external);
    return rc;
}

/* fl_tell but for its fast path. */
static __attribute__((noinline)) int tell_slow(fl_system_t *sys,
                                               fl_actor_ref_t to, fl_msg_t *msg)
{
    return tell(sys, to, msg, NULL, false);
}

int fl_tell(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg)
{
    /* The common case first: a callback's send on a worker of sys, which
     * is counted in already (a runtime thread) and coalesces. Every call
     * from here is a tail call: the fast path saves no registers. */
    fl__turn_t *t = &fl__tls_turn;
    if (fl__likely(msg != NULL && t->in_turn && t->sys == sys &&
                   !fl__sys_closed(sys))) {
        msg->target = to.id;
        msg->sender = fl__tls_actor;
        fl__actor_t *a = fl__target_of(sys, msg, false);
        if (fl__likely(a != NULL))
            return fl__send_coalesced(t, a, msg);
    }
    return tell_slow(sys, to, msg);
}

int fl__tell_claim(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                   fl__claim_t *claim)
{
    claim->sys = NULL;
    claim->a = NULL;
    return tell(sys, to, msg, claim, false);
}

int fl__tell_held(const fl__claim_t *held, fl_actor_ref_t to, fl_msg_t *msg)
{
    if (held == NULL || held->a == NULL || fl__tls_sys != NULL) {
        fl_msg_free(msg);
        return FL_EINVAL;
    }
    return tell(held->sys, to, msg, NULL, true);
}

/* fl__ask_named, inlined into fl_ask with no namer and no then, so that
 * a plain ask pays for neither. */
static FL_ALWAYS_INLINE int ask(fl_system_t *sys, fl_actor_ref_t to,
                                fl_msg_t *msg, int64_t timeout_ms,
                                const fl__namer_t *namer, void *ctx,
                                const void *aux, uint64_t word,
                                const fl__ask_then_t *then, fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    fl_future_t *f = then != NULL ? then->f : NULL;
    int rc = FL_EINVAL;
    if (msg == NULL)
        goto refused;
    if (sys == NULL || out == NULL || msg->reply != NULL ||
        (timeout_ms <= 0 && timeout_ms != FL_INFINITE)) {
        fl_msg_free(msg);
        goto refused;
    }
    /* With a timeout, the timer lives in the future's block. */
    if (f == NULL)
        f = timeout_ms != FL_INFINITE ? fl__future_alloc_timed(0)
                                      : fl_future_alloc();
    if (f == NULL) {
        fl_msg_free(msg);
        rc = FL_ENOMEM;
        goto refused;
    }
    if (namer != NULL)
        fl__future_set_namer(f, namer, ctx, aux, word);
    bool external = fl__sys_enter(sys);
    if (fl__unlikely(fl__sys_closed(sys))) {
        fl__sys_leave(sys, external);
        fl_msg_free(msg);
        fl_future_release(f);
        return FL_ECLOSED;
    }
    if (then != NULL)
        fl__future_on_complete_unshared(f, then->cb, then->drop, then->arg);
    /* The timeout goes on f before f is shared (no lock), and is armed
     * after the delivery: an answer that comes first finds it unarmed and
     * the arm frees it (timer.c). */
    fl__timer_t *t = NULL;
    if (timeout_ms != FL_INFINITE) {
        t = fl__timer_new_future_in(f, timeout_ms, to.id);
        fl__future_set_timer_unshared(f, sys, t);
    }
    msg->target = to.id;
    msg->sender = external ? 0 : fl__tls_actor;
    msg->reply = fl__future_retain_unshared(f); /* shared by the push */
    (void)fl__deliver(sys, msg, false);
    if (t != NULL)
        (void)fl__timer_arm(sys, t);
    fl__sys_leave(sys, external);
    *out = f;
    return FL_OK;
refused:
    fl_future_release(f); /* a made one, pending: drops nothing */
    if (namer != NULL)
        namer->release(ctx);
    return rc;
}

int fl_ask(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
           int64_t timeout_ms, fl_future_t **out)
{
    return ask(sys, to, msg, timeout_ms, NULL, NULL, NULL, 0, NULL, out);
}

int fl__ask_named(fl_system_t *sys, fl_actor_ref_t to, fl_msg_t *msg,
                  int64_t timeout_ms, const fl__namer_t *namer, void *ctx,
                  const void *aux, uint64_t word, const fl__ask_then_t *then,
                  fl_future_t **out)
{
    return ask(sys, to, msg, timeout_ms, namer, ctx, aux, word, then, out);
}

int fl_reply(fl_msg_t *request, fl_msg_t *reply)
{
    if (reply == NULL)
        return FL_EINVAL;
    if (request == NULL || request->reply == NULL) {
        fl_msg_free(reply);
        return FL_EINVAL;
    }
    fl_future_t *f = request->reply;
    request->reply = NULL;
    reply->sender = fl__tls_actor;
    int rc = fl_future_complete(f, reply, fl_msg_free_cb);
    fl_future_release(f);
    return rc;
}

int fl_reply_error(fl_msg_t *request, int err, const char *fmt, ...)
{
    if (request == NULL || request->reply == NULL || err == FL_OK)
        return FL_EINVAL;
    fl_future_t *f = request->reply;
    request->reply = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = fl_future_failv(f, err, fmt, ap);
    va_end(ap);
    fl_future_release(f);
    return rc;
}

fl_future_t *fl_msg_take_reply(fl_msg_t *request)
{
    if (request == NULL)
        return NULL;
    fl_future_t *f = request->reply;
    request->reply = NULL;
    return f;
}
