/*
 * spawn.c - an actor's life: spawning it into a slot, naming it, asking
 * it to stop and finishing its stop, and the public queries on it (alive,
 * lookup by name, termination future, fl_self).
 */
#include "actor/deliver.h"
#include "actor/system.h"

#include <string.h>

#define FL__NAME_MAX 255

/* ---- names
 * ------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static fl__name_t **name_slot(fl_system_t *sys, const char *name)
{
    if (sys->namecap == 0)
        return NULL;
    fl__name_t **p = &sys->names[hash_str(name) & (sys->namecap - 1)];
    while (*p != NULL && strcmp((*p)->name, name) != 0)
        p = &(*p)->next;
    return p;
}

/* Under sys->lock. */
static int name_add(fl_system_t *sys, char *name, uint64_t id)
{
    if (sys->nnames + 1 > sys->namecap / 2) {
        size_t cap = sys->namecap ? sys->namecap * 2 : 64;
        fl__name_t **b = fl__calloc(cap, sizeof *b);
        if (b == NULL)
            return FL_ENOMEM;
        for (size_t i = 0; i < sys->namecap; i++) {
            fl__name_t *n = sys->names[i];
            while (n != NULL) {
                fl__name_t *next = n->next;
                size_t k = hash_str(n->name) & (cap - 1);
                n->next = b[k];
                b[k] = n;
                n = next;
            }
        }
        fl__free(sys->names);
        sys->names = b;
        sys->namecap = cap;
    }
    fl__name_t *n = fl__malloc(sizeof *n);
    if (n == NULL)
        return FL_ENOMEM;
    n->name = name;
    n->id = id;
    fl__name_t **p = &sys->names[hash_str(name) & (sys->namecap - 1)];
    n->next = *p;
    *p = n;
    sys->nnames++;
    return FL_OK;
}

/* Under sys->lock. */
static void name_del(fl_system_t *sys, const char *name)
{
    fl__name_t **p = name_slot(sys, name);
    if (p != NULL && *p != NULL) {
        fl__name_t *n = *p;
        *p = n->next;
        fl__free(n);
        sys->nnames--;
    }
}

/* ---- stopping
 * ---------------------------------------------------------------- */

void fl__actor_finish_stop(fl_system_t *sys, fl__actor_t *a, uint64_t gs)
{
    uint32_t gen = FL__GEN(gs);
    fl_actor_ref_t ref = {FL__REF(gen, a->slot)};
    /* Pairs with the release store of ext in fl_actor_termination (and the
     * gstate store of spawn, which published the first ext). */
    fl__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_acquire);
    if (ext != NULL && ext->on_stop != NULL) {
        fl__tls_actor = ref.id;
        ext->on_stop(sys, ref, a->state);
        fl__tls_actor = 0;
    }
    pthread_mutex_lock(&sys->lock);
    /* As above; the store is relaxed: ext only changes under sys->lock
     * from here, and the slot is republished by gstate's release store. */
    ext = atomic_load_explicit(&a->ext, memory_order_acquire);
    atomic_store_explicit(&a->ext, NULL, memory_order_relaxed);
    if (ext != NULL && ext->name != NULL)
        name_del(sys, ext->name);
    uint32_t ngen = gen + 1 == 0 ? 1 : gen + 1;
    a->receive = NULL;
    a->state = NULL;
    /* From here references to this incarnation are stale. Release pairs
     * with the acquire loads of gstate (fl__target_of, handle, spawn's
     * next take of the slot under the lock). */
    atomic_store_explicit(&a->gstate, FL__GS(ngen, FL__A_FREE),
                          memory_order_release);
    a->next_free = sys->free_head;
    sys->free_head = a->slot;
    if (--sys->live == 0)
        pthread_cond_broadcast(&sys->idle_cv);
    pthread_mutex_unlock(&sys->lock);

    if (ext != NULL) {
        fl__term_t *t = ext->waiters;
        while (t != NULL) {
            fl__term_t *next = t->next;
            fl_future_complete(t->f, NULL, NULL);
            fl_future_release(t->f);
            fl__free(t);
            t = next;
        }
        fl__free(ext->name);
        fl__free(ext);
    }
}

/* ---- spawn and stop
 * ------------------------------------------------------------ */

