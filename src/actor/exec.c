/*
 * exec.c - running code on an actor's thread: fl_actor_exec, and the
 * future continuations posted to an actor (fl_future_on_complete_in).
 */
#include "actor/deliver.h"
#include "actor/future.h"
#include "actor/system.h"

int fl_actor_exec(fl_system_t *sys, fl_actor_ref_t ref, fl_exec_cb fn,
                  void *arg, fl_free_cb arg_free)
{
    if (sys == NULL || fn == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_EINVAL;
    }
    fl_msg_t *m = fl__msg_alloc_kind(FL__MSG_EXEC, 0, sizeof(fl__exec_t));
    if (m == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ENOMEM;
    }
    fl__exec_t *e = fl__msg_payload(m);
    e->fn = fn;
    e->arg = arg;
    e->arg_free = arg_free;
    bool external = fl__sys_enter(sys);
    int rc;
    if (fl__unlikely(fl__sys_closed(sys))) {
        fl__dead_letter_contents(sys, m, "system closed");
        fl__msg_release_mem(m);
        rc = FL_ECLOSED;
    } else {
        m->target = ref.id;
        m->sender = external ? 0 : fl__tls_actor;
        rc = fl__deliver(sys, m, false);
    }
    fl__sys_leave(sys, external);
    return rc;
}

typedef struct hop {
    fl_future_cb cb;
    void *arg;
    fl_free_cb arg_free;
    fl_future_t *f;
    fl_system_t *sys;
    fl_actor_ref_t ref;
} hop_t;

static void hop_run(fl_system_t *sys, fl_actor_ref_t self, void *state, void *p)
{
    hop_t *h = p;
    h->cb(h->f, h->arg);
    fl_future_release(h->f);
    fl__free(h);
}

static void hop_free(void *p)
{
    hop_t *h = p;
    if (h->arg_free != NULL)
        h->arg_free(h->arg);
    fl_future_release(h->f);
    fl__free(h);
}

static void hop_post(fl_future_t *f, void *p)
{
    hop_t *h = p;
    /* The completer holds f; keep it for the continuation on the actor. */
    h->f = fl_future_retain(f);
    fl_actor_exec(h->sys, h->ref, hop_run, h, hop_free);
}

/* f was freed pending: the continuation never runs. */
static void hop_drop(void *p)
{
    hop_t *h = p;
    if (h->arg_free != NULL)
        h->arg_free(h->arg);
    fl__free(h);
}

int fl_future_on_complete_in(fl_future_t *f, fl_system_t *sys,
                             fl_actor_ref_t ref, fl_future_cb cb, void *arg,
                             fl_free_cb arg_free)
{
    if (f == NULL || sys == NULL || cb == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_EINVAL;
    }
    /* Pairs with the exchange of closed in fl_system_close; a late close
     * is caught by fl_actor_exec's own check. */
    if (atomic_load_explicit(&sys->closed, memory_order_acquire)) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ECLOSED;
    }
    hop_t *h = fl__malloc(sizeof *h);
    if (h == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ENOMEM;
    }
    h->cb = cb;
    h->arg = arg;
    h->arg_free = arg_free;
    h->f = NULL; /* taken when f completes: no cycle while pending */
    h->sys = sys;
    h->ref = ref;
    int rc = fl__future_on_complete_ex(f, hop_post, hop_drop, h);
    if (rc != FL_OK)
        hop_drop(h);
    return rc;
}
