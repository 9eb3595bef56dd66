/*
 * fling_client_test - `fling run`, `fling list` and `fling cancel` run as
 * processes against a test JobManager in this process: a "jobmanager"
 * endpoint (ProcessGateway.Describe) and a fenced Dispatcher endpoint whose
 * answers each test scripts (job states in order, a failure, an unknown
 * job id, a refused job). Each test asserts the exact stdout, stderr and
 * exit status, and what the Dispatcher was sent.
 */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fling/future.h>
#include <fling/rpc.h>

#include "cluster_types.pb-c.h"
#include "dispatcher.pb-c.h"
#include "fl_test.h"
#include "fling_spawn.h"
#include "job/job.h"
#include "job/util.h"

#define GREP FLING_SOURCE_DIR "/examples/jobs/grep.json"
#define JOB_ID "0123456789abcdef0123456789abcdef"
#define VERTEX "Source: lines -> Filter: match -> Sink: out"

/* ---- the test JobManager -------------------------------------------- */

/* A step's job value that fails the call with FL_ELIMIT, as a busy
 * JobManager would. */
#define BUSY (-2)
#define BUSY_MSG "The JobManager is busy; try again later."

/* One scripted answer of RequestJobStatus. */
typedef struct step {
    int job;     /* JobStatus.State; -1: fail with "No job <id>"; BUSY */
    int task[2]; /* ExecutionState.State of subtasks 1 and 2 */
    unsigned attempt;
    const char *tm[2];
    const char *task_failure; /* of subtask 2 */
    const char *failure;      /* the job's */
} step_t;

static struct {
    pthread_mutex_t mu;
    const step_t *steps;
    size_t n_steps, next;
    const char *refusal; /* SubmitJob fails with it when set */
    bool no_leader;      /* Describe names no Dispatcher */
    bool no_jobs;        /* ListJobs gives none */
    /* What the Dispatcher was sent (owned). */
    char *job_json, *job_dir, *status_id, *cancel_id;
    unsigned parallelism;
    unsigned status_calls;
} disp = {.mu = PTHREAD_MUTEX_INITIALIZER};

static fl_rpc_service_t *svc;
static fl_rpc_endpoint_t *jm_ep, *disp_ep;
static const fl_fencing_token_t token = {{0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
                                          0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
                                          0xdd, 0xee, 0xff, 0x01}};
static char jm_hostport[64];

/* Made before the service starts, and kept: a file descriptor the test
 * opened or closed while the service's I/O thread runs could take the
 * number of one that thread just closed, which ThreadSanitizer cannot
 * tell from a race. */
static int out_fd = -1, err_fd = -1; /* the client's stdout and stderr */
static int refused_port;             /* bound once, never listening */
static int silent_fd = -1;           /* listens, never accepts */
static int silent_port;
static char *expected_json; /* grep.json as the detached test sends it */
static char work_dir[] = "/tmp/fling_client_test_dir_XXXXXX";

static void replace(char **slot, const char *s)
{
    free(*slot);
    *slot = strdup(s);
}

static void pg_describe(Fling__Cluster__ProcessGateway_Service *s,
                        const Fling__Cluster__Ack *req,
                        Fling__Cluster__ProcessInfo_Closure closure, void *call)
{
    (void)s;
    (void)req;
    Fling__Cluster__ProcessInfo info = FLING__CLUSTER__PROCESS_INFO__INIT;
    info.role = "jobmanager";
    info.address = "";
    pthread_mutex_lock(&disp.mu);
    if (!disp.no_leader) {
        info.dispatcher_address = (char *)fl_rpc_endpoint_address(disp_ep);
        info.dispatcher_token.data = (uint8_t *)token.bytes;
        info.dispatcher_token.len = sizeof token.bytes;
    }
    pthread_mutex_unlock(&disp.mu);
    closure(&info, call);
}

static Fling__Cluster__ProcessGateway_Service pg_impl =
    FLING__CLUSTER__PROCESS_GATEWAY__INIT(pg_);