/* Under sys->lock: a free slot, initialised, or NULL (limit or memory). */
static fl__actor_t *take_slot(fl_system_t *sys, int *err)
{
    if (sys->free_head != FL__NO_SLOT) {
        fl__actor_t *a = fl__slot(sys, sys->free_head);
        sys->free_head = a->next_free;
        return a;
    }
    if (sys->high_water >= sys->max_actors) {
        *err = FL_ELIMIT;
        return NULL;
    }
    uint32_t slot = sys->high_water;
    uint32_t c = slot >> FL__CHUNK_SHIFT;
    /* Relaxed: chunks are only stored under sys->lock, which we hold. */
    fl__actor_t *chunk =
        atomic_load_explicit(&sys->chunks[c], memory_order_relaxed);
    if (chunk == NULL) {
        /* Pages are committed as slots are first used. */
        void *mem;
        chunk = fl__pages_alloc(FL__CHUNK_BYTES, &mem);
        if (chunk == NULL) {
            *err = FL_ENOMEM;
            return NULL;
        }
        sys->chunk_mem[c] = mem;
        /* Pairs with the acquire load in fl__slot. */
        atomic_store_explicit(&sys->chunks[c], chunk, memory_order_release);
    }
    fl__actor_t *a = &chunk[slot & (FL__CHUNK_SIZE - 1)];
    fl__mpscq_init(&a->head, &a->tail, &a->stub);
    a->slot = slot;
    /* Relaxed: published by the release store of gstate below. */
    atomic_store_explicit(&a->mutes, FL__NO_SLOT, memory_order_relaxed);
    a->muted_on = FL__NO_SLOT;
    /* Release: a sender that finds the slot through fl__slot sees an
     * initialised mailbox (pairs with the acquire loads of gstate). */
    atomic_store_explicit(&a->gstate, FL__GS(1, FL__A_FREE),
                          memory_order_release);
    sys->high_water++;
    return a;
}

int fl_actor_spawn(fl_system_t *sys, fl_receive_cb receive, void *state,
                   const fl_actor_opts_t *opts, fl_actor_ref_t *out)
{
    if (sys == NULL || receive == NULL || out == NULL)
        return FL_EINVAL;
    out->id = 0;
    fl__actor_ext_t *ext = NULL;
    fl_msg_t *start = NULL;
    if (opts != NULL && (opts->name || opts->on_start || opts->on_stop)) {
        if (opts->name != NULL &&
            (opts->name[0] == '\0' || strlen(opts->name) > FL__NAME_MAX))
            return FL_EINVAL;
        ext = fl__calloc(1, sizeof *ext);
        if (ext == NULL)
            return FL_ENOMEM;
        ext->on_start = opts->on_start;
        ext->on_stop = opts->on_stop;
        if (opts->name != NULL && (ext->name = fl__strdup(opts->name)) == NULL)
            goto nomem;
        if (opts->on_start != NULL &&
            (start = fl__msg_alloc_kind(FL__MSG_START, 0, 0)) == NULL)
            goto nomem;
    }

    bool external = fl__sys_enter(sys);
    int rc = FL_OK;
    pthread_mutex_lock(&sys->lock);
    if (fl__sys_closed(sys)) {
        rc = FL_ECLOSED;
        goto unlock_fail;
    }
    if (ext != NULL && ext->name != NULL) {
        fl__name_t **p = name_slot(sys, ext->name);
        if (p != NULL && *p != NULL) {
            rc = FL_EEXIST;
            goto unlock_fail;
        }
    }
    fl__actor_t *a = take_slot(sys, &rc);
    if (a == NULL)
        goto unlock_fail;
    /* Relaxed: a free slot's gstate only changes under sys->lock. */
    uint32_t gen =
        FL__GEN(atomic_load_explicit(&a->gstate, memory_order_relaxed));
    uint64_t id = FL__REF(gen, a->slot);
    if (ext != NULL && ext->name != NULL &&
        (rc = name_add(sys, ext->name, id)) != FL_OK) {
        a->next_free = sys->free_head;
        sys->free_head = a->slot;
        goto unlock_fail;
    }
    a->receive = receive;
    a->state = state;
    /* Relaxed: published by the release store of gstate below. */
    atomic_store_explicit(&a->ext, ext, memory_order_relaxed);
    uint32_t bound = opts != NULL && opts->mailbox_bound != 0
                         ? opts->mailbox_bound
                         : sys->mailbox_bound;
    atomic_store_explicit(&a->bound, bound, memory_order_relaxed);
    uint32_t k = fl__flow_k(bound);
    atomic_store_explicit(&a->k, k, memory_order_relaxed);
    atomic_store_explicit(&a->k_upto, (uint32_t)(0x100000000ull / k - 1),
                          memory_order_relaxed);
    sys->live++;
    /* Publishes receive/state/ext to every thread that checks the ref. */
    atomic_store_explicit(&a->gstate, FL__GS(gen, FL__A_LIVE),
                          memory_order_release);
    pthread_mutex_unlock(&sys->lock);
    /* Relaxed: a statistic. */
    atomic_fetch_add_explicit(&sys->spawned, 1, memory_order_relaxed);
    if (start != NULL) {
        /* Wakes the actor so its start hook runs even if nothing else is
         * sent (the hook runs before any message: see handle). */
        start->target = id;
        fl__push(sys, a, start);
    }
    fl__sys_leave(sys, external);
    out->id = id;
    return FL_OK;

unlock_fail:
    pthread_mutex_unlock(&sys->lock);
    fl__sys_leave(sys, external);
    if (ext != NULL) {
        fl__free(ext->name);
        fl__free(ext);
    }
    if (start != NULL)
        fl__msg_release_mem(start);
    return rc;
nomem:
    fl__free(ext->name);
    fl__free(ext);
    return FL_ENOMEM;
}

