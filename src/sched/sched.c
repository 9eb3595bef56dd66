/*
 * sched.c - the work-stealing scheduler.
 *
 * Each worker has a "next" slot (the actor it made runnable last, run right
 * after the current turn: message chains stay on one core and in cache) and
 * a FIFO run queue others may steal from. Threads outside the runtime (and
 * the timer thread) put actors on the system's inject queue. Every 61 turns
 * a worker looks at the inject queue first so it cannot starve.
 *
 * Parking. A worker that finds nothing spins for spin_ns (polling; after
 * SPIN_PURE_NS it yields its core between polls), then parks on its
 * semaphore. Making work available wakes one parked worker,
 * but only if nobody is spinning (a spinner will find it). The lost-wakeup
 * race is closed Dekker-style: the parker announces itself (nsleeping) and
 * re-checks every queue after a seq_cst fence; the notifier publishes the
 * work, fences, then reads nspinning/nsleeping.
 */
#include "actor/internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* How long an idle worker polls without yielding its core. */
#define SPIN_PURE_NS 2000u

_Thread_local fl__worker_t *fl__tls_worker;
_Thread_local fl_system_t *fl__tls_sys;
_Thread_local bool fl__tls_no_block;
_Thread_local uint64_t fl__tls_actor;
_Thread_local void (*fl__tls_flush)(bool more);

/* ---- the inject queue -----------------------------------------------------
 */

static void inject_push(fl_system_t *sys, fl__actor_t *a)
{
    pthread_mutex_lock(&sys->inject_lock);
    while (sys->inject_len == sys->inject_cap) {
        size_t cap = sys->inject_cap ? sys->inject_cap * 2 : 256;
        fl__actor_t **q = fl__malloc(cap * sizeof *q);
        if (q == NULL) {
            /* Cannot lose a runnable actor: retry until memory shows up.
             * Only reachable when the process is out of memory. */
            pthread_mutex_unlock(&sys->inject_lock);
            FL_LOG(FL_LOG_ERROR, "scheduler: out of memory growing the "
                                 "inject queue; retrying");
            sched_yield();
            pthread_mutex_lock(&sys->inject_lock);
            continue;
        }
        for (size_t i = 0; i < sys->inject_len; i++)
            q[i] = sys->inject[(sys->inject_head + i) % sys->inject_cap];
        fl__free(sys->inject);
        sys->inject = q;
        sys->inject_cap = cap;
        sys->inject_head = 0;
    }
    sys->inject[(sys->inject_head + sys->inject_len) % sys->inject_cap] = a;
    sys->inject_len++;
    atomic_store_explicit(&sys->inject_count, sys->inject_len,
                          memory_order_release);
    pthread_mutex_unlock(&sys->inject_lock);
}

static fl__actor_t *inject_pop(fl_system_t *sys)
{
    if (atomic_load_explicit(&sys->inject_count, memory_order_acquire) == 0)
        return NULL;
    pthread_mutex_lock(&sys->inject_lock);
    fl__actor_t *a = NULL;
    if (sys->inject_len > 0) {
        a = sys->inject[sys->inject_head];
        sys->inject_head = (sys->inject_head + 1) % sys->inject_cap;
        sys->inject_len--;
        atomic_store_explicit(&sys->inject_count, sys->inject_len,
                              memory_order_release);
    }
    pthread_mutex_unlock(&sys->inject_lock);
    return a;
}

/* ---- waking and parking ----------------------------------------------------
 */

/* Under sleep_lock: wake a sleeping w. It counts as spinning until it finds
 * work. */
static void wake_locked(fl_system_t *sys, fl__worker_t *w)
{
    w->sleeping = false;
    atomic_fetch_sub_explicit(&sys->nsleeping, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sys->nspinning, 1, memory_order_relaxed);
    sem_post(&w->wake);
}

static void wake_one(fl_system_t *sys)
{
    pthread_mutex_lock(&sys->sleep_lock);
    for (unsigned i = 0; i < sys->nstarted; i++) {
        if (sys->workers[i]->sleeping) {
            wake_locked(sys, sys->workers[i]);
            break;
        }
    }
    pthread_mutex_unlock(&sys->sleep_lock);
}

