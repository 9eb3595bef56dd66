/*
 * sched.c - the work-stealing scheduler.
 *
 * Each worker has a "next" slot (the actor it made runnable last, run right
 * after the current turn: message chains stay on one core and in cache) and
 * a FIFO run queue others may steal from. Threads outside the runtime (and
 * the timer thread) put actors on the scheduler's inject queue. Every 61 turns
 * a worker looks at the inject queue first so it cannot starve.
 *
 * The loop that runs the turns is the user's (fl__sched_loop_cb), so its
 * turn is inlined there; it takes actors with fl__sched_take, whose fast
 * path (the next slot) is inline in sched.h, and its slow path is here.
 *
 * Parking. A worker that finds nothing spins for spin_ns (polling; after
 * SPIN_PURE_NS it yields its core between polls), then parks on its
 * semaphore. While another worker runs turns it parks patiently: for
 * FL__STEAL_LOOK_NS at most, then it looks at the queues again by itself,
 * and pushes to the busy worker's queue do not wake it (a wake-up per
 * push, or a spinner reading that queue's indices, cost the busy core
 * more than the look; docs/RATIONALE.md, "An idle worker beside a busy
 * one"). Otherwise it parks until woken. Making work available wakes one
 * parked worker, but only if nobody is spinning (a spinner will find it);
 * work from outside (the inject queue) wakes a patient one too, for its
 * latency. The lost-wakeup race is closed Dekker-style: the parker
 * announces itself (nsleeping) and re-checks every queue after a seq_cst
 * fence; the notifier publishes the work, fences, then reads
 * nspinning/nsleeping. A patient parker looks again in time at what it
 * missed on the run queues, so only the inject queue is re-checked when
 * it parks, and the deep parker skips the run queues while it looks.
 */
#include "sched/sched.h"

#include "common/pool.h"
#include "common/prof.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every FAIR_TURNS turns a worker looks at the inject queue and its run
 * queue before its next slot (find_work). */
#define FAIR_TURNS 61u

/* How long an idle worker polls without yielding its core. */
#define SPIN_PURE_NS 2000u

_Thread_local fl__worker_t *fl__tls_worker;

/* ---- the inject queue -----------------------------------------------------
 */

static void inject_push(fl__sched_t *s, struct fl__actor *a)
{
    pthread_mutex_lock(&s->inject_lock);
    while (s->inject_len == s->inject_cap) {
        size_t cap = s->inject_cap ? s->inject_cap * 2 : 256;
        struct fl__actor **q = fl__malloc(cap * sizeof *q);
        if (q == NULL) {
            /* Cannot lose a runnable actor: retry until memory shows up.
             * Only reachable when the process is out of memory. */
            pthread_mutex_unlock(&s->inject_lock);
            FL_LOG(FL_LOG_ERROR, "out of memory growing the inject queue; "
                                 "retrying");
            sched_yield();
            pthread_mutex_lock(&s->inject_lock);
            continue;
        }
        for (size_t i = 0; i < s->inject_len; i++)
            q[i] = s->inject[(s->inject_head + i) % s->inject_cap];
        fl__free(s->inject);
        s->inject = q;
        s->inject_cap = cap;
        s->inject_head = 0;
    }
    s->inject[(s->inject_head + s->inject_len) % s->inject_cap] = a;
    s->inject_len++;
    /* Release pairs with the acquire loads of inject_count in inject_pop,
     * find_work and any_work (a hint: the ring itself is under the lock). */
    atomic_store_explicit(&s->inject_count, s->inject_len,
                          memory_order_release);
    pthread_mutex_unlock(&s->inject_lock);
}

static struct fl__actor *inject_pop(fl__sched_t *s)
{
    /* Pairs with the release stores of inject_count; a stale zero only
     * delays the pop (notify and park re-check after a fence). */
    if (atomic_load_explicit(&s->inject_count, memory_order_acquire) == 0)
        return NULL;
    pthread_mutex_lock(&s->inject_lock);
    struct fl__actor *a = NULL;
    if (s->inject_len > 0) {
        a = s->inject[s->inject_head];
        s->inject_head = (s->inject_head + 1) % s->inject_cap;
        s->inject_len--;
        /* As in inject_push. */
        atomic_store_explicit(&s->inject_count, s->inject_len,
                              memory_order_release);
    }
    pthread_mutex_unlock(&s->inject_lock);
    return a;
}

