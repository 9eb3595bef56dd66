/*
 * exec.c - an endpoint's main-thread executor: fl_rpc_run_async and
 * fl_rpc_call_async run code on the endpoint's main thread (through its
 * mailbox, fl_actor_exec), and fl_rpc_on_complete runs a future's callback
 * there; with the checks of which thread is the main thread. Scheduled
 * tasks are scheduled.c's.
 */
#include <fling/rpc.h>

#include "rpc/call.h"
#include "rpc/endpoint.h"
#include "rpc/local.h"
#include "rpc/service.h"

#include <stdlib.h>

/* A task for the main thread: run_async / call_async, via fl_actor_exec. */
typedef struct task_ctx {
    fl_rpc_endpoint_t *ep;
    fl_rpc_run_cb run;
    fl_rpc_callable_cb call;
    void *arg;
    fl_free_cb arg_free;
    fl_future_t *f; /* call_async */
} task_ctx_t;

static void task_free(void *p)
{
    task_ctx_t *t = p;
    if (t->arg_free != NULL)
        t->arg_free(t->arg);
    if (t->f != NULL) {
        char why[FL_FUTURE_MESSAGE_MAX];
        fl_future_fail(
            t->f, FL_EUNREACHABLE, "%s",
            fl__rpc_say_terminated(why, sizeof why, t->ep->id, NULL));
        fl_future_release(t->f);
    }
    fl__rpc_ep_release(t->ep);
    fl__free(t);
}

static void task_exec(fl_system_t *sys, fl_actor_ref_t self, void *state,
                      void *p)
{
    task_ctx_t *t = p;
    fl_rpc_endpoint_t *ep = t->ep;
    bool ran = false;
    if (ep->st == EP_STOPPED || ep->st == EP_DONE) {
        if (t->f != NULL) {
            fl_future_fail(t->f, FL_ENOTSTARTED,
                           "Discard callable, because the rpc endpoint %s has "
                           "not been started yet.",
                           ep->address);
        } else {
            FL_LOG_KV(FL_LOG_INFO, FL_KV(FL_F("endpoint", ep->id)),
                      "discard runnable, because the rpc "
                      "endpoint %s has not been started yet",
                      ep->address);
        }
    } else if (t->run != NULL) {
        ran = true;
        t->run(ep, ep->state, t->arg);
    } else {
        ran = true;
        void *out = NULL;
        fl_free_cb out_free = NULL;
        int rc = t->call(ep, ep->state, t->arg, &out, &out_free);
        if (rc == FL_OK)
            fl_future_complete(t->f, out, out_free);
        else
            fl_future_fail(t->f, rc, NULL);
    }
    /* The task owns arg once it ran; otherwise it is freed here. */
    if (!ran && t->arg_free != NULL)
        t->arg_free(t->arg);
    fl_future_release(t->f);
    fl__rpc_ep_release(ep);
    fl__free(t);
}

static task_ctx_t *task_new(fl_rpc_endpoint_t *ep, void *arg,
                            fl_free_cb arg_free)
{
    task_ctx_t *t = fl__calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    fl__rpc_ep_retain(ep);
    t->ep = ep;
    t->arg = arg;
    t->arg_free = arg_free;
    return t;
}

int fl__rpc_refuse_task(const fl_rpc_endpoint_t *ep, int rc, const char *what)
{
    char why[512];
    if (rc == FL_EUNREACHABLE)
        return fl__rpc_refuse(
            rc, "%s", fl__rpc_say_terminated(why, sizeof why, ep->id, NULL));
    if (rc == FL_ECLOSED)
        return fl__rpc_refuse(
            rc, "the actor system of rpc endpoint '%s' has closed", ep->id);
    return fl__rpc_refuse(rc, "could not %s rpc endpoint '%s': %s", what,
                          ep->id, fl_strerror(rc));
}

/* Says why fl_actor_exec refused a task for ep (arg already settled). */
static int refuse_exec(const fl_rpc_endpoint_t *ep, int rc)
{
    return fl__rpc_refuse_task(ep, rc, "queue a task to");
}

