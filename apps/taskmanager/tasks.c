/*
 * tasks.c - the TaskExecutor's tasks (taskexecutor_int.h; contract section
 * 4 steps 17-18): submitTask rebuilds the job's graphs from the
 * descriptor, checks the slot, and runs the execution vertex's chain with
 * fj_task_run on a thread of its own; every transition (DEPLOYING,
 * INITIALIZING, RUNNING, then FINISHED, FAILED with the runner's message,
 * or CANCELED) goes to the JobMaster as updateTaskExecutionState, in
 * order, from the endpoint's main thread. cancelTask sets the task's
 * cancel flag.
 *
 * The cancellation watchdog (Flink's TaskCancelerWatchDog): a cancelled
 * task whose thread has not ended is logged every
 * task.cancellation.interval; one not ended within task.cancellation.timeout
 * (0: never) ends the process at once with status 1, as a thread stuck in
 * a user function cannot be stopped and keeps its slot. Its slot is never
 * given out again before. On the main thread it runs on timers; in the
 * TaskExecutor's stop, which blocks the main thread, as a timed wait.
 *
 * A relative user library path ("lib/libudf.so") is looked up in the job
 * file's folder the client sent (job_dir); a bare name ("libudf.so") there
 * too when the file exists, else as dlopen(3) searches.
 *
 * Its log lines (component app, level info, then warn, then error):
 *   <task name> (attempt #<k>) switched from <A> to <B>.
 *   State update <S> of <task name> (attempt #<k>) dropped: it was
 *     deployed by an earlier JobMaster of job <id>
 *   Task <name> (attempt #<k>) is still running after cancellation, <N> ms
 *   Task <name> (attempt #<k>) did not end within <T> ms of its
 *     cancellation (task.cancellation.timeout): ...
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "job/graph.h"
#include "jobmaster.pb-c.h"
#include "task/task.h"
#include "taskexecutor_int.h"

#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x

typedef struct tm_task {
    struct tm_task *next;
    tm_te_t *te;
    char job_id[33];
    char alloc[33];
    /* The JobMaster it was deployed under: its states go to it only. */
    fl_fencing_token_t jm_token;
    uint32_t vertex, attempt;
    char *name;
    fj_job_t *job;
    fj_stream_graph_t *sg;
    fj_job_graph_t *jg;
    fj_exec_graph_t *eg;
    char library[4096];
    /* The user library, opened here too: the task's own dlopen and
     * dlclose then never unload it, and the last close, after the
     * thread is joined, happens on the main thread. */
    void *lib_hold;
    fj_task_t task;
    atomic_bool cancel;
    pthread_t thread;
    bool started;
    /* When the cancel flag was first set (monotonic ms; 0: not yet),
     * main thread. */
    int64_t cancel_ms;
    /* Set (under end_mu) by the thread's last act. */
    atomic_bool ended;
    int state;   /* the last one reported, main thread */
    uint64_t id; /* finds it again from a posted transition */
} tm_task_t;

static atomic_uint_fast64_t next_id = 1;

/* The end of a task thread, for the timed wait of tm__tasks_stop. */
static pthread_mutex_t end_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t end_cv;
static pthread_once_t end_once = PTHREAD_ONCE_INIT;

static void end_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&end_cv, &a);
    pthread_condattr_destroy(&a);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *state_name(int s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &fling__cluster__execution_state__state__descriptor, s);
    return v ? v->name : "?";
}

static void task_free(tm_task_t *t)
{
    if (t->lib_hold != NULL)
        dlclose(t->lib_hold);
    fj_exec_graph_free(t->eg);
    fj_job_graph_free(t->jg);
    fj_stream_graph_free(t->sg);
    fj_job_free(t->job);
    free(t->name);
    free(t);
}

static void task_unlink(tm_te_t *te, tm_task_t *t)
{
    for (tm_task_t **p = &te->tasks; *p != NULL; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            return;
        }
}

