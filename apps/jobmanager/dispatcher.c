/*
 * dispatcher.c - the Dispatcher endpoint (dispatcher.h).
 *
 * The job table lives on the endpoint's main thread; each job's record is
 * shared with its JobMaster under the record's mutex.
 */
#include "dispatcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher.pb-c.h"
#include "jobmaster.h"

#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x

typedef struct djob {
    struct djob *next;
    jm_dispatcher_t *d;
    jm_job_rec_t rec;
    jm_jobmaster_t *jm;
    fl_future_t *term; /* the JobMaster's termination, once closed */
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

/* ---- a job's end ----------------------------------------------------------
 */

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
    if (j->term == NULL)
        j->term = jm_jobmaster_close(j->jm);
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

/* Builds the job's graphs from its JSON; FL_OK or FL_EINVAL/FL_ENOTSUP/
 * FL_ENOMEM with why in err. */
static int build(const Fling__Cluster__SubmitJobRequest *req,
                 jm_jobmaster_opts_t *o, char *err, size_t errlen)
{
    int rc = fj_job_parse(req->job_json, strlen(req->job_json),
                          "the submitted job", &o->job, err, errlen);
    if (rc != FL_OK)
        return rc;
    if (req->parallelism > 0) {
        fj_job_set_parallelism(o->job, (int)req->parallelism);
        rc = fj_job_check(o->job, err, errlen);
        if (rc != FL_OK)
            return rc;
    }
    rc = fj_stream_graph_build(o->job, &o->sg, err, errlen);
    if (rc != FL_OK)
        return rc;
    if (fj_job_graph_build(o->sg, NULL, &o->jg) != FL_OK) {
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

static void d_submit_job(Fling__Cluster__DispatcherGateway_Service *svc,
                         const Fling__Cluster__SubmitJobRequest *req,
                         Fling__Cluster__SubmitJobReply_Closure closure,
                         void *call)
{
    (void)svc;
    jm_dispatcher_t *d = fl_rpc_call_state(call);
    jm_jobmaster_opts_t o = {0};
    char why[1024];
    int rc = build(req, &o, why, sizeof why);
    if (rc != FL_OK) {
        fl_log(FL_LOG_WARN, "Job submission refused: %s", why);
        free_graphs(&o);
        fl_rpc_fail(call, rc == FL_ENOMEM ? rc : FL_EINVAL,
                    "Job submission refused: %s", why);
        return;
    }
    djob_t *j = calloc(1, sizeof *j);
    if (j != NULL) {
        j->rec.name = dup(o.sg->job_name);
        j->rec.ntasks = o.eg->n_vertices;
        j->rec.tasks =
            calloc(j->rec.ntasks ? j->rec.ntasks : 1, sizeof *j->rec.tasks);
    }
    bool ok = j != NULL && j->rec.name != NULL && j->rec.tasks != NULL;
    for (size_t i = 0; ok && i < o.eg->n_vertices; i++) {
        const fj_exec_vertex_t *ev = &o.eg->vertices[i];
        jm_task_rec_t *t = &j->rec.tasks[i];
        t->name = dup(ev->name);
        ok = t->name != NULL;
        snprintf(t->vertex_name, sizeof t->vertex_name, "%s",
                 o.jg->vertices[ev->job_vertex].name);
        t->vertex_id = (uint32_t)ev->job_vertex;
        t->subtask = (uint32_t)ev->subtask;
        t->parallelism = (uint32_t)ev->parallelism;
    }
    if (!ok) {
        if (j != NULL) {
            pthread_mutex_init(&j->rec.mu, NULL);
            djob_free(j);
        }
        free_graphs(&o);
        fl_rpc_fail(call, FL_ENOMEM, "Dispatcher out of memory taking a job");
        return;
    }
    pthread_mutex_init(&j->rec.mu, NULL);
    j->d = d;
    fj_id_format(&o.jg->job_id, j->rec.job_id);
    j->rec.state = JS(CREATED);
    j->rec.start_ms = jm_now_ms();
    fl_log(FL_LOG_INFO, "Received job %s (%s) with %zu tasks", j->rec.name,
           j->rec.job_id, j->rec.ntasks);
    o.svc = d->svc;
    o.cfg = d->cfg;
    o.rec = &j->rec;
    o.job_json = req->job_json;
    o.parallelism = req->parallelism;
    o.job_dir = req->job_dir;
    o.rm_address = d->rm_address;
    o.rm_token = d->rm_token;
    o.on_end = on_end;
    o.arg = j;
    rc = jm_jobmaster_start(&o, &j->jm, why, sizeof why);
    if (rc != FL_OK) {
        djob_free(j);
        fl_rpc_fail(call, rc, "%s", why);
        return;
    }
    j->next = d->jobs;
    d->jobs = j;
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
    djob_t *j = job_find(d, req->job_id);
    if (j == NULL) {
        fl_rpc_fail(call, FL_ENOENT, "No job %s", req->job_id);
        return;
    }
    pthread_mutex_lock(&j->rec.mu);
    int s = j->rec.state;
    pthread_mutex_unlock(&j->rec.mu);
    bool terminal = s == JS(FINISHED) || s == JS(FAILED) || s == JS(CANCELED);
    if (!terminal) {
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

static int d_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    jm_dispatcher_t *d = state;
    char hex[33];
    fl_log(FL_LOG_DEBUG, "Dispatcher %s started with leader token %s",
           fl_rpc_endpoint_address(ep), fl_fencing_token_hex(&d->token, hex));
    return FL_OK;
}

/* Closes the JobMasters still running; done once they all terminated. */
static fl_future_t *d_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    jm_dispatcher_t *d = state;
    size_t n = 0;
    for (djob_t *j = d->jobs; j != NULL; j = j->next)
        n++;
    fl_future_t **fs = calloc(n ? n : 1, sizeof *fs);
    if (fs == NULL)
        return NULL;
    size_t k = 0;
    for (djob_t *j = d->jobs; j != NULL; j = j->next) {
        if (j->term == NULL)
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

int jm_dispatcher_start(fl_rpc_service_t *svc, const fl_config_t *cfg,
                        const fl_fencing_token_t *token, unsigned n,
                        const char *rm_address,
                        const fl_fencing_token_t *rm_token,
                        jm_dispatcher_t **out, char *err, size_t errlen)
{
    jm_dispatcher_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    d->svc = svc;
    d->cfg = cfg;
    d->token = *token;
    d->rm_token = *rm_token;
    snprintf(d->rm_address, sizeof d->rm_address, "%s", rm_address);
    snprintf(d->id, sizeof d->id, "dispatcher_%u", n);
    static ProtobufCService *const services[] = {&d_impl.base};
    fl_rpc_endpoint_opts_t o = {
        .id = d->id,
        .services = services,
        .nservices = 1,
        .state = d,
        .on_start = d_on_start,
        .on_stop = d_on_stop,
        .fencing_token = &d->token,
    };
    int rc = fl_rpc_endpoint_create(svc, &o, &d->ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(d->ep);
    if (rc != FL_OK) {
        snprintf(err, errlen, "Could not start the Dispatcher: %s",
                 fl_rpc_last_message());
        if (d->ep != NULL) {
            fl_future_release(fl_rpc_endpoint_close(d->ep));
            fl_rpc_endpoint_free(d->ep);
        }
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
    free(d);
}