/* ---- waking and parking ----------------------------------------------------
 */

/* Under sleep_lock: take parked w off the sleepers (patient or not); it
 * counts as spinning until it finds work. The waker posts, or w itself
 * found its time up. */
static void unpark_locked(fl__sched_t *s, fl__worker_t *w)
{
    w->sleeping = false;
    /* Relaxed: counts changed under sleep_lock; notify and park order their
     * reads with seq_cst fences. */
    atomic_fetch_sub_explicit(w->patient ? &s->npatient : &s->nsleeping, 1,
                              memory_order_relaxed);
    w->patient = false;
    atomic_fetch_add_explicit(&s->nspinning, 1, memory_order_relaxed);
}

/* Under sleep_lock: wake a sleeping w. */
static void wake_locked(fl__sched_t *s, fl__worker_t *w)
{
    unpark_locked(s, w);
    sem_post(&w->wake);
}

/* Wakes one parked worker; a patient one only if `patient`. */
static void wake_one(fl__sched_t *s, bool patient)
{
    pthread_mutex_lock(&s->sleep_lock);
    for (unsigned i = 0; i < s->nstarted; i++) {
        fl__worker_t *w = s->workers[i];
        if (w->sleeping && (patient || !w->patient)) {
            FL_PROF(wakes);
            wake_locked(s, w);
            break;
        }
    }
    pthread_mutex_unlock(&s->sleep_lock);
}

/* Called after making work visible to other workers: wakes a worker parked
 * until woken, if no one is searching and none is parked patiently (that
 * one looks in time by itself, and hands the search on as a spinner
 * does: fl__sched_take_slow). */
static inline void notify(fl__sched_t *s)
{
    /* Pairs with the fence in idle(): either we see the sleeper, or it sees
     * our work. */
    atomic_thread_fence(memory_order_seq_cst);
    /* Relaxed: ordered by the fence above. */
    if (atomic_load_explicit(&s->nspinning, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&s->npatient, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&s->nsleeping, memory_order_relaxed) > 0)
        wake_one(s, false);
}

/* notify, after a push to the inject queue: a patient worker is woken too
 * (else the work would wait for its next look). */
