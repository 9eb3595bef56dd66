/*
 * system.c - creating, closing, shutting down and freeing an actor system.
 *
 * Teardown is close (refuse new work, ask every actor to stop), then
 * shutdown (wait until every actor has stopped, stop the timer thread and
 * the workers, dead-letter what is still queued), then free.
 */
#include "actor/system.h"
#include "common/pool.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Thread_local fl_system_t *fl__tls_sys;
_Thread_local bool fl__tls_no_block;
_Thread_local uint64_t fl__tls_actor;
_Thread_local void (*fl__tls_flush)(bool more);
_Thread_local fl__turn_t fl__tls_turn;

/* The scheduler's per-thread hook: a worker is a runtime thread of sys;
 * at its end its cached message memory goes back to the pool. */
static void worker_thread(void *ctx, bool enter)
{
    if (enter) {
        fl__tls_sys = ctx;
    } else {
        fl__tls_sys = NULL;
        fl__pool_flush_thread();
    }
}

int fl_system_alloc(const fl_system_opts_t *opts, fl_system_t **out)
{
    if (out == NULL)
        return FL_EINVAL;
    *out = NULL;
    fl_system_opts_t o = {0};
    if (opts != NULL)
        o = *opts;
    if (o.workers > 256 || o.max_actors > FL__MAX_ACTORS)
        return FL_EINVAL;
    if (o.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.workers = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
    }
    fl_system_t *sys = fl__aligned_alloc(FL_CACHE_LINE, sizeof *sys);
    if (sys == NULL)
        return FL_ENOMEM;
    memset(sys, 0, sizeof *sys);
    sys->batch = o.batch ? o.batch : 64;
    sys->mailbox_bound = o.mailbox_bound ? o.mailbox_bound : FL_MAILBOX_DEFAULT;
    uint64_t spin_ns = o.spin_us == FL_SPIN_NONE ? 0
                       : o.spin_us == 0          ? 50000
                                                 : (uint64_t)o.spin_us * 1000;
    sys->max_actors = o.max_actors ? o.max_actors : FL__MAX_ACTORS;
    sys->nchunks = (sys->max_actors + FL__CHUNK_SIZE - 1) / FL__CHUNK_SIZE;
    sys->free_head = FL__NO_SLOT;
    pthread_mutex_init(&sys->lock, NULL);
    pthread_cond_init(&sys->idle_cv, NULL);
    fl__flow_init(&sys->flow);
    sys->chunks = fl__calloc(sys->nchunks, sizeof *sys->chunks);
    sys->chunk_mem = fl__calloc(sys->nchunks, sizeof *sys->chunk_mem);
    if (sys->chunks == NULL || sys->chunk_mem == NULL) {
        fl__free(sys->chunks);
        fl__free(sys->chunk_mem);
        pthread_mutex_destroy(&sys->lock);
        pthread_cond_destroy(&sys->idle_cv);
        fl__flow_fini(&sys->flow);
        fl__aligned_free(sys);
        return FL_ENOMEM;
    }
    fl__pool_hold();
    int rc = fl__timers_start(sys);
    if (rc == FL_OK)
        rc = fl__sched_start(&sys->sched, o.workers, spin_ns, fl__actor_loop,
                             worker_thread, sys);
    if (rc != FL_OK) {
        /* Returned to the caller: debug only. */
        FL_LOG(FL_LOG_DEBUG, "could not start the actor system: %s",
               fl_strerror(rc));
        fl_system_free(sys);
        return rc;
    }
    *out = sys;
    return FL_OK;
}

int fl_system_close(fl_system_t *sys)
{
    if (sys == NULL)
        return FL_EINVAL;
    pthread_mutex_lock(&sys->lock);
    /* seq_cst pairs with the inflight increment in fl__sys_enter and the
     * load in fl__sys_closed (see there). */
    bool was =
        atomic_exchange_explicit(&sys->closed, true, memory_order_seq_cst);
    uint32_t hw = sys->high_water;
    pthread_mutex_unlock(&sys->lock);
    if (was)
        return FL_OK;
    /* Threads waiting for room in a mailbox give up (FL_ECLOSED). */
    fl__flow_wake_threads(sys);
    /* Every actor spawned before the close is below hw (spawn checks the
     * flag under the lock). */
    for (uint32_t i = 0; i < hw; i++) {
        fl__actor_t *a = fl__slot(sys, i);
        /* Pairs with the release stores of gstate. */
        uint64_t gs = atomic_load_explicit(&a->gstate, memory_order_acquire);
        if (FL__STATE(gs) != FL__A_LIVE)
            continue;
        /* Shutdown waits for every actor: a stop that found no memory for
         * its wake-up message must be retried, not forgotten. */
        for (int tries = 0;
             fl__actor_request_stop(sys, FL__REF(FL__GEN(gs), i)) == FL_ENOMEM;
             tries++) {
            if (tries == 100)
                FL_LOG(FL_LOG_ERROR,
                       "close: no memory to stop actor %u; "
                       "retrying",
                       (unsigned)i);
            sched_yield();
        }
    }
    return FL_OK;
}