static void d_submit_job(Fling__Cluster__DispatcherGateway_Service *s,
                         const Fling__Cluster__SubmitJobRequest *req,
                         Fling__Cluster__SubmitJobReply_Closure closure,
                         void *call)
{
    (void)s;
    pthread_mutex_lock(&disp.mu);
    replace(&disp.job_json, req->job_json);
    replace(&disp.job_dir, req->job_dir);
    disp.parallelism = req->parallelism;
    const char *refusal = disp.refusal;
    pthread_mutex_unlock(&disp.mu);
    if (refusal != NULL) {
        fl_rpc_fail(call, FL_EINVAL, "%s", refusal);
        return;
    }
    Fling__Cluster__SubmitJobReply r = FLING__CLUSTER__SUBMIT_JOB_REPLY__INIT;
    r.job_id = JOB_ID;
    closure(&r, call);
}

static void d_list_jobs(Fling__Cluster__DispatcherGateway_Service *s,
                        const Fling__Cluster__Ack *req,
                        Fling__Cluster__JobList_Closure closure, void *call)
{
    (void)s;
    (void)req;
    /* Out of order on purpose: the client sorts by start time. */
    Fling__Cluster__JobSummary j[4];
    static const struct {
        const char *id, *name;
        int state;
        int64_t start;
    } jobs[4] = {
        {"cccccccccccccccccccccccccccccccc", "sequence",
         FLING__CLUSTER__JOB_STATUS__STATE__RUNNING, 1796440000000},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "grep",
         FLING__CLUSTER__JOB_STATUS__STATE__FINISHED, 1796430000000},
        {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "grep",
         FLING__CLUSTER__JOB_STATUS__STATE__RESTARTING, 1796435000000},
        {"dddddddddddddddddddddddddddddddd", "broken",
         FLING__CLUSTER__JOB_STATUS__STATE__FAILED, 1796445000000},
    };
    Fling__Cluster__JobSummary *p[4];
    for (int i = 0; i < 4; i++) {
        fling__cluster__job_summary__init(&j[i]);
        j[i].job_id = (char *)jobs[i].id;
        j[i].name = (char *)jobs[i].name;
        j[i].state = jobs[i].state;
        j[i].start_time_ms = jobs[i].start;
        p[i] = &j[i];
    }
    Fling__Cluster__JobList l = FLING__CLUSTER__JOB_LIST__INIT;
    pthread_mutex_lock(&disp.mu);
    l.n_jobs = disp.no_jobs ? 0 : 4;
    pthread_mutex_unlock(&disp.mu);
    l.jobs = p;
    closure(&l, call);
}

