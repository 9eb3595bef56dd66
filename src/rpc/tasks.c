/*
 * tasks.c - the service's scheduled executor: fl_rpc_schedule, at a fixed
 * rate or with a fixed delay, and fl_rpc_cancel. A task runs on the actor
 * system's timer; the service's tasks are linked under svc->mu, and a run
 * in progress is waited for on svc->cv.
 */
#include "rpc/tasks.h"

#include "actor/timer.h"
#include "rpc/call.h"
#include "rpc/service.h"

typedef struct fl__rpc_task task_t;

struct fl__rpc_task {
    fl_rpc_service_t *svc;
    fl_rpc_task_id_t id;
    fl_rpc_sched_cb fn;
    void *arg;
    int kind; /* 0 once, 1 fixed rate, 2 fixed delay */
    int64_t delay_ms;
    fl_timer_id_t timer;
    bool running, cancelled;
    task_t *next;
};

/* Under svc->mu: unlink and free t. */
static void task_unlink(fl_rpc_service_t *svc, task_t *t)
{
    for (task_t **q = &svc->tasks; *q != NULL; q = &(*q)->next) {
        if (*q == t) {
            *q = t->next;
            break;
        }
    }
    fl__free(t);
}

static void task_fire(fl_system_t *sys, void *p)
{
    task_t *t = p;
    fl_rpc_service_t *svc = t->svc;
    pthread_mutex_lock(&svc->mu);
    if (t->cancelled) {
        task_unlink(svc, t);
        pthread_cond_broadcast(&svc->cv);
        pthread_mutex_unlock(&svc->mu);
        return;
    }
    t->running = true;
    pthread_mutex_unlock(&svc->mu);
    t->fn(svc, t->arg);
    pthread_mutex_lock(&svc->mu);
    t->running = false;
    if (t->cancelled || t->kind == 0) {
        task_unlink(svc, t);
    } else if (t->kind == 2) {
        /* Fixed delay: the next run starts delay_ms after this one ended. */
        if (fl_timer_start(sys, task_fire, t, t->delay_ms, 0, &t->timer) !=
            FL_OK)
            task_unlink(svc, t);
    }
    pthread_cond_broadcast(&svc->cv);
    pthread_mutex_unlock(&svc->mu);
}

static int schedule(fl_rpc_service_t *svc, fl_rpc_sched_cb fn, void *arg,
                    int kind, int64_t initial, int64_t period,
                    fl_rpc_task_id_t *out)
{
    if (svc == NULL)
        return fl__rpc_refuse(FL_EINVAL, "svc must not be NULL");
    if (fn == NULL)
        return fl__rpc_refuse(FL_EINVAL, "fn must not be NULL");
    if (initial < 0)
        return fl__rpc_refuse(FL_EINVAL, "%s must be >= 0 (got %lld)",
                              kind == 0 ? "delay_ms" : "initial_ms",
                              (long long)initial);
    if (kind != 0 && period <= 0)
        return fl__rpc_refuse(FL_EINVAL, "%s must be > 0 (got %lld)",
                              kind == 1 ? "period_ms" : "delay_ms",
                              (long long)period);
    task_t *t = fl__calloc(1, sizeof *t);
    if (t == NULL)
        return fl__rpc_refuse(FL_ENOMEM, "no memory to schedule a task");
    t->svc = svc;
    t->fn = fn;
    t->arg = arg;
    t->kind = kind;
    t->delay_ms = period;
    pthread_mutex_lock(&svc->mu);
    if (svc->closed) {
        pthread_mutex_unlock(&svc->mu);
        fl__free(t);
        return fl__rpc_refuse(FL_ECLOSED, "the rpc service is closed");
    }
    t->id = ++svc->next_task;
    /* Under the lock so a fast first run finds the task linked. */
    int rc = fl_timer_start(svc->sys, task_fire, t, initial,
                            kind == 1 ? period : 0, &t->timer);
    if (rc != FL_OK) {
        pthread_mutex_unlock(&svc->mu);
        fl__free(t);
        return fl__rpc_refuse(rc, "could not schedule a task: %s",
                              fl_strerror(rc));
    }
    t->next = svc->tasks;
    svc->tasks = t;
    if (out != NULL)
        *out = t->id;
    pthread_mutex_unlock(&svc->mu);
    return FL_OK;
}

int fl_rpc_schedule(fl_rpc_service_t *svc, fl_rpc_sched_cb fn, void *arg,
                    int64_t delay_ms, fl_rpc_task_id_t *out)
{
    return schedule(svc, fn, arg, 0, delay_ms, 0, out);
}

int fl_rpc_schedule_at_fixed_rate(fl_rpc_service_t *svc, fl_rpc_sched_cb fn,
                                  void *arg, int64_t initial_ms,
                                  int64_t period_ms, fl_rpc_task_id_t *out)
{
    return schedule(svc, fn, arg, 1, initial_ms, period_ms, out);
}

int fl_rpc_schedule_with_fixed_delay(fl_rpc_service_t *svc, fl_rpc_sched_cb fn,
                                     void *arg, int64_t initial_ms,
                                     int64_t delay_ms, fl_rpc_task_id_t *out)
{
    return schedule(svc, fn, arg, 2, initial_ms, delay_ms, out);
}

/* Under svc->mu. Returns FL_OK or FL_ENOENT. */
static int cancel_locked(fl_rpc_service_t *svc, task_t *t)
{
    if (t->cancelled)
        return FL_ENOENT;
    t->cancelled = true;
    bool firing = false;
    (void)fl__timer_cancel_id(svc->sys, t->timer, &firing);
    /* Whatever the timer answered (cancelled, already gone, or its thread
     * stopped), task_fire will not be called again unless a run is firing
     * right now; that run, or the one in progress, sees `cancelled` and
     * frees the task. Otherwise nobody else holds it: free it now. */
    if (!firing && !t->running)
        task_unlink(svc, t);
    return FL_OK;
}

int fl_rpc_cancel(fl_rpc_service_t *svc, fl_rpc_task_id_t id)
{
    if (svc == NULL)
        return fl__rpc_refuse(FL_EINVAL, "svc must not be NULL");
    pthread_mutex_lock(&svc->mu);
    task_t *t = svc->tasks;
    while (t != NULL && t->id != id)
        t = t->next;
    int rc = t ? cancel_locked(svc, t) : FL_ENOENT;
    pthread_mutex_unlock(&svc->mu);
    return rc;
}

void fl__rpc_tasks_shutdown(fl_rpc_service_t *svc)
{
    pthread_mutex_lock(&svc->mu);
    for (task_t *t = svc->tasks, *next; t != NULL; t = next) {
        next = t->next;
        if (!t->cancelled)
            cancel_locked(svc, t);
    }
    /* Runs in progress (or firing) free their cancelled task and signal. */
    while (svc->tasks != NULL)
        pthread_cond_wait(&svc->cv, &svc->mu);
    pthread_mutex_unlock(&svc->mu);
}
