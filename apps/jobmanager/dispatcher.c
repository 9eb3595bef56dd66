/*
 * dispatcher.c - the Dispatcher endpoint (dispatcher.h).
 *
 * The job table lives on the endpoint's main thread; each job's record is
 * shared with its JobMaster under the record's mutex. A job that reached a
 * terminal state loses its JobMaster (closed, then freed) and stays in the
 * table as its record only, the archive (Flink's ExecutionGraphInfoStore),
 * bounded by jobstore.max-capacity and jobstore.expiration-time.
 */
#include "dispatcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher.pb-c.h"
#include "jobmaster.h"
#include "jobstore.h"

#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x

typedef struct djob {
    struct djob *next;
    jm_dispatcher_t *d;
    jm_job_rec_t rec;
    jm_jobmaster_t *jm; /* NULL once freed (archived) */
    fl_future_t *term;  /* the JobMaster's termination, once closed */
    bool ended;         /* terminal, its end handled */
} djob_t;

struct jm_dispatcher {
    fl_rpc_service_t *svc;
    const fl_config_t *cfg;
    fl_fencing_token_t token;
    char rm_address[512];
    fl_fencing_token_t rm_token;
    fl_rpc_endpoint_t *ep;
    djob_t *jobs; /* newest first */
    char id[64];
    jm_jobstore_t *store; /* the process's, borrowed */
    fl_future_t *after;   /* recover once it completes; NULL: at start */
    int64_t max_archived, expiration_ms;
    bool stopping; /* on_stop ran: no JobMaster starts any more */
};

static djob_t *job_find(const jm_dispatcher_t *d, const char *job_id)
{
    for (djob_t *j = d->jobs; j != NULL; j = j->next)
        if (strcmp(j->rec.job_id, job_id) == 0)
            return j;
    return NULL;
}

static void djob_free(djob_t *j)
{
    if (j->term != NULL) {
        fl_future_wait(j->term, FL_INFINITE);
        fl_future_release(j->term);
    }
    jm_jobmaster_free(j->jm);
    for (size_t i = 0; i < j->rec.ntasks; i++)
        free(j->rec.tasks[i].name);
    free(j->rec.tasks);
    free(j->rec.name);
    pthread_mutex_destroy(&j->rec.mu);
    free(j);
}

static const char *state_name(int s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &fling__cluster__job_status__state__descriptor, s);
    return v ? v->name : "?";
}

static bool terminal(int s)
{
    return s == JS(FINISHED) || s == JS(FAILED) || s == JS(CANCELED);
}

/* ---- the archive ----------------------------------------------------------
 */

/* Drops the archived jobs (ended, JobMaster freed) past
 * jobstore.expiration-time, then the oldest submitted past
 * jobstore.max-capacity. On the main thread. */
static void prune(jm_dispatcher_t *d)
{
    int64_t now = jm_now_ms();
    int64_t kept = 0;
    djob_t **pp = &d->jobs; /* newest first */
    while (*pp != NULL) {
        djob_t *j = *pp;
        if (j->ended && j->jm == NULL) {
            /* No JobMaster writes the record any more. */
            /* now - end_ms: no overflow for any expiration-time. */
            if (now - j->rec.end_ms >= d->expiration_ms ||
                kept >= d->max_archived) {
                *pp = j->next;
                djob_free(j);
                continue;
            }
            kept++;
        }
        pp = &j->next;
    }
}

/* ---- a job's end ----------------------------------------------------------
 */

/* The JobMaster of an ended job has terminated: freed; the record stays. */
static void jobmaster_terminated(fl_future_t *f, void *arg)
{
    (void)f;
    djob_t *j = arg;
    fl_future_release(j->term);
    j->term = NULL;
    jm_jobmaster_free(j->jm);
    j->jm = NULL;
    fl_log(FL_LOG_INFO, "Job %s (%s) archived: its JobMaster is freed",
           j->rec.name, j->rec.job_id);
    prune(j->d);
}