/* A final state (FINISHED, FAILED, CANCELED) sent until the JobMaster
 * acknowledged or refused it: a lost one would leave the job waiting for
 * ever. It outlives its task (freed once the thread ended). */
typedef struct final_update {
    struct final_update *next; /* in te->finals while it waits */
    tm_te_t *te;
    char job_id[33];
    fl_fencing_token_t jm_token;
    uint32_t vertex, attempt;
    int state;
    char *name, *message;
} final_update_t;

static void final_free(void *p)
{
    final_update_t *u = p;
    for (final_update_t **q = &u->te->finals; *q != NULL; q = &(*q)->next)
        if (*q == u) {
            *q = u->next;
            break;
        }
    free(u->name);
    free(u->message);
    free(u);
}

/* Sends one transition of attempt (name) to the JobMaster of job_id it
 * was deployed under (token); returns the call's future (the caller owns
 * it) or NULL when that JobMaster is not the job's here now. A recovered
 * job's new JobMaster counts attempts from #0 again: an earlier
 * JobMaster's attempt would pass for its own, so its state is dropped. */
static fl_future_t *send_state(tm_te_t *te, const char *job_id,
                               const fl_fencing_token_t *token,
                               const char *name, uint32_t vertex,
                               uint32_t attempt, int state, const char *message)
{
    bool other = false;
    fl_rpc_gateway_t *gw = tm__job_gateway(te, job_id, token, &other);
    if (other)
        fl_log(FL_LOG_INFO,
               "State update %s of %s (attempt #%u) dropped: it was deployed "
               "by an earlier JobMaster of job %s",
               state_name(state), name, (unsigned)attempt, job_id);
    if (gw == NULL)
        return NULL;
    Fling__Cluster__TaskExecutionState req =
        FLING__CLUSTER__TASK_EXECUTION_STATE__INIT;
    req.job_id = (char *)job_id;
    req.vertex = vertex;
    req.attempt = attempt;
    req.state = (Fling__Cluster__ExecutionState__State)state;
    req.message = (char *)(message ? message : "");
    req.resource_id = te->resource_id;
    fl_future_t *f = NULL;
    fl_rpc_call(gw,
                (unsigned)fl_rpc_method_index(
                    &fling__cluster__job_master_gateway__descriptor,
                    "UpdateTaskExecutionState"),
                &req.base, 0, &f);
    return f;
}

static void final_send(final_update_t *u);

static void final_retry(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    final_send(arg);
}

/* The JobMaster's answer: acknowledged, or refused (FL_ESTATE: not a
 * current attempt, nothing to retry), ends it; any other failure (a
 * timeout, a lost connection) sends it again after
 * cluster.registration.error-delay. */
static void final_sent(fl_future_t *f, void *arg)
{
    final_update_t *u = arg;
    int err = fl_future_error(f);
    if (err == FL_OK || err == FL_ESTATE) {
        final_free(u);
        return;
    }
    int64_t delay = u->te->ropts.error_delay_ms;
    fl_log(FL_LOG_WARN,
           "State update %s of %s (attempt #%u) to the JobMaster of job %s "
           "failed: %s; sending it again in %lld ms "
           "(cluster.registration.error-delay)",
           state_name(u->state), u->name, (unsigned)u->attempt, u->job_id,
           fl_future_message(f), (long long)delay);
    fl_rpc_schedule_run_async(u->te->ep, final_retry, u, final_free, delay,
                              NULL);
}

static void final_send(final_update_t *u)
{
    fl_future_t *f = send_state(u->te, u->job_id, &u->jm_token, u->name,
                                u->vertex, u->attempt, u->state, u->message);
    if (f == NULL) { /* the job's JobMaster is gone: nobody to tell */
        final_free(u);
        return;
    }
    fl_rpc_on_complete(u->te->ep, f, final_sent, u, final_free);
    fl_future_release(f);
}

/* Sends one transition to the job's JobMaster (main thread); a final one
 * until it is acknowledged. */
