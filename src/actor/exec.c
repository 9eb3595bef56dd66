/*
 * exec.c - running code on an actor's thread: fl_actor_exec, and the
 * future continuations posted to an actor (fl_future_on_complete_in).
 */
#include "actor/deliver.h"
#include "actor/future.h"
#include "actor/system.h"

#include <stddef.h>

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
 *
 * Without an arg_free (the common case) the hop is three words, so that
 * the message's payload fits the 48 bytes of the small message class
 * (msg.c), which is taken without a call and zeroed by constant stores;
 * with one, a fourth word follows. The system and the actor live in the
 * message's header until it is sent (sender and target, which the send
 * sets anyway): nobody else sees the message before.
 */
typedef struct hop {
    fl_future_cb cb;
    void *arg;
    fl_future_t *f; /* taken at completion: no cycle while pending */
} hop_t;

typedef struct hop_msg {
    fl__exec_t e;
    hop_t h;
    fl_free_cb arg_free; /* only in a hop_msg_t with one */
} hop_msg_t;

_Static_assert(offsetof(hop_msg_t, arg_free) <= 48,
               "a hop without arg_free fits the 48-byte message class");

/* The exec message whose payload holds h. */
static fl_msg_t *hop_msg(hop_t *h)
{
    return (fl_msg_t *)((char *)h - offsetof(hop_msg_t, h)) - 1;
}

static void hop_run(fl_system_t *sys, fl_actor_ref_t self, void *state, void *p)
{
    hop_t *h = p;
    h->cb(h->f, h->arg);
    fl_future_release(h->f);
}

/* The message was not run (dead letter, closed system, freed pending). */
static void hop_free(void *p)
{
    fl_future_release(((hop_t *)p)->f);
}

/* hop_free of a hop with the user's arg_free. */
static void hop_free_arg(void *p)
{
    hop_t *h = p;
    hop_msg_t *hm = (hop_msg_t *)((char *)h - offsetof(hop_msg_t, h));
    hm->arg_free(h->arg);
    fl_future_release(h->f);
}

static void hop_post(fl_future_t *f, void *p)
{
    hop_t *h = p;
    fl_msg_t *m = hop_msg(h);
    /* The completer holds f; keep it for the continuation on the actor. */
    h->f = fl_future_retain(f);
    fl_system_t *sys = (fl_system_t *)(uintptr_t)m->sender;
    (void)exec_send(sys, (fl_actor_ref_t){m->target}, m);
}

/* f was freed pending: the continuation never runs. fl_msg_free settles
 * the exec's argument (hop_free) before the memory goes. */
static void hop_drop(void *p)
{
    fl_msg_free(hop_msg(p));
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
    size_t size =
        arg_free != NULL ? sizeof(hop_msg_t) : offsetof(hop_msg_t, arg_free);
    fl_msg_t *m = fl__msg_alloc_kind(FL__MSG_EXEC, 0, size);
    if (m == NULL) {
        if (arg_free != NULL)
            arg_free(arg);
        return FL_ENOMEM;
    }
    hop_msg_t *hm = fl__msg_payload(m);
    hop_t *h = &hm->h;
    h->cb = cb;
    h->arg = arg;
    h->f = NULL;
    m->sender = (uint64_t)(uintptr_t)sys; /* until exec_send: see hop_t */
    m->target = ref.id;
    hm->e.fn = hop_run;
    hm->e.arg = h;
    hm->e.arg_free = hop_free;
    if (arg_free != NULL) {
        hm->arg_free = arg_free;
        hm->e.arg_free = hop_free_arg;
    }
    int rc = fl__future_on_complete_ex(f, hop_post, hop_drop, h);
    if (rc != FL_OK)
        hop_drop(h);
    return rc;
}