static void job_ended(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    djob_t *j = arg;
    pthread_mutex_lock(&j->rec.mu);
    int s = j->rec.state;
    pthread_mutex_unlock(&j->rec.mu);
    fl_log(FL_LOG_INFO, "Job %s (%s) reached its terminal state %s.",
           j->rec.name, j->rec.job_id, state_name(s));
    if (j->ended || !terminal(s))
        return;
    j->ended = true;
    jm_jobstore_remove(j->d->store, j->rec.job_id);
    if (j->term == NULL)
        j->term = jm_jobmaster_close(j->jm);
    /* Not watched (out of memory): freed with the Dispatcher. */
    if (j->term != NULL)
        fl_rpc_on_complete(j->d->ep, j->term, jobmaster_terminated, j, NULL);
}

/* The JobMaster's on_end, on its main thread: hands over to ours. */
static void on_end(void *arg, jm_jobmaster_t *jm)
{
    (void)jm;
    djob_t *j = arg;
    fl_rpc_run_async(j->d->ep, job_ended, j, NULL);
}

/* ---- the gateway ----------------------------------------------------------
 */

/* Builds the job's graphs from its JSON (under the id job_id unless
 * NULL); FL_OK or FL_EINVAL/FL_ENOTSUP/FL_ENOMEM with why in err. */
static int build(const char *json, uint32_t parallelism, const fj_id_t *job_id,
                 jm_jobmaster_opts_t *o, char *err, size_t errlen)
{
    int rc = fj_job_parse(json, strlen(json), "the submitted job", &o->job, err,
                          errlen);
    if (rc != FL_OK)
        return rc;
    if (parallelism > 0) {
        fj_job_set_parallelism(o->job, (int)parallelism);
        rc = fj_job_check(o->job, err, errlen);
        if (rc != FL_OK)
            return rc;
    }
    rc = fj_stream_graph_build(o->job, &o->sg, err, errlen);
    if (rc != FL_OK)
        return rc;
    if (fj_job_graph_build(o->sg, job_id, &o->jg) != FL_OK) {
        snprintf(err, errlen, "out of memory building the JobGraph");
        return FL_ENOMEM;
    }
    rc = fj_job_check_runnable(o->jg, err, errlen);
    if (rc != FL_OK)
        return rc;
    if (fj_exec_graph_build(o->jg, &o->eg) != FL_OK) {
        snprintf(err, errlen, "out of memory building the ExecutionGraph");
        return FL_ENOMEM;
    }
    return FL_OK;
}

static void free_graphs(jm_jobmaster_opts_t *o)
{
    fj_exec_graph_free(o->eg);
    fj_job_graph_free(o->jg);
    fj_stream_graph_free(o->sg);
    fj_job_free(o->job);
}

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}

/* A job's record for the graphs of o, or NULL when out of memory. */
static djob_t *djob_alloc(jm_dispatcher_t *d, const jm_jobmaster_opts_t *o)
{
    djob_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    pthread_mutex_init(&j->rec.mu, NULL);
    j->d = d;
    j->rec.name = dup(o->sg->job_name);
    j->rec.ntasks = o->eg->n_vertices;
    j->rec.tasks =
        calloc(j->rec.ntasks ? j->rec.ntasks : 1, sizeof *j->rec.tasks);
    bool ok = j->rec.name != NULL && j->rec.tasks != NULL;
    for (size_t i = 0; ok && i < o->eg->n_vertices; i++) {
        const fj_exec_vertex_t *ev = &o->eg->vertices[i];
        jm_task_rec_t *t = &j->rec.tasks[i];
        t->name = dup(ev->name);
        ok = t->name != NULL;
        snprintf(t->vertex_name, sizeof t->vertex_name, "%s",
                 o->jg->vertices[ev->job_vertex].name);
        t->vertex_id = (uint32_t)ev->job_vertex;
        t->subtask = (uint32_t)ev->subtask;
        t->parallelism = (uint32_t)ev->parallelism;
    }
    if (!ok) {
        djob_free(j);
        return NULL;
    }
    fj_id_format(&o->jg->job_id, j->rec.job_id);
    j->rec.state = JS(CREATED);
    return j;
}