static void report(tm_te_t *te, tm_task_t *t, int state, const char *message)
{
    fl_log(FL_LOG_INFO, "%s (attempt #%u) switched from %s to %s.", t->name,
           (unsigned)t->attempt, state_name(t->state), state_name(state));
    t->state = state;
    if (state == XS(FINISHED) || state == XS(FAILED) || state == XS(CANCELED)) {
        final_update_t *u = calloc(1, sizeof *u);
        if (u != NULL) {
            u->te = te;
            memcpy(u->job_id, t->job_id, sizeof u->job_id);
            u->jm_token = t->jm_token;
            u->vertex = t->vertex;
            u->attempt = t->attempt;
            u->state = state;
            u->name = strdup(t->name);
            u->message = strdup(message ? message : "");
        }
        if (u != NULL && u->name != NULL && u->message != NULL) {
            u->next = te->finals;
            te->finals = u;
            final_send(u);
            return;
        }
        if (u != NULL)
            final_free(u);
    }
    fl_future_release(send_state(te, t->job_id, &t->jm_token, t->name,
                                 t->vertex, t->attempt, state, message));
}

/* A transition posted by a task's thread. */
typedef struct transition {
    uint64_t id;
    int state;
    char message[1024];
} transition_t;

static void on_transition(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    tm_te_t *te = state;
    transition_t *tr = arg;
    tm_task_t *t = te->tasks;
    while (t != NULL && t->id != tr->id)
        t = t->next;
    if (t == NULL) { /* stopped meanwhile */
        free(tr);
        return;
    }
    report(te, t, tr->state, tr->message[0] ? tr->message : NULL);
    if (tr->state == XS(FINISHED) || tr->state == XS(FAILED) ||
        tr->state == XS(CANCELED)) {
        /* The thread's last act was to post this: joining is short. */
        pthread_join(t->thread, NULL);
        t->started = false;
        task_unlink(te, t);
        char alloc[33];
        memcpy(alloc, t->alloc, sizeof alloc);
        task_free(t);
        tm__slot_task_ended(te, alloc);
    }
    free(tr);
}

static void post(tm_task_t *t, int state, const char *message)
{
    transition_t *tr = calloc(1, sizeof *tr);
    if (tr == NULL)
        return;
    tr->id = t->id;
    tr->state = state;
    if (message != NULL)
        snprintf(tr->message, sizeof tr->message, "%s", message);
    fl_rpc_run_async(t->te->ep, on_transition, tr, free);
}

static void *task_main(void *arg)
{
    tm_task_t *t = arg;
    post(t, XS(INITIALIZING), NULL);
    post(t, XS(RUNNING), NULL);
    char err[1024] = "";
    int rc = fj_task_run(&t->task, NULL, err, sizeof err);
    if (rc == FL_OK)
        post(t, XS(FINISHED), NULL);
    else if (rc == FL_ECANCELED)
        post(t, XS(CANCELED), NULL);
    else
        post(t, XS(FAILED), err);
    pthread_mutex_lock(&end_mu);
    atomic_store(&t->ended, true);
    pthread_cond_broadcast(&end_cv);
    pthread_mutex_unlock(&end_mu);
    return NULL;
}

/* Rebuilds the graphs of the descriptor and fills t->task; FL_OK or an
 * error with why in err. */