/* Called after making work visible to other workers. */
static inline void notify(fl_system_t *sys)
{
    /* Pairs with the fence in park(): either we see the sleeper, or it sees
     * our work. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&sys->nspinning, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&sys->nsleeping, memory_order_relaxed) > 0)
        wake_one(sys);
}

static void wake_all(fl_system_t *sys)
{
    pthread_mutex_lock(&sys->sleep_lock);
    for (unsigned i = 0; i < sys->nstarted; i++)
        if (sys->workers[i]->sleeping)
            wake_locked(sys, sys->workers[i]);
    pthread_mutex_unlock(&sys->sleep_lock);
}

/* ---- scheduling
 * -------------------------------------------------------------- */

static void push_local(fl__worker_t *w, fl__actor_t *a)
{
    if (!fl__runq_push(&w->rq, a))
        inject_push(w->sys, a);
    notify(w->sys);
}

void fl__sched_schedule(fl_system_t *sys, fl__actor_t *a)
{
    fl__worker_t *w = fl__tls_worker;
    if (w != NULL && w->sys == sys) {
        /* The newly runnable actor runs next on this worker; the one it
         * displaces becomes stealable. */
        fl__actor_t *prev = w->next;
        w->next = a;
        if (prev != NULL)
            push_local(w, prev);
        return;
    }
    inject_push(sys, a);
    notify(sys);
}

static inline uint32_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return (uint32_t)(x >> 32);
}

static fl__actor_t *steal(fl__worker_t *w)
{
    fl_system_t *sys = w->sys;
    unsigned n = sys->nworkers;
    if (n < 2)
        return NULL;
    unsigned start = xorshift(&w->rng) % n;
    for (unsigned i = 0; i < n; i++) {
        fl__worker_t *v = sys->workers[(start + i) % n];
        if (v == w)
            continue;
        fl__actor_t *a = fl__runq_pop(&v->rq);
        if (a != NULL)
            return a;
    }
    return NULL;
}

static fl__actor_t *find_work(fl__worker_t *w)
{
    fl_system_t *sys = w->sys;
    fl__actor_t *a;
    if (++w->tick % 61 == 0) {
        /* Fairness: let outside work and queued actors in ahead of a chain
         * running through the next slot, but only when something waits
         * (moving the chain for nothing would wake an idle worker). */
        bool waiting = atomic_load_explicit(&sys->inject_count,
                                            memory_order_acquire) > 0 ||
                       !fl__runq_empty(&w->rq);
        if (waiting && w->next != NULL) {
            push_local(w, w->next);
            w->next = NULL;
        }
        if ((a = inject_pop(sys)) != NULL)
            return a;
    }
    if ((a = w->next) != NULL) {
        w->next = NULL;
        return a;
    }
    if ((a = fl__runq_pop(&w->rq)) != NULL)
        return a;
    if ((a = inject_pop(sys)) != NULL)
        return a;
    return steal(w);
}

static bool any_work(fl__worker_t *w)
{
    fl_system_t *sys = w->sys;
    if (atomic_load_explicit(&sys->inject_count, memory_order_acquire) > 0)
        return true;
    for (unsigned i = 0; i < sys->nworkers; i++)
        if (!fl__runq_empty(&sys->workers[i]->rq))
            return true;
    return false;
}

/*
 * Spin, then park until woken. Returns found work or NULL (re-check, or
 * the system is stopping). The caller is counted in nspinning on entry and
 * is still counted when this returns.
 */
static fl__actor_t *idle(fl__worker_t *w)
{
    fl_system_t *sys = w->sys;
    uint64_t now = fl_clock_now_ns();
    uint64_t until = now + sys->spin_ns, yield_at = now + SPIN_PURE_NS;
    do {
        /* Past the first microseconds, poll between yields: on a machine
         * with more runnable threads than cores (I/O threads, another
         * process) the spinner gives its core away instead of burning it. */
        if (now >= yield_at)
            sched_yield();
        else
            for (int i = 0; i < 64; i++)
                fl__cpu_relax();
        fl__actor_t *a = find_work(w);
        if (a != NULL)
            return a;
        if (atomic_load_explicit(&sys->stopping, memory_order_acquire))
            return NULL;
    } while (sys->spin_ns != 0 && (now = fl_clock_now_ns()) < until);

    /* Park: announce, fence, re-check, sleep. */
    pthread_mutex_lock(&sys->sleep_lock);
    w->sleeping = true;
    atomic_fetch_add_explicit(&sys->nsleeping, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&sys->nspinning, 1, memory_order_relaxed);
    pthread_mutex_unlock(&sys->sleep_lock);
    /* Pairs with the fence in notify(). */
    atomic_thread_fence(memory_order_seq_cst);
    if (any_work(w) ||
        atomic_load_explicit(&sys->stopping, memory_order_acquire)) {
        pthread_mutex_lock(&sys->sleep_lock);
        if (w->sleeping) {
            w->sleeping = false;
            atomic_fetch_sub_explicit(&sys->nsleeping, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&sys->nspinning, 1, memory_order_relaxed);
            pthread_mutex_unlock(&sys->sleep_lock);
            return NULL;
        }
        /* Someone already woke us (and counted us spinning): consume the
         * post so the semaphore stays balanced. */
        pthread_mutex_unlock(&sys->sleep_lock);
    }
    while (sem_wait(&w->wake) != 0 && errno == EINTR)
        ;
    return NULL;
}