/*
 * take_job builds the job of sj (a new one: a random id; a recovered one:
 * sj->job_id), adds it to the table and starts its JobMaster. Returns
 * FL_OK with *out in the table, or the code with why in err: *refused
 * when the job itself is wrong. On the main thread.
 */
static int take_job(jm_dispatcher_t *d, const jm_stored_job_t *sj,
                    bool recovered, djob_t **out, bool *refused, char *err,
                    size_t errlen)
{
    jm_jobmaster_opts_t o = {0};
    fj_id_t id;
    *refused = false;
    if (recovered && fj_id_parse(sj->job_id, &id) != FL_OK) {
        snprintf(err, errlen, "its id is not 32 hex digits");
        return FL_EINVAL;
    }
    int rc = build(sj->json, sj->parallelism, recovered ? &id : NULL, &o, err,
                   errlen);
    if (rc != FL_OK) {
        free_graphs(&o);
        *refused = true;
        return rc == FL_ENOMEM ? rc : FL_EINVAL;
    }
    djob_t *j = djob_alloc(d, &o);
    if (j == NULL) {
        free_graphs(&o);
        snprintf(err, errlen, "Dispatcher out of memory taking a job");
        return FL_ENOMEM;
    }
    j->rec.start_ms = recovered ? sj->submitted_ms : jm_now_ms();
    fl_log(FL_LOG_INFO, "%s job %s (%s) with %zu tasks",
           recovered ? "Recovered" : "Received", j->rec.name, j->rec.job_id,
           j->rec.ntasks);
    o.svc = d->svc;
    o.cfg = d->cfg;
    o.rec = &j->rec;
    o.job_json = sj->json;
    o.parallelism = sj->parallelism;
    o.job_dir = sj->job_dir;
    o.rm_address = d->rm_address;
    o.rm_token = d->rm_token;
    o.on_end = on_end;
    o.arg = j;
    rc = jm_jobmaster_start(&o, &j->jm, err, errlen);
    if (rc != FL_OK) {
        djob_free(j);
        return rc;
    }
    j->next = d->jobs;
    d->jobs = j;
    *out = j;
    return FL_OK;
}

static void d_submit_job(Fling__Cluster__DispatcherGateway_Service *svc,
                         const Fling__Cluster__SubmitJobRequest *req,
                         Fling__Cluster__SubmitJobReply_Closure closure,
                         void *call)
{
    (void)svc;
    jm_dispatcher_t *d = fl_rpc_call_state(call);
    prune(d);
    jm_stored_job_t sj = {
        .json = req->job_json,
        .parallelism = req->parallelism,
        .job_dir = req->job_dir,
    };
    djob_t *j = NULL;
    bool refused;
    char why[1024];
    int rc = take_job(d, &sj, false, &j, &refused, why, sizeof why);
    if (rc == FL_OK) {
        snprintf(sj.job_id, sizeof sj.job_id, "%s", j->rec.job_id);
        sj.submitted_ms = j->rec.start_ms;
        /* Not stored: the job runs, a new leadership (or JobManager)
         * would not recover it. */
        char serr[600];
        if (jm_jobstore_put(d->store, &sj, serr, sizeof serr) != FL_OK)
            fl_log(FL_LOG_WARN,
                   "Job %s (%s) is not stored, so it will not be recovered: "
                   "%s",
                   j->rec.name, j->rec.job_id, serr);
    } else if (refused) {
        fl_log(FL_LOG_WARN, "Job submission refused: %s", why);
        fl_rpc_fail(call, rc, "Job submission refused: %s", why);
        return;
    } else {
        fl_rpc_fail(call, rc, "%s", why);
        return;
    }
    Fling__Cluster__SubmitJobReply r = FLING__CLUSTER__SUBMIT_JOB_REPLY__INIT;
    r.job_id = j->rec.job_id;
    closure(&r, call);
}