static int prepare(tm_task_t *t,
                   const Fling__Cluster__TaskDeploymentDescriptor *d, char *err,
                   size_t errlen)
{
    int rc = fj_job_parse(d->job_json, strlen(d->job_json), "the deployed job",
                          &t->job, err, errlen);
    if (rc != FL_OK)
        return rc;
    if (d->parallelism > 0)
        fj_job_set_parallelism(t->job, (int)d->parallelism);
    rc = fj_stream_graph_build(t->job, &t->sg, err, errlen);
    if (rc != FL_OK)
        return rc;
    if (fj_job_graph_build(t->sg, NULL, &t->jg) != FL_OK ||
        fj_exec_graph_build(t->jg, &t->eg) != FL_OK) {
        snprintf(err, errlen, "out of memory building the job's graphs");
        return FL_ENOMEM;
    }
    fj_task_spec_t spec;
    if (fj_exec_graph_task(t->eg, d->vertex, &spec) != FL_OK) {
        snprintf(err, errlen, "the job has %zu tasks, none with index %u",
                 t->eg->n_vertices, (unsigned)d->vertex);
        return FL_EINVAL;
    }
    const char *lib = spec.library;
    if (lib != NULL && lib[0] != '/' && d->job_dir[0] != '\0') {
        snprintf(t->library, sizeof t->library, "%s/%s", d->job_dir, lib);
        if (strchr(lib, '/') != NULL || access(t->library, F_OK) == 0)
            lib = t->library;
    }
    t->task.chain = spec.chain;
    t->task.n_ops = spec.chain_len;
    t->task.subtask = (uint32_t)spec.subtask;
    t->task.parallelism = (uint32_t)spec.parallelism;
    t->task.attempt = d->attempt;
    t->task.library = lib;
    t->task.cancel = &t->cancel;
    if (lib != NULL) /* NULL: the task says why when it opens it */
        t->lib_hold = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    return FL_OK;
}

void te_submit_task(Fling__Cluster__TaskExecutorGateway_Service *svc,
                    const Fling__Cluster__TaskDeploymentDescriptor *req,
                    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    tm_te_t *te = fl_rpc_call_state(call);
    tm_slot_t *slot = NULL;
    for (uint32_t i = 0; i < te->nslots; i++)
        if (req->allocation_id[0] != '\0' &&
            strcmp(te->slots[i].alloc, req->allocation_id) == 0)
            slot = &te->slots[i];
    /* The slot may still wait for the offer's answer: a task for it
     * activates it (Flink's tryMarkSlotActive). */
    if (slot == NULL || strcmp(slot->job, req->job_id) != 0) {
        fl_rpc_fail(call, FL_ESTATE,
                    "Task %s refused: TaskManager %s holds no slot of "
                    "allocation %s for job %s",
                    req->name, te->resource_id, req->allocation_id,
                    req->job_id);
        return;
    }
    for (tm_task_t *o = te->tasks; o != NULL; o = o->next)
        if (strcmp(o->alloc, req->allocation_id) == 0) {
            fl_rpc_fail(call, FL_ESTATE,
                        "Task %s refused: the slot of allocation %s runs %s",
                        req->name, req->allocation_id, o->name);
            return;
        }
    slot->active = true;
    tm_task_t *t = calloc(1, sizeof *t);
    char *name = NULL;
    if (t != NULL) {
        size_t n = strlen(req->name) + 1;
        name = malloc(n);
        if (name != NULL)
            memcpy(name, req->name, n);
    }
    if (t == NULL || name == NULL) {
        free(t);
        fl_rpc_fail(call, FL_ENOMEM, "TaskManager %s out of memory",
                    te->resource_id);
        return;
    }
    t->te = te;
    t->id = atomic_fetch_add(&next_id, 1);
    t->name = name;
    memcpy(t->job_id, req->job_id, 33);
    memcpy(t->alloc, req->allocation_id, 33);
    /* The slot is the job's: it has the token its slots came with. */
    const fl_fencing_token_t *token = tm__job_token(te, req->job_id);
    if (token != NULL)
        t->jm_token = *token;
    t->vertex = req->vertex;
    t->attempt = req->attempt;
    t->state = XS(CREATED);
    atomic_init(&t->cancel, false);
    atomic_init(&t->ended, false);
    t->next = te->tasks;
    te->tasks = t;
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
    report(te, t, XS(DEPLOYING), NULL);
    char err[1024];
    int rc = prepare(t, req, err, sizeof err);
    pthread_once(&end_once, end_init);
    if (rc == FL_OK && pthread_create(&t->thread, NULL, task_main, t) != 0) {
        snprintf(err, sizeof err, "could not start a thread for it");
        rc = FL_ESYSTEM;
    }
    if (rc != FL_OK) {
        char why[1200];
        snprintf(why, sizeof why, "Task %s could not start: %s", t->name, err);
        report(te, t, XS(FAILED), why);
        task_unlink(te, t);
        task_free(t);
        return;
    }
    t->started = true;
}