static void d_cancel_job(Fling__Cluster__DispatcherGateway_Service *s,
                         const Fling__Cluster__JobIdRequest *req,
                         Fling__Cluster__CancelJobReply_Closure closure,
                         void *call)
{
    (void)s;
    pthread_mutex_lock(&disp.mu);
    replace(&disp.cancel_id, req->job_id);
    pthread_mutex_unlock(&disp.mu);
    Fling__Cluster__CancelJobReply r = FLING__CLUSTER__CANCEL_JOB_REPLY__INIT;
    if (strcmp(req->job_id, JOB_ID) == 0)
        r.state = FLING__CLUSTER__JOB_STATUS__STATE__CANCELLING;
    else if (strcmp(req->job_id, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") == 0)
        r.state = FLING__CLUSTER__JOB_STATUS__STATE__FINISHED;
    else {
        fl_rpc_fail(call, FL_ENOENT, "No job %s", req->job_id);
        return;
    }
    closure(&r, call);
}

static void d_request_job_status(Fling__Cluster__DispatcherGateway_Service *s,
                                 const Fling__Cluster__JobIdRequest *req,
                                 Fling__Cluster__JobStatusReply_Closure closure,
                                 void *call)
{
    (void)s;
    pthread_mutex_lock(&disp.mu);
    replace(&disp.status_id, req->job_id);
    disp.status_calls++;
    const step_t *st =
        disp.next < disp.n_steps ? &disp.steps[disp.next++] : NULL;
    pthread_mutex_unlock(&disp.mu);
    if (st != NULL && st->job == BUSY) {
        fl_rpc_fail(call, FL_ELIMIT, BUSY_MSG);
        return;
    }
    if (st == NULL || st->job < 0) {
        fl_rpc_fail(call, FL_ENOENT, "No job %s", req->job_id);
        return;
    }
    Fling__Cluster__TaskStatus t[2], *tp[2] = {&t[0], &t[1]};
    for (unsigned i = 0; i < 2; i++) {
        fling__cluster__task_status__init(&t[i]);
        t[i].vertex_name = VERTEX;
        t[i].subtask = i;
        t[i].parallelism = 2;
        t[i].attempt = st->attempt;
        t[i].state = st->task[i];
        t[i].task_manager = (char *)(st->tm[i] ? st->tm[i] : "");
        t[i].failure =
            (char *)(i == 1 && st->task_failure ? st->task_failure : "");
    }
    Fling__Cluster__JobStatusReply r = FLING__CLUSTER__JOB_STATUS_REPLY__INIT;
    r.job_id = req->job_id;
    r.name = "grep";
    r.state = st->job;
    r.n_tasks = 2;
    r.tasks = tp;
    r.failure = (char *)(st->failure ? st->failure : "");
    closure(&r, call);
}

static Fling__Cluster__DispatcherGateway_Service d_impl =
    FLING__CLUSTER__DISPATCHER_GATEWAY__INIT(d_);

static void script(const step_t *steps, size_t n)
{
    pthread_mutex_lock(&disp.mu);
    disp.steps = steps;
    disp.n_steps = n;
    disp.next = 0;
    disp.status_calls = 0;
    disp.refusal = NULL;
    disp.no_leader = false;
    disp.no_jobs = false;
    pthread_mutex_unlock(&disp.mu);
}

static int bound_port(int fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(0, bind(fd, (struct sockaddr *)&a, sizeof a));
    socklen_t len = sizeof a;
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&a, &len));
    return ntohs(a.sin_port);
}

/* grep.json with the detached test's arguments, -p 3, as JSON. */
static char *detached_json(const char *dir)
{
    fj_job_t *job;
    char err[512], in[PATH_MAX], out[PATH_MAX];
    assert_int_equal(FL_OK, fj_job_load(GREP, &job, err, sizeof err));
    snprintf(in, sizeof in, "%s/in.txt", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    assert_int_equal(FL_OK, fj_job_set_arg(job, "input", in, err, sizeof err));
    assert_int_equal(FL_OK,
                     fj_job_set_arg(job, "pattern", "needle", err, sizeof err));
    assert_int_equal(FL_OK,
                     fj_job_set_arg(job, "output", out, err, sizeof err));
    assert_int_equal(FL_OK, fj_job_set_parallelism(job, 3));
    char *json;
    size_t len;
    assert_int_equal(FL_OK, fj_job_to_json(job, &json, &len));
    fj_job_free(job);
    return json;
}

static int setup(void **st)
{
    (void)st;
    char out[] = "/tmp/fling_client_test_out_XXXXXX",
         err[] = "/tmp/fling_client_test_err_XXXXXX";
    out_fd = mkstemp(out);
    err_fd = mkstemp(err);
    assert_true(out_fd >= 0 && err_fd >= 0);
    unlink(out);
    unlink(err);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    refused_port = bound_port(fd);
    close(fd); /* bound, never listened: the port refuses */
    silent_fd = socket(AF_INET, SOCK_STREAM, 0);
    silent_port = bound_port(silent_fd);
    assert_int_equal(0, listen(silent_fd, 4));
    assert_non_null(mkdtemp(work_dir));
    expected_json = detached_json(work_dir);

    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .port = "0"};
    assert_int_equal(FL_OK, fl_rpc_service_alloc(&so, &svc));
    snprintf(jm_hostport, sizeof jm_hostport, "127.0.0.1:%d",
             fl_rpc_service_port(svc));
    static ProtobufCService *const pgs[] = {&pg_impl.base};
    static ProtobufCService *const ds[] = {&d_impl.base};
    fl_rpc_endpoint_opts_t jo = {
        .id = "jobmanager", .services = pgs, .nservices = 1};
    fl_rpc_endpoint_opts_t dopt = {.id = "dispatcher_1",
                                   .services = ds,
                                   .nservices = 1,
                                   .fencing_token = &token};
    assert_int_equal(FL_OK, fl_rpc_endpoint_create(svc, &jo, &jm_ep));
    assert_int_equal(FL_OK, fl_rpc_endpoint_create(svc, &dopt, &disp_ep));
    assert_int_equal(FL_OK, fl_rpc_endpoint_start(jm_ep));
    assert_int_equal(FL_OK, fl_rpc_endpoint_start(disp_ep));
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    fl_rpc_service_shutdown(svc);
    fl_rpc_endpoint_free(jm_ep);
    fl_rpc_endpoint_free(disp_ep);
    fl_rpc_service_free(svc);
    free(disp.job_json);
    free(disp.job_dir);
    free(disp.status_id);
    free(disp.cancel_id);
    free(expected_json);
    rmdir(work_dir);
    close(silent_fd);
    close(out_fd);
    close(err_fd);
    return 0;
}