static void d_list_jobs(Fling__Cluster__DispatcherGateway_Service *svc,
                        const Fling__Cluster__Ack *req,
                        Fling__Cluster__JobList_Closure closure, void *call)
{
    (void)svc;
    (void)req;
    jm_dispatcher_t *d = fl_rpc_call_state(call);
    prune(d);
    size_t n = 0;
    for (djob_t *j = d->jobs; j != NULL; j = j->next)
        n++;
    Fling__Cluster__JobSummary *s = calloc(n ? n : 1, sizeof *s);
    Fling__Cluster__JobSummary **ps = calloc(n ? n : 1, sizeof *ps);
    if (s == NULL || ps == NULL) {
        free(s);
        free(ps);
        fl_rpc_fail(call, FL_ENOMEM, "Dispatcher out of memory listing jobs");
        return;
    }
    size_t i = n; /* submission order: the list is newest first */
    for (djob_t *j = d->jobs; j != NULL; j = j->next) {
        i--;
        Fling__Cluster__JobSummary x = FLING__CLUSTER__JOB_SUMMARY__INIT;
        x.job_id = j->rec.job_id;
        x.name = j->rec.name;
        pthread_mutex_lock(&j->rec.mu);
        x.state = (Fling__Cluster__JobStatus__State)j->rec.state;
        x.start_time_ms = j->rec.start_ms;
        x.end_time_ms = j->rec.end_ms;
        pthread_mutex_unlock(&j->rec.mu);
        s[i] = x;
        ps[i] = &s[i];
    }
    Fling__Cluster__JobList r = FLING__CLUSTER__JOB_LIST__INIT;
    r.jobs = ps;
    r.n_jobs = n;
    closure(&r, call);
    free(s);
    free(ps);
}

static void d_cancel_job(Fling__Cluster__DispatcherGateway_Service *svc,
                         const Fling__Cluster__JobIdRequest *req,
                         Fling__Cluster__CancelJobReply_Closure closure,
                         void *call)
{
    (void)svc;
    jm_dispatcher_t *d = fl_rpc_call_state(call);
    prune(d);
    djob_t *j = job_find(d, req->job_id);
    if (j == NULL) {
        fl_rpc_fail(call, FL_ENOENT, "No job %s", req->job_id);
        return;
    }
    pthread_mutex_lock(&j->rec.mu);
    int s = j->rec.state;
    pthread_mutex_unlock(&j->rec.mu);
    if (!terminal(s) && j->jm != NULL) {
        fl_log(FL_LOG_INFO, "Cancelling job %s (%s)", j->rec.name,
               j->rec.job_id);
        jm_jobmaster_cancel(j->jm);
        if (s != JS(FAILING))
            s = JS(CANCELLING);
    }
    Fling__Cluster__CancelJobReply r = FLING__CLUSTER__CANCEL_JOB_REPLY__INIT;
    r.state = (Fling__Cluster__JobStatus__State)s;
    closure(&r, call);
}