static void *worker_main(void *p)
{
    fl__worker_t *w = p;
    fl_system_t *sys = w->sys;
    fl__tls_worker = w;
    fl__tls_sys = sys;
    atomic_fetch_add_explicit(&sys->nspinning, 1, memory_order_relaxed);
    bool spinning = true;
    for (;;) {
        fl__actor_t *a = find_work(w);
        if (a == NULL) {
            if (!spinning) {
                atomic_fetch_add_explicit(&sys->nspinning, 1,
                                          memory_order_relaxed);
                spinning = true;
            }
            if (atomic_load_explicit(&sys->stopping, memory_order_acquire))
                break;
            a = idle(w);
            if (a == NULL)
                continue;
        }
        if (spinning) {
            spinning = false;
            /* Leaving the search: if we were the last searcher and more
             * work is queued, hand the search on. */
            if (atomic_fetch_sub_explicit(&sys->nspinning, 1,
                                          memory_order_seq_cst) == 1 &&
                any_work(w))
                notify(sys);
        }
        if (fl__actor_run(sys, a))
            push_local(w, a);
    }
    atomic_fetch_sub_explicit(&sys->nspinning, 1, memory_order_relaxed);
    fl__tls_worker = NULL;
    fl__tls_sys = NULL;
    fl__pool_flush_thread();
    return NULL;
}

int fl__sched_start(fl_system_t *sys)
{
    pthread_mutex_init(&sys->inject_lock, NULL);
    pthread_mutex_init(&sys->sleep_lock, NULL);
    sys->workers = fl__calloc(sys->nworkers, sizeof *sys->workers);
    if (sys->workers == NULL)
        return FL_ENOMEM;
    for (unsigned i = 0; i < sys->nworkers; i++) {
        fl__worker_t *w = fl__aligned_alloc(FL_CACHE_LINE, sizeof *w);
        if (w == NULL)
            return FL_ENOMEM;
        memset(w, 0, sizeof *w);
        fl__runq_init(&w->rq);
        w->sys = sys;
        w->index = i;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        sem_init(&w->wake, 0, 0);
        sys->workers[i] = w;
    }
    for (unsigned i = 0; i < sys->nworkers; i++) {
        fl__worker_t *w = sys->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return FL_ESYSTEM; /* fl__sched_stop joins the started ones */
        sys->nstarted++;
    }
    return FL_OK;
}

void fl__sched_stop(fl_system_t *sys)
{
    if (sys->workers == NULL)
        return;
    atomic_store_explicit(&sys->stopping, true, memory_order_seq_cst);
    wake_all(sys);
    /* Late wakers may park again before seeing the flag; keep waking. */
    for (unsigned i = 0; i < sys->nstarted; i++) {
        fl__worker_t *w = sys->workers[i];
        sem_post(&w->wake);
        pthread_join(w->thread, NULL);
    }
    sys->nstarted = 0;
}

void fl__sched_free(fl_system_t *sys)
{
    if (sys->workers != NULL) {
        for (unsigned i = 0; i < sys->nworkers; i++) {
            if (sys->workers[i] != NULL) {
                sem_destroy(&sys->workers[i]->wake);
                fl__aligned_free(sys->workers[i]);
            }
        }
        fl__free(sys->workers);
    }
    fl__free(sys->inject);
    pthread_mutex_destroy(&sys->inject_lock);
    pthread_mutex_destroy(&sys->sleep_lock);
}