/* ---- running the client --------------------------------------------- */

/* Runs fling with args (NULL terminated) in the folder cwd (NULL: ours),
 * its stdout and stderr into out_fd and err_fd; the test's timeout bounds
 * it. */
static result_t run_in(const char *cwd, const char *const *args)
{
    const char *argv[64];
    fling_argv(argv, args);
    return spawn_into(argv, cwd, out_fd, err_fd);
}

static result_t run(const char *const *args)
{
    return run_in(NULL, args);
}

/* Runs `fling run` of grep.json against the test JobManager. */
static result_t run_grep(void)
{
    const char *args[] = {"run",      "-m",      jm_hostport, GREP,
                          "--input",  "/in.txt", "--pattern", "x",
                          "--output", "/out",    NULL};
    return run(args);
}

static void expect(result_t r, int status, const char *out, const char *err)
{
    assert_string_equal(out, r.out);
    assert_string_equal(err, r.err);
    assert_int_equal(status, r.status);
    free(r.out);
    free(r.err);
}

#define TASK "Task " VERTEX
#define JOB "Job grep (" JOB_ID ")"
#define SUBMITTED "Job has been submitted with JobID " JOB_ID "\n"

enum {
    J_CREATED = FLING__CLUSTER__JOB_STATUS__STATE__CREATED,
    J_RUNNING = FLING__CLUSTER__JOB_STATUS__STATE__RUNNING,
    J_FAILED = FLING__CLUSTER__JOB_STATUS__STATE__FAILED,
    J_CANCELED = FLING__CLUSTER__JOB_STATUS__STATE__CANCELED,
    J_FINISHED = FLING__CLUSTER__JOB_STATUS__STATE__FINISHED,
    J_RESTARTING = FLING__CLUSTER__JOB_STATUS__STATE__RESTARTING,
    T_SCHEDULED = FLING__CLUSTER__EXECUTION_STATE__STATE__SCHEDULED,
    T_DEPLOYING = FLING__CLUSTER__EXECUTION_STATE__STATE__DEPLOYING,
    T_RUNNING = FLING__CLUSTER__EXECUTION_STATE__STATE__RUNNING,
    T_FINISHED = FLING__CLUSTER__EXECUTION_STATE__STATE__FINISHED,
    T_CANCELED = FLING__CLUSTER__EXECUTION_STATE__STATE__CANCELED,
    T_FAILED = FLING__CLUSTER__EXECUTION_STATE__STATE__FAILED,
};

#define NSTEPS(s) (sizeof(s) / sizeof((s)[0]))

/* Both tasks RUNNING on tm1 and tm2, the job RUNNING; and what fling run
 * prints for it first. */