static void d_request_job_status(Fling__Cluster__DispatcherGateway_Service *svc,
                                 const Fling__Cluster__JobIdRequest *req,
                                 Fling__Cluster__JobStatusReply_Closure closure,
                                 void *call)
{
    (void)svc;
    jm_dispatcher_t *d = fl_rpc_call_state(call);
    prune(d);
    djob_t *j = job_find(d, req->job_id);
    if (j == NULL) {
        fl_rpc_fail(call, FL_ENOENT, "No job %s", req->job_id);
        return;
    }
    size_t n = j->rec.ntasks;
    Fling__Cluster__TaskStatus *ts = calloc(n ? n : 1, sizeof *ts);
    Fling__Cluster__TaskStatus **pts = calloc(n ? n : 1, sizeof *pts);
    char *fails = calloc(n ? n : 1, 512);
    char *tms = calloc(n ? n : 1, 256);
    if (ts == NULL || pts == NULL || fails == NULL || tms == NULL) {
        free(ts);
        free(pts);
        free(fails);
        free(tms);
        fl_rpc_fail(call, FL_ENOMEM, "Dispatcher out of memory");
        return;
    }
    Fling__Cluster__JobStatusReply r = FLING__CLUSTER__JOB_STATUS_REPLY__INIT;
    char failure[1024];
    pthread_mutex_lock(&j->rec.mu);
    for (size_t i = 0; i < n; i++) {
        const jm_task_rec_t *t = &j->rec.tasks[i];
        Fling__Cluster__TaskStatus x = FLING__CLUSTER__TASK_STATUS__INIT;
        x.vertex_name = (char *)t->vertex_name;
        x.vertex_id = t->vertex_id;
        x.subtask = t->subtask;
        x.parallelism = t->parallelism;
        x.attempt = t->attempt;
        x.state = (Fling__Cluster__ExecutionState__State)t->state;
        memcpy(tms + 256 * i, t->tm, 256);
        memcpy(fails + 512 * i, t->failure, 512);
        x.task_manager = tms + 256 * i;
        x.failure = fails + 512 * i;
        ts[i] = x;
        pts[i] = &ts[i];
    }
    r.state = (Fling__Cluster__JobStatus__State)j->rec.state;
    r.start_time_ms = j->rec.start_ms;
    r.end_time_ms = j->rec.end_ms;
    r.restarts = j->rec.restarts;
    memcpy(failure, j->rec.failure, sizeof failure);
    pthread_mutex_unlock(&j->rec.mu);
    r.job_id = j->rec.job_id;
    r.name = j->rec.name;
    r.tasks = pts;
    r.n_tasks = n;
    r.failure = failure;
    closure(&r, call);
    free(ts);
    free(pts);
    free(fails);
    free(tms);
}

static Fling__Cluster__DispatcherGateway_Service d_impl =
    FLING__CLUSTER__DISPATCHER_GATEWAY__INIT(d_);

/* ---- life -----------------------------------------------------------------
 */

/* Starts the jobs the store holds (a former leadership's, suspended)
 * under their ids. On the main thread. */
static void recover(jm_dispatcher_t *d)
{
    if (d->stopping) /* revoked already: the next Dispatcher recovers */
        return;
    jm_stored_job_t *jobs = NULL;
    size_t n = 0;
    if (jm_jobstore_list(d->store, &jobs, &n) != FL_OK) {
        fl_log(FL_LOG_WARN,
               "Dispatcher %s could not recover its jobs: out of memory",
               fl_rpc_endpoint_address(d->ep));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (job_find(d, jobs[i].job_id) != NULL)
            continue;
        djob_t *j = NULL;
        bool refused;
        char why[1024];
        if (take_job(d, &jobs[i], true, &j, &refused, why, sizeof why) !=
            FL_OK) {
            fl_log(FL_LOG_WARN, "Could not recover job %s: %s", jobs[i].job_id,
                   why);
            if (refused) /* it never will be */
                jm_jobstore_remove(d->store, jobs[i].job_id);
        }
    }
    jm_stored_jobs_free(jobs, n);
}

/* The former Dispatcher and its JobMasters have terminated. */
static void former_terminated(fl_future_t *f, void *arg)
{
    (void)f;
    recover(arg);
}

static int d_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    jm_dispatcher_t *d = state;
    char hex[33];
    fl_log(FL_LOG_DEBUG, "Dispatcher %s started with leader token %s",
           fl_rpc_endpoint_address(ep), fl_fencing_token_hex(&d->token, hex));
    /* A JobMaster's endpoint id is its job's: the former one must be gone
     * before the job starts again. */
    if (d->after == NULL ||
        fl_rpc_on_complete(ep, d->after, former_terminated, d, NULL) != FL_OK)
        recover(d);
    return FL_OK;
}