int fl_rpc_run_async(fl_rpc_endpoint_t *ep, fl_rpc_run_cb fn, void *arg,
                     fl_free_cb arg_free)
{
    int rc = FL_OK;
    if (ep == NULL)
        rc = fl__rpc_refuse(FL_EINVAL, "ep must not be NULL");
    else if (fn == NULL)
        rc = fl__rpc_refuse(FL_EINVAL, "fn must not be NULL");
    task_ctx_t *t = rc == FL_OK ? task_new(ep, arg, arg_free) : NULL;
    if (rc == FL_OK && t == NULL)
        rc = fl__rpc_refuse(FL_ENOMEM,
                            "no memory to run a task on rpc "
                            "endpoint '%s'",
                            ep->id);
    if (rc != FL_OK) {
        if (arg_free != NULL)
            arg_free(arg);
        return rc;
    }
    t->run = fn;
    /* On failure task_free has settled arg. */
    rc = fl_actor_exec(ep->svc->sys, ep->actor, task_exec, t, task_free);
    return rc == FL_OK ? FL_OK : refuse_exec(ep, rc);
}

int fl_rpc_call_async(fl_rpc_endpoint_t *ep, fl_rpc_callable_cb fn, void *arg,
                      fl_free_cb arg_free, int64_t timeout_ms,
                      fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    int rc = FL_OK;
    if (ep == NULL)
        rc = fl__rpc_refuse(FL_EINVAL, "ep must not be NULL");
    else if (fn == NULL)
        rc = fl__rpc_refuse(FL_EINVAL, "fn must not be NULL");
    else if (out == NULL)
        rc = fl__rpc_refuse(FL_EINVAL, "out must not be NULL");
    else if (timeout_ms <= 0)
        rc = fl__rpc_refuse(FL_EINVAL, "timeout_ms must be > 0 (got %lld)",
                            (long long)timeout_ms);
    if (rc != FL_OK) {
        if (arg_free != NULL)
            arg_free(arg);
        return rc;
    }
    fl_future_t *f = fl_future_alloc();
    if (f != NULL)
        fl__rpc_name_callable(f, ep); /* its timeout names the endpoint */
    task_ctx_t *t = f ? task_new(ep, arg, arg_free) : NULL;
    if (t == NULL) {
        fl_future_release(f);
        if (arg_free != NULL)
            arg_free(arg);
        return fl__rpc_refuse(
            FL_ENOMEM, "no memory to run a task on rpc endpoint '%s'", ep->id);
    }
    t->call = fn;
    t->f = fl_future_retain(f);
    rc = fl_actor_exec(ep->svc->sys, ep->actor, task_exec, t, task_free);
    if (rc == FL_ECLOSED || rc == FL_ENOMEM || rc == FL_EINVAL) {
        fl_future_release(f);
        return refuse_exec(ep, rc);
    }
    /* FL_EUNREACHABLE: f already failed by task_free. */
    if (!fl_future_done(f))
        fl_future_set_timeout(ep->svc->sys, f, timeout_ms);
    *out = f;
    return FL_OK;
}

int fl_rpc_on_complete(fl_rpc_endpoint_t *ep, fl_future_t *f, fl_future_cb cb,
                       void *arg, fl_free_cb arg_free)
{
    int rc = FL_OK;
    if (ep == NULL)
        rc = fl__rpc_refuse(FL_EINVAL, "ep must not be NULL");
    else if (f == NULL)
        rc = fl__rpc_refuse(FL_EINVAL, "f must not be NULL");
    else if (cb == NULL)
        rc = fl__rpc_refuse(FL_EINVAL, "cb must not be NULL");
    if (rc != FL_OK) {
        if (arg_free != NULL)
            arg_free(arg);
        return rc;
    }
    return fl_future_on_complete_in(f, ep->svc->sys, ep->actor, cb, arg,
                                    arg_free);
}

bool fl_rpc_in_main_thread(const fl_rpc_endpoint_t *ep)
{
    return ep != NULL && fl_self().id == ep->actor.id &&
           fl_system_current() == ep->svc->sys;
}

void fl__rpc_assert_main_thread(const fl_rpc_endpoint_t *ep, const char *file,
                                int line)
{
    if (!fl_rpc_in_main_thread(ep)) {
        FL_LOG_KV(FL_LOG_ERROR, FL_KV(FL_F("endpoint", ep ? ep->id : NULL)),
                  "%s:%d: not on the main thread of endpoint %s", file, line,
                  ep ? ep->id : "(null)");
        abort();
    }
}

bool fl_rpc_endpoint_is_running(const fl_rpc_endpoint_t *ep)
{
    return fl_rpc_in_main_thread(ep) && ep->running;
}