#define STEP_RUNNING                                                           \
    {                                                                          \
        J_RUNNING, {T_RUNNING, T_RUNNING}, 0, {"tm1", "tm2"}, 0, 0             \
    }
#define RUNNING_OUT                                                            \
    SUBMITTED TASK " (1/2) on tm1 switched to RUNNING.\n" TASK                 \
                   " (2/2) on tm2 switched to RUNNING.\n" JOB                  \
                   " switched to RUNNING.\n"

/* Scripts the Dispatcher's status answers with steps, runs `fling run` of
 * grep.json and asserts its exit status, stdout and stderr. */
static void run_steps(const step_t *steps, size_t n, int status,
                      const char *out, const char *err)
{
    script(steps, n);
    expect(run_grep(), status, out, err);
}

/* ---- fling run ---------------------------------------------------------- */

/* Each state change once, tasks before the job, until FINISHED: exit 0. */
static void run_finished(void **st)
{
    (void)st;
    static const step_t steps[] = {
        {J_CREATED, {T_SCHEDULED, T_SCHEDULED}, 0, {0}, 0, 0},
        {J_RUNNING, {T_DEPLOYING, T_DEPLOYING}, 0, {"tm1", "tm2"}, 0, 0},
        {J_RUNNING, {T_DEPLOYING, T_DEPLOYING}, 0, {"tm1", "tm2"}, 0, 0},
        {J_RUNNING, {T_RUNNING, T_DEPLOYING}, 0, {"tm1", "tm2"}, 0, 0},
        {J_RUNNING, {T_FINISHED, T_RUNNING}, 0, {"tm1", "tm2"}, 0, 0},
        {J_FINISHED, {T_FINISHED, T_FINISHED}, 0, {"tm1", "tm2"}, 0, 0},
    };
    run_steps(steps, NSTEPS(steps), 0,
              SUBMITTED TASK " (1/2) switched to SCHEDULED.\n" TASK
                             " (2/2) switched to SCHEDULED.\n" JOB
                             " switched to CREATED.\n" TASK
                             " (1/2) on tm1 switched to DEPLOYING.\n" TASK
                             " (2/2) on tm2 switched to DEPLOYING.\n" JOB
                             " switched to RUNNING.\n" TASK
                             " (1/2) on tm1 switched to RUNNING.\n" TASK
                             " (1/2) on tm1 switched to FINISHED.\n" TASK
                             " (2/2) on tm2 switched to RUNNING.\n" TASK
                             " (2/2) on tm2 switched to FINISHED.\n" JOB
                             " switched to FINISHED.\n"
                             "Job with JobID " JOB_ID " has finished.\n",
              "");
    pthread_mutex_lock(&disp.mu);
    assert_int_equal(6, disp.status_calls);
    assert_string_equal(JOB_ID, disp.status_id);
    pthread_mutex_unlock(&disp.mu);
}

/* A task fails, the job restarts (attempt 2) and then fails: the failure
 * message on stderr, exit 1. */
static void run_failed(void **st)
{
    (void)st;
    static const step_t steps[] = {
        STEP_RUNNING,
        {J_RESTARTING,
         {T_CANCELED, T_FAILED},
         0,
         {"tm1", "tm2"},
         "Cannot open /in.txt: No such file or directory",
         0},
        {J_RUNNING,
         {T_RUNNING, T_FAILED},
         1,
         {"tm1", "tm1"},
         "Cannot open /in.txt: No such file or directory",
         0},
        {J_FAILED,
         {T_CANCELED, T_FAILED},
         1,
         {"tm1", "tm1"},
         "Cannot open /in.txt: No such file or directory",
         "Task " VERTEX " (2/2) failed: Cannot open /in.txt: No such file "
         "or directory"},
    };
    const char *why = ": Cannot open /in.txt: No such file or directory.\n";
    char out[2048];
    snprintf(out, sizeof out,
             RUNNING_OUT TASK
             " (1/2) on tm1 switched to CANCELED.\n" TASK
             " (2/2) on tm2 switched to FAILED%s" JOB
             " switched to RESTARTING.\n" TASK
             " (1/2) attempt 2 on tm1 switched to RUNNING.\n" TASK
             " (2/2) attempt 2 on tm1 switched to FAILED%s" JOB
             " switched to RUNNING.\n" TASK
             " (1/2) attempt 2 on tm1 switched to CANCELED.\n" JOB
             " switched to FAILED.\n",
             why, why);
    run_steps(
        steps, NSTEPS(steps), 1, out,
        "fling run: job " JOB_ID " failed: Task " VERTEX
        " (2/2) failed: Cannot open /in.txt: No such file or directory\n");
}