/* Request a stop of a live actor (CAS LIVE -> STOPREQ) and wake it. */
int fl__actor_request_stop(fl_system_t *sys, uint64_t id)
{
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(id));
    if (a == NULL)
        return FL_EUNREACHABLE;
    fl_msg_t *m = NULL;
    /* Pairs with the release stores of gstate (spawn, finish_stop). */
    uint64_t gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
    for (;;) {
        if (!fl__ref_live(gs, id)) {
            if (m != NULL)
                fl__msg_release_mem(m);
            return FL_EUNREACHABLE;
        }
        if (FL__STATE(gs) == FL__A_STOPREQ) {
            if (m != NULL)
                fl__msg_release_mem(m);
            return FL_OK;
        }
        if (m == NULL && (m = fl__msg_alloc_kind(FL__MSG_STOP, 0, 0)) == NULL)
            return FL_ENOMEM;
        /* acq_rel: the CAS checks the reference (acquire, as above) and
         * publishes the request to the actor's turn, whose acquire loads
         * of gstate see STOPREQ. */
        if (atomic_compare_exchange_weak_explicit(
                &a->gstate, &gs, FL__GS(FL__GEN(gs), FL__A_STOPREQ),
                memory_order_acq_rel, memory_order_acquire))
            break;
    }
    /* If the actor finished stopping meanwhile, this STOP is stale and the
     * consumer drops it (generation mismatch). */
    m->target = id;
    fl__push(sys, a, m);
    return FL_OK;
}

int fl_actor_stop(fl_system_t *sys, fl_actor_ref_t ref)
{
    if (sys == NULL)
        return FL_EINVAL;
    if (fl__sched_stopping(&sys->sched))
        return FL_ECLOSED;
    bool external = fl__sys_enter(sys);
    int rc = fl__actor_request_stop(sys, ref.id);
    fl__sys_leave(sys, external);
    return rc;
}

bool fl_actor_alive(fl_system_t *sys, fl_actor_ref_t ref)
{
    if (sys == NULL)
        return false;
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(ref.id));
    /* Pairs with the release stores of gstate. */
    return a != NULL &&
           fl__ref_live(atomic_load_explicit(&a->gstate, memory_order_acquire),
                        ref.id);
}

int fl_actor_lookup(fl_system_t *sys, const char *name, fl_actor_ref_t *out)
{
    if (sys == NULL || name == NULL || out == NULL)
        return FL_EINVAL;
    out->id = 0;
    if (fl__sched_stopping(&sys->sched))
        return FL_ECLOSED;
    pthread_mutex_lock(&sys->lock);
    fl__name_t **p = name_slot(sys, name);
    int rc = FL_ENOENT;
    if (p != NULL && *p != NULL) {
        out->id = (*p)->id;
        rc = FL_OK;
    }
    pthread_mutex_unlock(&sys->lock);
    return rc;
}

int fl_actor_termination(fl_system_t *sys, fl_actor_ref_t ref,
                         fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (sys == NULL || out == NULL)
        return FL_EINVAL;
    if (fl__sched_stopping(&sys->sched))
        return FL_ECLOSED;
    fl_future_t *f = fl_future_alloc();
    fl__term_t *t = fl__malloc(sizeof *t);
    fl__actor_ext_t *fresh = fl__calloc(1, sizeof *fresh);
    if (f == NULL || t == NULL || fresh == NULL) {
        fl_future_release(f);
        fl__free(t);
        fl__free(fresh);
        return FL_ENOMEM;
    }
    pthread_mutex_lock(&sys->lock);
    fl__actor_t *a = fl__slot(sys, FL__REF_SLOT(ref.id));
    /* Pairs with the release stores of gstate. */
    if (a == NULL ||
        !fl__ref_live(atomic_load_explicit(&a->gstate, memory_order_acquire),
                      ref.id)) {
        pthread_mutex_unlock(&sys->lock);
        fl__free(t);
        fl__free(fresh);
        fl_future_fail(f, FL_EUNREACHABLE,
                       "recipient unreachable: actor %016llx is not live",
                       (unsigned long long)ref.id);
        *out = f;
        return FL_OK;
    }
    /* Under sys->lock, which orders every store of ext but spawn's (that
     * one is published by gstate, read above). */
    fl__actor_ext_t *ext = atomic_load_explicit(&a->ext, memory_order_acquire);
    if (ext == NULL) {
        ext = fresh;
        fresh = NULL;
        /* Pairs with the acquire loads in run_start/fl__actor_finish_stop. */
        atomic_store_explicit(&a->ext, ext, memory_order_release);
    }
    t->f = fl_future_retain(f);
    t->next = ext->waiters;
    ext->waiters = t;
    pthread_mutex_unlock(&sys->lock);
    fl__free(fresh);
    *out = f;
    return FL_OK;
}

fl_actor_ref_t fl_self(void)
{
    fl_actor_ref_t r = {fl__tls_actor};
    return r;
}