/* Dead-letter everything left in a mailbox and free its last stub. */
static void drain(fl_system_t *sys, fl__actor_t *a)
{
    for (;;) {
        fl__qnode_t *freed;
        fl__qnode_t *n = fl__mpscq_pop(&a->tail, &freed);
        if (freed != NULL && freed != &a->stub)
            fl__msg_release_mem((fl_msg_t *)freed);
        if (n == NULL)
            break;
        /* The node is the queue's stub now: settle what it owes, free it
         * on the next pop. */
        fl__dead_letter_contents(sys, (fl_msg_t *)n, "system shut down");
    }
    if (a->tail != &a->stub) {
        fl__msg_release_mem((fl_msg_t *)a->tail);
        fl__mpscq_init(&a->head, &a->tail, &a->stub);
    }
    /* Relaxed: every thread that pushed has been joined or counted out. */
    atomic_store_explicit(&a->queued, 0, memory_order_relaxed);
    /* What waits for this mailbox to drain (a connection that stopped
     * reading for it) learns it has. */
    if (atomic_load_explicit(&a->waits, memory_order_relaxed) != 0)
        fl__flow_wake(sys, a);
}

int fl_system_shutdown(fl_system_t *sys)
{
    if (sys == NULL)
        return FL_EINVAL;
    if (fl__tls_sys == sys)
        return FL_EDEADLK;
    fl_system_close(sys);
    pthread_mutex_lock(&sys->lock);
    while (sys->live > 0)
        pthread_cond_wait(&sys->idle_cv, &sys->lock);
    if (sys->shut_down) {
        /* Another caller is shutting down: wait until it has finished. */
        while (!sys->shutdown_done)
            pthread_cond_wait(&sys->idle_cv, &sys->lock);
        pthread_mutex_unlock(&sys->lock);
        return FL_OK;
    }
    sys->shut_down = true;
    pthread_mutex_unlock(&sys->lock);

    /* Outside threads that passed the closed check finish their call.
     * Pairs with the release decrement in fl__sys_leave. */
    while (atomic_load_explicit(&sys->inflight, memory_order_acquire) != 0)
        sched_yield();
    fl__timers_shutdown(sys);
    fl__sched_shutdown(&sys->sched);

    uint32_t hw = sys->high_water;
    for (uint32_t i = 0; i < hw; i++)
        drain(sys, fl__slot(sys, i));
    pthread_mutex_lock(&sys->lock);
    sys->shutdown_done = true;
    pthread_cond_broadcast(&sys->idle_cv);
    pthread_mutex_unlock(&sys->lock);
    return FL_OK;
}

void fl_system_free(fl_system_t *sys)
{
    if (sys == NULL)
        return;
    if (fl__tls_sys == sys) {
        FL_LOG(FL_LOG_ERROR, "fl_system_free called on one of the system's "
                             "own threads: closing it only (leaked)");
        fl_system_close(sys);
        return;
    }
    fl_system_shutdown(sys);
    fl__sched_fini(&sys->sched);
    for (uint32_t c = 0; c < sys->nchunks; c++)
        fl__pages_free(sys->chunk_mem[c], FL__CHUNK_BYTES);
    fl__free(sys->chunks);
    fl__free(sys->chunk_mem);
    for (size_t i = 0; i < sys->namecap; i++) {
        fl__name_t *n = sys->names[i];
        while (n != NULL) {
            fl__name_t *next = n->next;
            fl__free(n);
            n = next;
        }
    }
    fl__free(sys->names);
    pthread_mutex_destroy(&sys->timers.mu);
    pthread_cond_destroy(&sys->timers.cv);
    pthread_mutex_destroy(&sys->lock);
    pthread_cond_destroy(&sys->idle_cv);
    fl__flow_fini(&sys->flow);
    fl__aligned_free(sys);
    fl__pool_release();
}

unsigned fl_system_workers(const fl_system_t *sys)
{
    return sys ? sys->sched.nworkers : 0;
}

int fl_system_stats(fl_system_t *sys, fl_system_stats_t *out)
{
    if (sys == NULL || out == NULL)
        return FL_EINVAL;
    pthread_mutex_lock(&sys->lock);
    out->actors_live = sys->live;
    pthread_mutex_unlock(&sys->lock);
    /* Relaxed: statistics. */
    out->actors_spawned =
        atomic_load_explicit(&sys->spawned, memory_order_relaxed);
    out->dead_letters =
        atomic_load_explicit(&sys->dead_letters, memory_order_relaxed);
    out->timers_pending = fl__timers_pending(sys);
    out->mutes = atomic_load_explicit(&sys->flow.mutes, memory_order_relaxed);
    out->tells_full =
        atomic_load_explicit(&sys->flow.tells_full, memory_order_relaxed);
    return FL_OK;
}

fl_system_t *fl_system_current(void)
{
    return fl__tls_sys;
}