/* A canceled job: exit 1. */
static void run_canceled(void **st)
{
    (void)st;
    static const step_t steps[] = {
        {J_CANCELED, {T_CANCELED, T_CANCELED}, 0, {"tm1", "tm2"}, 0, 0},
    };
    run_steps(steps, NSTEPS(steps), 1,
              SUBMITTED TASK " (1/2) on tm1 switched to CANCELED.\n" TASK
                             " (2/2) on tm2 switched to CANCELED.\n" JOB
                             " switched to CANCELED.\n",
              "fling run: job " JOB_ID " was canceled.\n");
}

/* The Dispatcher forgets the job (a JobManager restarted): exit 1. */
static void run_unknown_job(void **st)
{
    (void)st;
    static const step_t steps[] = {
        STEP_RUNNING,
        {-1, {0, 0}, 0, {0}, 0, 0},
    };
    run_steps(steps, NSTEPS(steps), 1, RUNNING_OUT,
              "fling run: No job " JOB_ID "\n");
}

/* A status request that fails once (the JobManager busy) is made again:
 * the job is followed to its end, nothing on stderr, exit 0. */
static void run_status_fails_once(void **st)
{
    (void)st;
    static const step_t steps[] = {
        STEP_RUNNING,
        {BUSY, {0, 0}, 0, {0}, 0, 0},
        {J_FINISHED, {T_FINISHED, T_FINISHED}, 0, {"tm1", "tm2"}, 0, 0},
    };
    run_steps(steps, NSTEPS(steps), 0,
              RUNNING_OUT TASK " (1/2) on tm1 switched to FINISHED.\n" TASK
                               " (2/2) on tm2 switched to FINISHED.\n" JOB
                               " switched to FINISHED.\n"
                               "Job with JobID " JOB_ID " has finished.\n",
              "");
    pthread_mutex_lock(&disp.mu);
    assert_int_equal(3, disp.status_calls);
    pthread_mutex_unlock(&disp.mu);
}

/* Five failed status requests in a row: the last failure, exit 1. */
static void run_status_keeps_failing(void **st)
{
    (void)st;
    static const step_t steps[] = {
        STEP_RUNNING,
        {BUSY, {0, 0}, 0, {0}, 0, 0},
        {BUSY, {0, 0}, 0, {0}, 0, 0},
        {BUSY, {0, 0}, 0, {0}, 0, 0},
        {BUSY, {0, 0}, 0, {0}, 0, 0},
        {BUSY, {0, 0}, 0, {0}, 0, 0},
        {J_FINISHED, {T_FINISHED, T_FINISHED}, 0, {"tm1", "tm2"}, 0, 0},
    };
    run_steps(steps, NSTEPS(steps), 1, RUNNING_OUT,
              "fling run: asking for the status of job " JOB_ID
              " failed: " BUSY_MSG "\n");
    pthread_mutex_lock(&disp.mu);
    assert_int_equal(6, disp.status_calls);
    pthread_mutex_unlock(&disp.mu);
}

/* The Dispatcher refuses the job: its message, nothing on stdout. */
static void run_refused(void **st)
{
    (void)st;
    script(NULL, 0);
    pthread_mutex_lock(&disp.mu);
    disp.refusal = "Job 'grep' needs 4 slots; the cluster has 0.";
    pthread_mutex_unlock(&disp.mu);
    expect(run_grep(), 1, "",
           "fling run: Job 'grep' needs 4 slots; the cluster has 0.\n");
}