static inline void notify_inject(fl__sched_t *s)
{
    /* As in notify. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->nspinning, memory_order_relaxed) == 0 &&
        (atomic_load_explicit(&s->nsleeping, memory_order_relaxed) > 0 ||
         atomic_load_explicit(&s->npatient, memory_order_relaxed) > 0))
        wake_one(s, true);
}

static void wake_all(fl__sched_t *s)
{
    pthread_mutex_lock(&s->sleep_lock);
    for (unsigned i = 0; i < s->nstarted; i++)
        if (s->workers[i]->sleeping)
            wake_locked(s, s->workers[i]);
    pthread_mutex_unlock(&s->sleep_lock);
}

/* ---- scheduling
 * -------------------------------------------------------------- */

static void push_local(fl__worker_t *w, struct fl__actor *a)
{
    if (fl__runq_push(&w->rq, a)) {
        notify(w->sched);
    } else {
        inject_push(w->sched, a);
        notify_inject(w->sched);
    }
}

void fl__sched_schedule_slow(fl__sched_t *s, struct fl__actor *a)
{
    fl__worker_t *w = fl__tls_worker;
    if (w != NULL && w->sched == s) {
        /* The newly runnable actor runs next on this worker; the one it
         * displaces becomes stealable. */
        struct fl__actor *prev = w->next;
        w->next = a;
        FL_PROF(sched_next);
        if (prev != NULL) {
            FL_PROF(displaced);
            push_local(w, prev);
        }
        return;
    }
    inject_push(s, a);
    notify_inject(s);
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

static struct fl__actor *steal(fl__worker_t *w)
{
    fl__sched_t *s = w->sched;
    unsigned n = s->nworkers;
    if (n < 2)
        return NULL;
    unsigned start = xorshift(&w->rng) % n;
    for (unsigned i = 0; i < n; i++) {
        fl__worker_t *v = s->workers[(start + i) % n];
        if (v == w)
            continue;
        /* A snapshot (pairs as in fl__runq_empty); the pop decides. */
        uint64_t h = atomic_load_explicit(&v->rq.head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&v->rq.tail, memory_order_acquire);
        fl__steal_watch_t *l = &w->watch[v->index];
        if (t <= h) {
            l->busy_since = 0; /* found empty */
            continue;
        }
        if (!fl__steal_due(l, fl_clock_now_ns(), h, t - h))
            continue;
        struct fl__actor *a = fl__runq_pop(&v->rq);
        if (a != NULL) {
            FL_PROF(from_steal);
            w->watch[v->index] = (fl__steal_watch_t){0};
            return a;
        }
    }
    return NULL;
}

static struct fl__actor *find_work(fl__worker_t *w)
{
    fl__sched_t *s = w->sched;
    struct fl__actor *a;
    if (--w->tick == 0) {
        w->tick = FAIR_TURNS;
        /* Fairness: let outside work and queued actors in ahead of a chain
         * running through the next slot, but only when something waits
         * (moving the chain for nothing would wake an idle worker). */
        /* A hint (see inject_pop). */
        bool waiting =
            atomic_load_explicit(&s->inject_count, memory_order_acquire) > 0 ||
            !fl__runq_empty(&w->rq);
        if (waiting && w->next != NULL) {
            push_local(w, w->next);
            w->next = NULL;
        }
        if ((a = inject_pop(s)) != NULL) {
            FL_PROF(from_inject);
            return a;
        }
    }
    if ((a = w->next) != NULL) {
        w->next = NULL;
        FL_PROF(from_next);
        return a;
    }
    if ((a = fl__runq_pop(&w->rq)) != NULL) {
        FL_PROF(from_runq);
        return a;
    }
    if ((a = inject_pop(s)) != NULL) {
        FL_PROF(from_inject);
        return a;
    }
    return steal(w);
}

/* Whether actors wait on the inject queue or, if `queues`, on a run queue. */
static bool any_work(fl__worker_t *w, bool queues)
{
    fl__sched_t *s = w->sched;
    /* Pairs with the release stores of inject_count. */
    if (atomic_load_explicit(&s->inject_count, memory_order_acquire) > 0)
        return true;
    for (unsigned i = 0; queues && i < s->nworkers; i++)
        if (!fl__runq_empty(&s->workers[i]->rq))
            return true;
    return false;
}

/*
 * Take w, announced as parked, off the sleepers itself (counted spinning
 * again, as a waker does): true; false when a waker took it off first
 * (its post is still to consume).
 */
static bool unannounce(fl__worker_t *w)
{
    fl__sched_t *s = w->sched;
    pthread_mutex_lock(&s->sleep_lock);
    bool asleep = w->sleeping;
    if (asleep)
        unpark_locked(s, w);
    pthread_mutex_unlock(&s->sleep_lock);
    return asleep;
}

/*
 * Sleep at most ns (announced as parked, see idle). True when done: woken
 * (the post consumed), or the time passed and the worker took itself off
 * the sleepers (counted spinning again, as a waker does); false when the
 * time passed but a waker took it off meanwhile: its post is still to
 * consume.
 */
static bool park_timed(fl__worker_t *w, uint64_t ns)
{
    /* The monotonic clock: a step of the wall clock would lengthen the
     * park by as much, and a patient worker's looks with it. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns += (uint64_t)ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    int r;
    while ((r = sem_clockwait(&w->wake, CLOCK_MONOTONIC, &ts)) != 0 &&
           errno == EINTR)
        ;
    if (r == 0)
        return true; /* woken: the post is consumed */
    return unannounce(w);
}

/* Whether a worker other than the caller (counted spinning) is running
 * turns. A hint: a wrong answer costs a patient park's look, or a deep
 * park that a push wakes. */
static bool others_busy(fl__sched_t *s)
{
    /* Relaxed: see nspinning in fl__sched_take_slow. */
    int idle = atomic_load_explicit(&s->nspinning, memory_order_relaxed) +
               atomic_load_explicit(&s->nsleeping, memory_order_relaxed) +
               atomic_load_explicit(&s->npatient, memory_order_relaxed);
    return idle < (int)s->nworkers;
}

/*
 * Spin, then park: patiently while another worker runs turns (for
 * FL__STEAL_LOOK_NS or more; back by itself or woken, the next call looks
 * once without spinning), else until woken. Returns found work or NULL
 * (re-check, or the system is stopping). The caller is counted in nspinning on
 * entry and is still counted when this returns.
 */
static struct fl__actor *idle(fl__worker_t *w)
{
    fl__sched_t *s = w->sched;
    FL_PROF(idles);
    uint64_t now = fl_clock_now_ns();
    uint64_t until = w->looked ? now : now + s->spin_ns;
    uint64_t yield_at = now + SPIN_PURE_NS;
    if (!w->looked)
        w->look_ns = FL__STEAL_LOOK_NS;
    w->looked = false;
    do {
        /* Past the first microseconds, poll between yields: on a machine
         * with more runnable threads than cores (I/O threads, another
         * process) the spinner gives its core away instead of burning it. */
        if (now >= yield_at)
            sched_yield();
        else
            for (int i = 0; i < 64; i++)
                fl__cpu_relax();
        struct fl__actor *a = find_work(w);
        if (a != NULL)
            return a;
        /* Pairs with the store of stopping in fl__sched_shutdown. */
        if (atomic_load_explicit(&s->stopping, memory_order_acquire))
            return NULL;
    } while (now < until && (now = fl_clock_now_ns()) < until);

    /* Nothing to do: give what the block pool keeps beyond its bound back
     * to the allocator once the burst is over, a slice at a time; if it is
     * not over yet, park for a while only, to look again. */
    int trim;
    while ((trim = fl__pool_trim_slice(fl_clock_now_ns())) ==
           FL__POOL_TRIM_MORE) {
        struct fl__actor *a = find_work(w);
        if (a != NULL)
            return a;
    }

    /* Park: announce, fence, re-check, sleep. Patiently if another
     * worker runs turns and none parks so yet (decided under sleep_lock):
     * one patient worker stands for the spinner that notify would
     * otherwise wake (see notify). */
    pthread_mutex_lock(&s->sleep_lock);
    bool patient =
        atomic_load_explicit(&s->npatient, memory_order_relaxed) == 0 &&
        others_busy(s);
    w->sleeping = true;
    w->patient = patient;
    /* Relaxed under sleep_lock: the fence below orders them before the
     * re-check. */
    atomic_fetch_add_explicit(patient ? &s->npatient : &s->nsleeping, 1,
                              memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->sleep_lock);
    /* Pairs with the fences in notify and notify_inject: either the
     * notifier sees this worker parked and wakes it, or this sees its
     * work (or the stop). The run queues only when no worker parks
     * patiently: that one looks at them, and notify wakes no one then.
     * Woken meanwhile (unannounce false): the waits below take the post,
     * so the semaphore stays balanced. */
    atomic_thread_fence(memory_order_seq_cst);
    if ((any_work(w, !patient &&
                         atomic_load_explicit(&s->npatient,
                                              memory_order_relaxed) == 0) ||
         atomic_load_explicit(&s->stopping, memory_order_acquire)) &&
        unannounce(w))
        return NULL;
    if (patient) {
        FL_PROF(looks);
        /* Every FL__STEAL_LOOK_NS while actors are queued (a watch runs,
         * see fl__steal_due); while none are, ever less often. */
        if (any_work(w, true))
            w->look_ns = FL__STEAL_LOOK_NS;
        else if (w->look_ns < FL__STEAL_LOOK_MAX_NS)
            w->look_ns *= 2;
        if (park_timed(w, w->look_ns)) {
            w->looked = true;
            return NULL;
        }
    } else {
        FL_PROF(parks);
        if (trim == FL__POOL_TRIM_LATER && park_timed(w, FL__POOL_QUIET_NS))
            return NULL;
    }
    while (sem_wait(&w->wake) != 0 && errno == EINTR)
        ;
    return NULL;
}

struct fl__actor *fl__sched_take_slow(fl__worker_t *w)
{
    fl__sched_t *s = w->sched;
    struct fl__actor *a = find_work(w);
    if (a == NULL) {
        /* nspinning counts searching workers; relaxed, as every change of
         * it outside sleep_lock: notify reads it after a seq_cst fence,
         * and a stale count costs a spare wake-up or a spinner finding
         * the work. */
        atomic_fetch_add_explicit(&s->nspinning, 1, memory_order_relaxed);
        do {
            /* Pairs with the store of stopping in fl__sched_shutdown. */
            if (atomic_load_explicit(&s->stopping, memory_order_acquire)) {
                /* Relaxed: see above; the worker is leaving. */
                atomic_fetch_sub_explicit(&s->nspinning, 1,
                                          memory_order_relaxed);
                return NULL;
            }
            a = idle(w);
        } while (a == NULL);
        /* Leaving the search: if we were the last searcher and more work
         * is queued, hand the search on (work from outside to a patient
         * worker too, as notify_inject). seq_cst: the decrement comes
         * before any_work's loads, as a notifier's fence. */
        if (atomic_fetch_sub_explicit(&s->nspinning, 1, memory_order_seq_cst) ==
            1) {
            if (any_work(w, false))
                notify_inject(s);
            else if (any_work(w, true))
                notify(s);
        }
    }
    FL_PROF(turns);
    return a;
}

void fl__sched_requeue(fl__worker_t *w, struct fl__actor *a)
{
    FL_PROF(turns_more);
    push_local(w, a);
}

static void *worker_main(void *p)
{
    fl__worker_t *w = p;
    fl__sched_t *s = w->sched;
    fl__tls_worker = w;
    s->thread(s->ctx, true);
    pthread_mutex_lock(&s->sleep_lock);
    s->nready++;
    pthread_cond_signal(&s->ready_cv);
    pthread_mutex_unlock(&s->sleep_lock);
    s->loop(w, s->ctx);
    s->thread(s->ctx, false);
    fl__prof_dump(w->index);
    fl__tls_worker = NULL;
    return NULL;
}

int fl__sched_start(fl__sched_t *s, unsigned nworkers, uint64_t spin_ns,
                    fl__sched_loop_cb loop, fl__sched_thread_cb thread,
                    void *ctx)
{
    s->nworkers = nworkers;
    s->spin_ns = spin_ns;
    s->loop = loop;
    s->thread = thread;
    s->ctx = ctx;
    pthread_mutex_init(&s->inject_lock, NULL);
    pthread_mutex_init(&s->sleep_lock, NULL);
    pthread_cond_init(&s->ready_cv, NULL);
    s->workers = fl__calloc(s->nworkers, sizeof *s->workers);
    if (s->workers == NULL)
        return FL_ENOMEM;
    for (unsigned i = 0; i < s->nworkers; i++) {
        fl__worker_t *w = fl__aligned_alloc(FL_CACHE_LINE, sizeof *w);
        if (w == NULL)
            return FL_ENOMEM;
        memset(w, 0, sizeof *w);
        fl__runq_init(&w->rq);
        w->sched = s;
        w->index = i;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        w->tick = FAIR_TURNS;
        sem_init(&w->wake, 0, 0);
        s->workers[i] = w;
        w->watch = fl__calloc(nworkers, sizeof *w->watch);
        if (w->watch == NULL)
            return FL_ENOMEM;
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        fl__worker_t *w = s->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return FL_ESYSTEM; /* fl__sched_shutdown joins the started ones */
        s->nstarted++;
    }
    pthread_mutex_lock(&s->sleep_lock);
    while (s->nready < s->nstarted)
        pthread_cond_wait(&s->ready_cv, &s->sleep_lock);
    pthread_mutex_unlock(&s->sleep_lock);
    return FL_OK;
}

void fl__sched_shutdown(fl__sched_t *s)
{
    if (s->workers == NULL)
        return;
    /* seq_cst pairs with the acquire loads of stopping in the workers and
     * fl__sched_stopping; the wake-ups below follow it. */
    atomic_store_explicit(&s->stopping, true, memory_order_seq_cst);
    wake_all(s);
    /* Late wakers may park again before seeing the flag; keep waking. */
    for (unsigned i = 0; i < s->nstarted; i++) {
        fl__worker_t *w = s->workers[i];
        sem_post(&w->wake);
        pthread_join(w->thread, NULL);
    }
    s->nstarted = 0;
}

void fl__sched_fini(fl__sched_t *s)
{
    if (s->workers != NULL) {
        for (unsigned i = 0; i < s->nworkers; i++) {
            if (s->workers[i] != NULL) {
                sem_destroy(&s->workers[i]->wake);
                fl__free(s->workers[i]->watch);
                fl__aligned_free(s->workers[i]);
            }
        }
        fl__free(s->workers);
    }
    fl__free(s->inject);
    pthread_mutex_destroy(&s->inject_lock);
    pthread_mutex_destroy(&s->sleep_lock);
    pthread_cond_destroy(&s->ready_cv);
}