/* ---- the cancellation watchdog --------------------------------------- */

/* Ends the process: t did not end within the timeout of its cancel. The
 * stuck thread cannot be stopped, so nothing is cleaned up (_exit); the
 * log line is written (and flushed) first, and the reason goes to stderr
 * last, as for the TaskManager's other fatal errors. */
static _Noreturn void watchdog_fatal(tm_te_t *te, const tm_task_t *t)
{
    char why[1600];
    snprintf(why, sizeof why,
             "Task %s (attempt #%u) did not end within %lld ms of its "
             "cancellation (task.cancellation.timeout): TaskManager %s "
             "ends, as a thread stuck in a user function cannot be stopped; "
             "make the function return when cancelled, or raise "
             "task.cancellation.timeout",
             t->name, (unsigned)t->attempt, (long long)te->cancel_timeout_ms,
             te->resource_id);
    fl_log(FL_LOG_ERROR, "%s", why);
    fprintf(stderr, "fling-taskmanager: %s\n", why);
    _exit(1);
}

static void still_running(const tm_task_t *t, int64_t after_ms)
{
    fl_log(FL_LOG_WARN,
           "Task %s (attempt #%u) is still running after cancellation, %lld "
           "ms",
           t->name, (unsigned)t->attempt, (long long)after_ms);
}

/* a + b for a, b >= 0, INT64_MAX when that overflows. */
static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* The watchdog's next check after the one at `done` ms of cancellation
 * (0: none yet): the next multiple of the interval, or the timeout when
 * that comes first. Saturates at INT64_MAX: the configuration caps both
 * keys, but a check never wraps round to the past. */
static int64_t watchdog_next(const tm_te_t *te, int64_t done)
{
    int64_t iv = te->cancel_interval_ms > 0 ? te->cancel_interval_ms : 30000;
    int64_t k = done / iv + 1;
    int64_t next = k > INT64_MAX / iv ? INT64_MAX : k * iv;
    if (te->cancel_timeout_ms > 0 && next > te->cancel_timeout_ms)
        next = te->cancel_timeout_ms;
    return next;
}

/* One task's watchdog on the main thread's timers. */
typedef struct watchdog {
    tm_te_t *te;
    uint64_t id;
    int64_t at; /* ms of cancellation this check stands for */
} watchdog_t;

static void watchdog_check(fl_rpc_endpoint_t *ep, void *state, void *arg);

/* Schedules w's next check after `done` ms of the cancel of cancel_ms. */
static void watchdog_schedule(watchdog_t *w, int64_t cancel_ms, int64_t done)
{
    w->at = watchdog_next(w->te, done);
    int64_t delay = sat_add(cancel_ms, w->at) - now_ms();
    /* On failure (the endpoint terminated) w has been freed. */
    fl_rpc_schedule_run_async(w->te->ep, watchdog_check, w, free,
                              delay > 0 ? delay : 0, NULL);
}

static void watchdog_check(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    tm_te_t *te = state;
    watchdog_t *w = arg;
    tm_task_t *t = te->tasks;
    while (t != NULL && t->id != w->id)
        t = t->next;
    if (t == NULL || atomic_load(&t->ended)) { /* it ended */
        free(w);
        return;
    }
    if (te->cancel_timeout_ms > 0 && w->at >= te->cancel_timeout_ms)
        watchdog_fatal(te, t);
    still_running(t, w->at);
    watchdog_schedule(w, t->cancel_ms, w->at);
}