/* -d returns after the submission; what was sent: the job with its
 * arguments (relative --input and --output made absolute against the
 * client's folder), -p, and the job file's folder. */
static void run_detached_sends_job(void **st)
{
    (void)st;
    script(NULL, 0);
    const char *args[] = {"run",    "-d",        "-m",     jm_hostport,
                          "-p",     "3",         GREP,     "--input",
                          "in.txt", "--pattern", "needle", "--output=out",
                          NULL};
    expect(run_in(work_dir, args), 0, SUBMITTED, "");
    char *jobs_dir = realpath(FLING_SOURCE_DIR "/examples/jobs", NULL);
    assert_non_null(jobs_dir);
    pthread_mutex_lock(&disp.mu);
    assert_string_equal(expected_json, disp.job_json);
    assert_string_equal(jobs_dir, disp.job_dir);
    assert_int_equal(3, disp.parallelism);
    assert_int_equal(0, disp.status_calls);
    pthread_mutex_unlock(&disp.mu);
    free(jobs_dir);
}

/* A bad job never reaches the JobManager: the error fling plan gives. */
static void run_bad_job_is_local(void **st)
{
    (void)st;
    script(NULL, 0);
    const char *args[] = {"run",     "-m",  "127.0.0.1:1", GREP,
                          "--input", "/in", NULL};
    expect(run(args), 1, "",
           "fling run: Job 'grep' needs a value for parameter 'pattern', "
           "used by operator 'match': give it with --pattern VALUE.\n");
}

/* ---- fling list, fling cancel ---------------------------------------- */

/* The line of one job, its start time in local time (TZ=UTC here). */
static void job_line(char *buf, size_t cap, int64_t ms, const char *id,
                     const char *name, const char *state)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char when[32];
    assert_non_null(localtime_r(&t, &tm));
    strftime(when, sizeof when, "%d.%m.%Y %H:%M:%S", &tm);
    snprintf(buf, cap, "%s : %s : %s (%s)\n", when, id, name, state);
}

static void list(void **st)
{
    (void)st;
    script(NULL, 0);
    char l[4][128], out[2048];
    job_line(l[0], sizeof l[0], 1796435000000,
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "grep", "RESTARTING");
    job_line(l[1], sizeof l[1], 1796440000000,
             "cccccccccccccccccccccccccccccccc", "sequence", "RUNNING");
    job_line(l[2], sizeof l[2], 1796430000000,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "grep", "FINISHED");
    job_line(l[3], sizeof l[3], 1796445000000,
             "dddddddddddddddddddddddddddddddd", "broken", "FAILED");
    assert_string_equal(
        "05.12.2026 01:43:20 : bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb "
        ": grep (RESTARTING)\n",
        l[0]);
    snprintf(out, sizeof out,
             "------------------ Running/Restarting Jobs -------------------\n"
             "%s%s"
             "--------------------------------------------------------------\n"
             "---------------------- Terminated Jobs -----------------------\n"
             "%s%s"
             "--------------------------------------------------------------\n",
             l[0], l[1], l[2], l[3]);
    const char *args[] = {"list", "-m", jm_hostport, NULL};
    expect(run(args), 0, out, "");

    pthread_mutex_lock(&disp.mu);
    disp.no_leader = true;
    pthread_mutex_unlock(&disp.mu);
    const char *none[] = {"list", "-D",        "pekko.ask.timeout=300 ms",
                          "-m",   jm_hostport, NULL};
    char err[512];
    snprintf(err, sizeof err,
             "fling list: cannot reach the JobManager at %s: no Dispatcher "
             "leads there yet. Check that it runs, and give its address with "
             "-m HOST:PORT.\n",
             jm_hostport);
    expect(run(none), 1, "", err);
}