/* Closes the JobMasters still running (their jobs suspended, kept in the
 * store); done once they all terminated. */
static fl_future_t *d_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    jm_dispatcher_t *d = state;
    d->stopping = true;
    size_t n = 0;
    for (djob_t *j = d->jobs; j != NULL; j = j->next)
        n++;
    fl_future_t **fs = calloc(n ? n : 1, sizeof *fs);
    if (fs == NULL)
        return NULL;
    size_t k = 0;
    for (djob_t *j = d->jobs; j != NULL; j = j->next) {
        pthread_mutex_lock(&j->rec.mu);
        int s = j->rec.state;
        pthread_mutex_unlock(&j->rec.mu);
        /* Ended while its end was on its way to us: not to recover. */
        if (terminal(s))
            jm_jobstore_remove(d->store, j->rec.job_id);
        if (j->jm != NULL && j->term == NULL)
            j->term = jm_jobmaster_close(j->jm);
        if (j->term != NULL)
            fs[k++] = fl_future_retain(j->term);
    }
    fl_future_t *all = k > 0 ? fl_future_all(fs, k) : NULL;
    for (size_t i = 0; i < k; i++)
        fl_future_release(fs[i]);
    free(fs);
    return all;
}

int jm_dispatcher_start(const jm_dispatcher_opts_t *o, jm_dispatcher_t **out,
                        char *err, size_t errlen)
{
    jm_dispatcher_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    d->svc = o->svc;
    d->cfg = o->cfg;
    d->token = *o->token;
    d->rm_token = *o->rm_token;
    d->store = o->store;
    d->after = o->after != NULL ? fl_future_retain(o->after) : NULL;
    d->max_archived = 1000;
    d->expiration_ms = 3600000;
    fl_config_get_int(o->cfg, FL_CONFIG_JOBSTORE_MAX_CAPACITY,
                      &d->max_archived);
    fl_config_get_duration_ms(o->cfg, FL_CONFIG_JOBSTORE_EXPIRATION_TIME,
                              &d->expiration_ms);
    snprintf(d->rm_address, sizeof d->rm_address, "%s", o->rm_address);
    snprintf(d->id, sizeof d->id, "dispatcher_%u", o->n);
    static ProtobufCService *const services[] = {&d_impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = d->id,
        .services = services,
        .nservices = 1,
        .state = d,
        .on_start = d_on_start,
        .on_stop = d_on_stop,
        .fencing_token = &d->token,
    };
    int rc = fl_rpc_endpoint_create(o->svc, &eo, &d->ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(d->ep);
    if (rc != FL_OK) {
        snprintf(err, errlen, "Could not start the Dispatcher: %s",
                 fl_rpc_last_message());
        if (d->ep != NULL) {
            fl_future_release(fl_rpc_endpoint_close(d->ep));
            fl_rpc_endpoint_free(d->ep);
        }
        fl_future_release(d->after);
        free(d);
        return rc;
    }
    *out = d;
    return FL_OK;
}

const char *jm_dispatcher_address(const jm_dispatcher_t *d)
{
    return fl_rpc_endpoint_address(d->ep);
}

const fl_fencing_token_t *jm_dispatcher_token(const jm_dispatcher_t *d)
{
    return &d->token;
}

fl_future_t *jm_dispatcher_close(jm_dispatcher_t *d)
{
    return fl_rpc_endpoint_close(d->ep);
}

void jm_dispatcher_free(jm_dispatcher_t *d)
{
    if (d == NULL)
        return;
    fl_rpc_endpoint_free(d->ep);
    while (d->jobs != NULL) {
        djob_t *j = d->jobs;
        d->jobs = j->next;
        djob_free(j);
    }
    fl_future_release(d->after);
    free(d);
}
