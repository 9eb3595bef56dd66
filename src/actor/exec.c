/*
 * exec.c - running code on an actor's thread: fl_actor_exec, and the
 * future continuations posted to an actor (fl_future_on_complete_in).
 */
#include "actor/deliver.h"
#include "actor/future.h"
#include "actor/system.h"

/* Deliver m, an exec message built for ref (CONSUMED). FL_OK, or the
 * delivery's refusal after settling m's argument. Any thread. */
static int exec_send(fl_system_t *sys, fl_actor_ref_t ref, fl_msg_t *m)
{
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
    return exec_send(sys, ref, m);
}

/*
 * A continuation posted to an actor (fl_future_on_complete_in). It lives in
 * the payload of its own exec message, built at registration, so that the
 * completion only delivers it: no allocation of its own per ask. The
 * message's argument is the hop itself; its arg_free (hop_free) settles
 * the user's argument when the message is never run.
 */
typedef struct hop {
    fl_future_cb cb;
    void *arg;
    fl_free_cb arg_free;
    fl_future_t *f; /* taken at completion: no cycle while pending */
    fl_system_t *sys;
    fl_actor_ref_t ref;
    fl_msg_t *m; /* the exec message whose payload holds this hop */
} hop_t;

typedef struct hop_msg {
    fl__exec_t e;
    hop_t h;
} hop_msg_t;

static void hop_run(fl_system_t *sys, fl_actor_ref_t self, void *state, void *p)
{
    hop_t *h = p;
    h->cb(h->f, h->arg);
    fl_future_release(h->f);
}

/* The message was not run (dead letter, closed system, freed pending). */
static void hop_free(void *p)
{
    hop_t *h = p;
    if (h->arg_free != NULL)
        h->arg_free(h->arg);
    fl_future_release(h->f);
}

static void hop_post(fl_future_t *f, void *p)
{
    hop_t *h = p;
    /* The completer holds f; keep it for the continuation on the actor. */
    h->f = fl_future_retain(f);
    (void)exec_send(h->sys, h->ref, h->m);
}

/* f was freed pending: the continuation never runs. fl_msg_free settles
 * the exec's argument (hop_free) before the memory goes. */
static void hop_drop(void *p)
{
    hop_t *h = p;
    fl_msg_free(h->m);
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
     * is caught by exec_send's own check. */
    if (atomic_load_explicit(&sys->closed, memory_order_acquire)) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ECLOSED;
    }
    fl_msg_t *m = fl__msg_alloc_kind(FL__MSG_EXEC, 0, sizeof(hop_msg_t));
    if (m == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ENOMEM;
    }
    hop_msg_t *hm = fl__msg_payload(m);
    hop_t *h = &hm->h;
    h->cb = cb;
    h->arg = arg;
    h->arg_free = arg_free;
    h->f = NULL;
    h->sys = sys;
    h->ref = ref;
    h->m = m;
    hm->e.fn = hop_run;
    hm->e.arg = h;
    hm->e.arg_free = hop_free;
    int rc = fl__future_on_complete_ex(f, hop_post, hop_drop, h);
    if (rc != FL_OK)
        hop_drop(h);
    return rc;
}