static void cancel(void **st)
{
    (void)st;
    script(NULL, 0);
    const char *ok[] = {"cancel", "-m", jm_hostport, JOB_ID, NULL};
    expect(run(ok), 0,
           "Cancelling job " JOB_ID ".\nCancelled job " JOB_ID ".\n", "");
    const char *unknown[] = {"cancel", "-m", jm_hostport,
                             "ffffffffffffffffffffffffffffffff", NULL};
    expect(run(unknown), 1,
           "Cancelling job ffffffffffffffffffffffffffffffff.\n",
           "fling cancel: No job ffffffffffffffffffffffffffffffff\n");
    const char *ended[] = {"cancel", "-m", jm_hostport,
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL};
    expect(run(ended), 1, "Cancelling job aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.\n",
           "fling cancel: job aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa has already "
           "ended: FINISHED.\n");
    pthread_mutex_lock(&disp.mu);
    assert_string_equal("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", disp.cancel_id);
    pthread_mutex_unlock(&disp.mu);
}

/* ---- a JobManager that cannot be reached ------------------------------ */

/* A port nobody listens on: refused at once. */
static void unreachable_refused(void **st)
{
    (void)st;
    char hp[64], err[512];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", refused_port);
    snprintf(err, sizeof err,
             "fling run: cannot reach the JobManager at %s: Could not "
             "connect to rpc endpoint under address fling.tcp://%s/"
             "jobmanager: connection refused. Check that it runs, and give "
             "its address with -m HOST:PORT.\n",
             hp, hp);
    const char *args[] = {"run",      "-m",      hp,          GREP,
                          "--input",  "/in.txt", "--pattern", "x",
                          "--output", "/out",    NULL};
    expect(run(args), 1, "", err);
}

/* A port that accepts and never answers: given up after pekko.ask.timeout.
 */
static void unreachable_silent(void **st)
{
    (void)st;
    char hp[64], err[512];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", silent_port);
    snprintf(err, sizeof err,
             "fling list: cannot reach the JobManager at %s: Could not "
             "connect to rpc endpoint under address fling.tcp://%s/"
             "jobmanager: timed out after 300 ms (no handshake yet). Check "
             "that it runs, and give its address with -m HOST:PORT.\n",
             hp, hp);
    const char *args[] = {"list", "-m", hp, "-D", "pekko.ask.timeout=300 ms",
                          NULL};
    expect(run(args), 1, "", err);
}

/* Where the JobManager is: -m checked, the configuration's by default. */
static void where(void **st)
{
    (void)st;
    script(NULL, 0);
    const char *bad[] = {"list", "-m", "localhost", NULL};
    expect(run(bad), 2, "",
           "fling list: -m needs HOST:PORT with a port from 1 to 65535, not "
           "'localhost'.\n"
           "usage: fling list [-m HOST:PORT]\n"
           "  -m HOST:PORT the JobManager (default: jobmanager.rpc.address:"
           "jobmanager.rpc.port)\n"
           "  -c CONFIG    the cluster's configuration file\n"
           "  -D KEY=VALUE a configuration value over the file's\n");
    char port[64];
    snprintf(port, sizeof port, "jobmanager.rpc.port=%d",
             fl_rpc_service_port(svc));
    pthread_mutex_lock(&disp.mu);
    disp.no_jobs = true;
    pthread_mutex_unlock(&disp.mu);
    const char *cfg[] = {"list", "-D", "jobmanager.rpc.address=127.0.0.1",
                         "-D",   port, NULL};
    expect(run(cfg), 0, "No running jobs.\nNo terminated jobs.\n", "");
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        FL_TEST(run_finished),
        FL_TEST(run_failed),
        FL_TEST(run_canceled),
        FL_TEST(run_unknown_job),
        FL_TEST(run_status_fails_once),
        FL_TEST(run_status_keeps_failing),
        FL_TEST(run_refused),
        FL_TEST(run_detached_sends_job),
        FL_TEST(run_bad_job_is_local),
        FL_TEST(list),
        FL_TEST(cancel),
        FL_TEST(unreachable_refused),
        FL_TEST(unreachable_silent),
        FL_TEST(where),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