/* Sets t's cancel flag; the first time, arms its watchdog. */
static void cancel(tm_te_t *te, tm_task_t *t)
{
    atomic_store(&t->cancel, true);
    if (t->cancel_ms != 0)
        return;
    t->cancel_ms = now_ms();
    if (!t->started || te->stopping)
        return; /* none to watch, or tm__tasks_stop watches it */
    watchdog_t *w = malloc(sizeof *w);
    if (w == NULL) {
        fl_log(FL_LOG_WARN,
               "Task %s (attempt #%u) has no cancellation watchdog: out of "
               "memory",
               t->name, (unsigned)t->attempt);
        return;
    }
    w->te = te;
    w->id = t->id;
    watchdog_schedule(w, t->cancel_ms, 0);
}

/* Waits (main thread, in the stop) until t's thread ended, logging each
 * interval, ending the process at the timeout. Each check follows the
 * previous one, as the timer's do: after a late wake-up (a stalled
 * process) the checks already due are logged at once, each once and in
 * order, rather than skipped. */
static void watchdog_wait(tm_te_t *te, tm_task_t *t)
{
    int64_t at = 0;
    pthread_mutex_lock(&end_mu);
    while (!atomic_load(&t->ended)) {
        at = watchdog_next(te, at);
        int64_t due = sat_add(t->cancel_ms, at);
        struct timespec ts = {.tv_sec = (time_t)(due / 1000),
                              .tv_nsec = (long)(due % 1000) * 1000000L};
        while (!atomic_load(&t->ended) && now_ms() < due)
            pthread_cond_timedwait(&end_cv, &end_mu, &ts);
        if (atomic_load(&t->ended))
            break;
        pthread_mutex_unlock(&end_mu);
        if (te->cancel_timeout_ms > 0 && at >= te->cancel_timeout_ms)
            watchdog_fatal(te, t);
        still_running(t, at);
        pthread_mutex_lock(&end_mu);
    }
    pthread_mutex_unlock(&end_mu);
}

void te_cancel_task(Fling__Cluster__TaskExecutorGateway_Service *svc,
                    const Fling__Cluster__ExecutionAttempt *req,
                    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    tm_te_t *te = fl_rpc_call_state(call);
    for (tm_task_t *t = te->tasks; t != NULL; t = t->next)
        if (strcmp(t->job_id, req->job_id) == 0 && t->vertex == req->vertex &&
            t->attempt == req->attempt) {
            if (t->state != XS(CANCELING))
                report(te, t, XS(CANCELING), NULL);
            cancel(te, t);
        }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}

size_t tm__cancel_slot_tasks(tm_te_t *te, const char *alloc)
{
    size_t n = 0;
    for (tm_task_t *t = te->tasks; t != NULL; t = t->next)
        if (strcmp(t->alloc, alloc) == 0) {
            cancel(te, t);
            n++;
        }
    return n;
}

void tm__tasks_stop(tm_te_t *te)
{
    for (tm_task_t *t = te->tasks; t != NULL; t = t->next)
        cancel(te, t);
    while (te->tasks != NULL) {
        tm_task_t *t = te->tasks;
        if (t->started) {
            watchdog_wait(te, t);
            pthread_join(t->thread, NULL);
        }
        te->tasks = t->next;
        /* Its posted transitions find it gone and are dropped. */
        task_free(t);
    }
}

static bool same_token(const fl_fencing_token_t *a, const fl_fencing_token_t *b)
{
    return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

size_t tm__job_attempts(const tm_te_t *te, const char *job_id,
                        const fl_fencing_token_t *token, tm_attempt_t *out,
                        size_t cap)
{
    size_t n = 0;
    for (const tm_task_t *t = te->tasks; t != NULL; t = t->next)
        if (strcmp(t->job_id, job_id) == 0 && same_token(&t->jm_token, token)) {
            if (n < cap)
                out[n] = (tm_attempt_t){t->vertex, t->attempt, false};
            n++;
        }
    for (const final_update_t *u = te->finals; u != NULL; u = u->next)
        if (strcmp(u->job_id, job_id) == 0 && same_token(&u->jm_token, token)) {
            if (n < cap)
                out[n] = (tm_attempt_t){u->vertex, u->attempt, true};
            n++;
        }
    return n;
}
