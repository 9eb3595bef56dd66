/*
 * cluster_reconcile_test.c - the JobMaster against the deployment reports
 * of a TaskExecutor this test plays (fake_te.h; issue 17, contract section
 * 4 step 16): a deployed attempt missing from the reports fails, one the
 * reports show unknown is cancelled, one just deployed is pending; a stale
 * attempt's state update is refused; the ResourceManager and a JobMaster
 * each notice the other's silent heartbeats; and a real TaskManager's
 * reports to a JobMaster the test plays (fake_jm.h). Synchronised on the
 * fakes' calls and the programs' logs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../task/task_fixture.h"
#include "fake_jm.h"
#include "fake_te.h"
#include "job_client.h"

#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x
#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x

/* The job: one task that would count to 10^12 (the fake runs nothing). */
static const char job_text[] =
    "{\"name\": \"long\", \"parallelism\": 1, \"operators\": ["
    " {\"id\": \"n\", \"type\": \"source.sequence\","
    "  \"params\": {\"from\": \"1\", \"to\": \"1000000000000\"}},"
    " {\"id\": \"out\", \"type\": \"sink.text\","
    "  \"params\": {\"path\": \"/nonexistent/out\"}}]}";
#define TASK "Source: n -> Sink: out (1/1)"

typedef struct rx {
    cf_proc_t *jm;
    int port;
    fake_te_t te;
    jc_t c;
    char *dir;
    char id[1024];
} rx_t;

/* Starts a JobManager (extra: one more -D option, or NULL) and the fake
 * with mode, submits the job and, unless hold, lets the fake take the
 * slot (the first SubmitTask came). */
static void rx_start(rx_t *x, const char *extra, report_mode_t mode, bool hold)
{
    static cf_proc_t jm;
    x->jm = &jm;
    x->port = start_jm_opt(&jm, "0", extra);
    ft_start(&x->te, &jm, x->port, mode);
    x->te.hold_submit = hold;
    x->dir = scratch();
    char *job = path_in(x->dir, "long.json");
    write_file(job, job_text, strlen(job_text));
    jc_open(&x->c, x->port);
    const char *args[] = {NULL};
    assert_fl_ok(jc_submit(&x->c, job, args, 0, "", x->id, sizeof x->id));
    free(job);
    ft_take_slot(&x->te);
    pthread_mutex_lock(&x->te.mu);
    assert_string_equal(TASK, x->te.names[0]);
    assert_int_equal(0, x->te.attempts[0]);
    pthread_mutex_unlock(&x->te.mu);
    cf_wait_stderr(&jm, "Deploying " TASK " (attempt #0) to TaskManager fake",
                   1);
}

static void rx_end(rx_t *x)
{
    jc_close(&x->c);
    ft_end(&x->te);
    cf_stop(x->jm, SIGTERM, 0);
    rm_scratch(x->dir);
}

/* Asserts the job's state, restarts and failure, and its task's attempt,
 * state and failure. */
static void assert_job(rx_t *x, int state, uint32_t restarts,
                       const char *failure, uint32_t attempt, int task_state,
                       const char *task_failure)
{
    Fling__Cluster__JobStatusReply *s = jc_status(&x->c, x->id);
    assert_int_equal(state, s->state);
    assert_int_equal(restarts, s->restarts);
    assert_string_equal(failure, s->failure);
    assert_int_equal(1, s->n_tasks);
    assert_int_equal(attempt, s->tasks[0]->attempt);
    assert_int_equal(task_state, s->tasks[0]->state);
    assert_string_equal(FT_ID, s->tasks[0]->task_manager);
    assert_string_equal(task_failure, s->tasks[0]->failure);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

/* Expects attempt 0 FAILED for why and the job restarted once, in
 * 1000 ms; returns once attempt 1's SubmitTask came to the fake. */
static void expect_restart(rx_t *x, const char *why)
{
    cf_expect_app(x->jm,
                  TASK " (attempt #0) switched from DEPLOYING to FAILED.");
    cf_expect_app(x->jm,
                  "Job long (%s) switched from state RUNNING to "
                  "RESTARTING.",
                  x->id);
    cf_expect_app(x->jm,
                  "Restarting job long (%s) in 1000 ms (restart 1 of 1): %s",
                  x->id, why);
    cf_expect_app(x->jm, TASK " (attempt #1) switched from FAILED to CREATED.");
    fl_test_latch_await(x->te.submit[1]);
}

#define MISSING(k)                                                             \
    "Task " TASK " attempt " #k " is no longer on TaskManager fake: not in "   \
    "its deployment report"

/* (a) The reports lack the deployed attempt: it fails and the job
 * restarts (restart-strategy.fixed-delay.attempts 1); the next attempt
 * is missing too and the job fails with that message. */
static void test_missing_attempt_fails(void **state)
{
    (void)state;
    static rx_t x;
    rx_start(&x, NULL, REPORT_NONE, false);
    cf_expect_app(x.jm, MISSING(0));
    expect_restart(&x, MISSING(0));
    cf_wait_stderr(x.jm, "Deploying " TASK " (attempt #1) to TaskManager fake",
                   1);
    cf_expect_app(x.jm, MISSING(1));
    cf_expect_app(x.jm,
                  TASK " (attempt #1) switched from DEPLOYING to FAILED.");
    cf_expect_app(x.jm, "Job long (%s) failed: " MISSING(1), x.id);
    cf_expect_app(x.jm,
                  "Job long (%s) switched from state RUNNING to "
                  "FAILING.",
                  x.id);
    cf_expect_app(x.jm,
                  "Job long (%s) switched from state FAILING to "
                  "FAILED.",
                  x.id);
    assert_job(&x, JS(FAILED), 1, MISSING(1), 1, XS(FAILED), MISSING(1));
    rx_end(&x);
}

/* An attempt is pending while its SubmitTask is not acknowledged, and
 * while the reports do not count that submission: reports without it
 * fail nothing. Counted, it is missing. */
static void test_pending_attempt_is_not_missing(void **state)
{
    (void)state;
    static rx_t x;
    rx_start(&x, NULL, REPORT_NONE, true);
    ft_await_reports(&x.te, 10);
    assert_job(&x, JS(RUNNING), 0, "", 0, XS(DEPLOYING), "");
    pthread_mutex_lock(&x.te.mu);
    x.te.lag = true;
    pthread_mutex_unlock(&x.te.mu);
    ft_release(&x.te);
    ft_await_reports(&x.te, 10);
    assert_job(&x, JS(RUNNING), 0, "", 0, XS(DEPLOYING), "");
    pthread_mutex_lock(&x.te.mu);
    x.te.lag = false;
    pthread_mutex_unlock(&x.te.mu);
    cf_expect_app(x.jm, MISSING(0));
    cf_expect_app(x.jm,
                  TASK " (attempt #0) switched from DEPLOYING to FAILED.");
    rx_end(&x);
}

/* Asserts that the fake got n CancelTask calls, each for attempt 7. */
static void assert_cancels(rx_t *x, size_t n)
{
    pthread_mutex_lock(&x->te.mu);
    assert_int_equal(n, x->te.ncancels);
    for (size_t i = 0; i < x->te.ncancels; i++)
        assert_int_equal(7, x->te.cancelled[i]);
    pthread_mutex_unlock(&x->te.mu);
}

/* (b) The reports show attempt 7, which the JobMaster never deployed: it
 * asks the TaskExecutor to cancel it, and only it, once with one log
 * line, then again after 8 more reports that still list it (a back-off,
 * not a cancel per report); the job runs on. */
static void test_unknown_attempt_is_cancelled(void **state)
{
    (void)state;
    static rx_t x;
    rx_start(&x, NULL, REPORT_EXTRA, false);
    fl_test_latch_await(x.te.cancel);
    cf_expect_app(x.jm,
                  "TaskManager fake runs attempt 7 of task 0, which the "
                  "JobMaster of job %s did not deploy there; cancelling it",
                  x.id);
    /* The first cancel answered report R; R+1 .. R+7 send none. */
    ft_await_reports(&x.te, 3);
    assert_cancels(&x, 1);
    /* R+8 sends the second (a CancelTask precedes the next request on
     * the same connection); the third waits for R+24. */
    ft_await_reports(&x.te, 8);
    assert_cancels(&x, 2);
    assert_job(&x, JS(RUNNING), 0, "", 0, XS(DEPLOYING), "");
    rx_end(&x);
}

/* A report of more than 1024 attempts (1025 here, each attempt 7) is
 * ignored whole, with a warning at most once a minute: nothing is
 * cancelled, nothing fails. */
static void test_huge_report_is_ignored(void **state)
{
    (void)state;
    static rx_t x;
    rx_start(&x, NULL, REPORT_HUGE, false);
    cf_expect_app(x.jm,
                  "Deployment report of TaskManager fake ignored: it lists "
                  "1025 attempts, more than 1024");
    ft_await_reports(&x.te, 10);
    assert_cancels(&x, 0);
    assert_job(&x, JS(RUNNING), 0, "", 0, XS(DEPLOYING), "");
    rx_end(&x);
}

/* A payload that is no DeploymentReport is ignored, with a warning, and
 * fails nothing. */
static void test_garbled_report_is_ignored(void **state)
{
    (void)state;
    static rx_t x;
    rx_start(&x, NULL, REPORT_GARBAGE, false);
    cf_expect_app(x.jm, "Deployment report of TaskManager fake ignored: its "
                        "heartbeat payload is not a DeploymentReport; run "
                        "the same version of fling on every process of the "
                        "cluster");
    ft_await_reports(&x.te, 5);
    assert_job(&x, JS(RUNNING), 0, "", 0, XS(DEPLOYING), "");
    rx_end(&x);
}

/* Sends attempt's state s (message m) of vertex 0 to the JobMaster as the
 * fake; returns the code, the refusal in msg. */
static int update(rx_t *x, uint32_t attempt, int s, const char *m, char *msg,
                  size_t cap)
{
    Fling__Cluster__TaskExecutionState u =
        FLING__CLUSTER__TASK_EXECUTION_STATE__INIT;
    u.job_id = x->te.job_id;
    u.vertex = 0;
    u.attempt = attempt;
    u.state = (Fling__Cluster__ExecutionState__State)s;
    u.message = (char *)m;
    u.resource_id = FT_ID;
    return fl_test_call_code(
        x->te.jm,
        (unsigned)fl_rpc_method_index(
            &fling__cluster__job_master_gateway__descriptor,
            "UpdateTaskExecutionState"),
        &u.base, 5000, msg, cap);
}

/* (d) After a restart, attempt 0's late FINISHED is refused and changes
 * nothing: attempt 1 is still deploying. */
static void test_stale_attempt_update_is_refused(void **state)
{
    (void)state;
    static rx_t x;
    rx_start(&x, NULL, REPORT_HONEST, false);
    /* Its FAILED sent, attempt 0 is reported ending: nothing to cancel. */
    pthread_mutex_lock(&x.te.mu);
    x.te.ending = true;
    pthread_mutex_unlock(&x.te.mu);
    char msg[1024];
    assert_fl_ok(
        update(&x, 0, XS(FAILED), "the test fails it", msg, sizeof msg));
    expect_restart(&x, "the test fails it");
    pthread_mutex_lock(&x.te.mu);
    x.te.ending = false;
    assert_int_equal(0, x.te.ncancels);
    pthread_mutex_unlock(&x.te.mu);
    cf_wait_stderr(x.jm, "Deploying " TASK " (attempt #1) to TaskManager fake",
                   1);
    assert_int_equal(FL_ESTATE,
                     update(&x, 0, XS(FINISHED), "", msg, sizeof msg));
    char want[1600];
    snprintf(want, sizeof want,
             "State update FINISHED of task 0 attempt #0 of job %s from "
             "TaskManager fake refused: not a current attempt of this "
             "JobMaster's job",
             x.id);
    assert_string_equal(want, msg);
    ft_await_reports(&x.te, 5);
    assert_job(&x, JS(RUNNING), 1, "", 1, XS(DEPLOYING), "");
    rx_end(&x);
}

/* A task asked to cancel (the job is cancelled) ends FAILED instead of
 * CANCELED: the job still ends, CANCELED. */
static void test_task_failing_while_cancelled_ends_the_job(void **state)
{
    (void)state;
    static rx_t x;
    rx_start(&x, NULL, REPORT_HONEST, false);
    assert_int_equal(JS(CANCELLING), jc_cancel(&x.c, x.id));
    fl_test_latch_await(x.te.cancel);
    char msg[1024];
    assert_fl_ok(update(&x, 0, XS(FAILED), "its output could not be renamed",
                        msg, sizeof msg));
    cf_wait_stderr(x.jm, "Cancelling job long", 1);
    cf_expect_app(x.jm,
                  "Job long (%s) switched from state RUNNING to "
                  "CANCELLING.",
                  x.id);
    cf_expect_app(x.jm, TASK " (attempt #0) switched from DEPLOYING to "
                             "CANCELING.");
    cf_expect_app(x.jm, TASK " (attempt #0) switched from CANCELING to "
                             "FAILED.");
    cf_expect_app(x.jm,
                  "Job long (%s) switched from state CANCELLING to "
                  "CANCELED.",
                  x.id);
    assert_job(&x, JS(CANCELED), 0, "", 0, XS(FAILED),
               "its output could not be renamed");
    rx_end(&x);
}

/* ---- (c) the heartbeats between the ResourceManager and a JobMaster ---- */

/* Asserts that line is "<prefix>Heartbeat of '<target>' timed out: last
 * heard from <n> ms ago (at <time>), the timeout is 3000 ms; ...<suffix>",
 * or, when the target was dropped before its first heartbeat came, "...
 * timed out: never heard from in the <n> ms since it was monitored, ...",
 * with n at least the timeout. */
static void assert_timed_out(const char *line, const char *prefix,
                             const char *target, const char *suffix)
{
    size_t np = strlen(prefix);
    assert_true(strncmp(line, prefix, np) == 0);
    char head[600], mid[700];
    snprintf(head, sizeof head, "Heartbeat of '%s' timed out: ", target);
    assert_true(strncmp(line + np, head, strlen(head)) == 0);
    const char *rest = line + np + strlen(head);
    long long ms = 0;
    char at[64] = "";
    if (sscanf(rest, "last heard from %lld ms ago (at %63[^)])", &ms, at) == 2)
        snprintf(mid, sizeof mid, "last heard from %lld ms ago (at %s)", ms,
                 at);
    else {
        assert_int_equal(1,
                         sscanf(rest, "never heard from in the %lld ms", &ms));
        snprintf(mid, sizeof mid,
                 "never heard from in the %lld ms since it was monitored", ms);
    }
    assert_true(ms >= 3000);
    char want[2048];
    snprintf(want, sizeof want,
             "%s%s%s, the timeout is 3000 ms; check that it is alive and "
             "reachable, or raise heartbeat.timeout%s",
             prefix, head, mid, suffix);
    assert_string_equal(want, line);
}

/* The JobMaster of a job waiting for slots: the ResourceManager drops it
 * (DisconnectJobManager, as the test asks) and stops heartbeating it; the
 * JobMaster says it lost its ResourceManager, registers again and the job
 * waits on. */
static void test_jobmaster_notices_silent_resourcemanager(void **state)
{
    (void)state;
    static cf_proc_t jm;
    static fake_te_t te;
    int port = start_jm(&jm, "0");
    ft_start(&te, &jm, port, REPORT_HONEST);
    char *dir = scratch();
    char *job = path_in(dir, "long.json");
    write_file(job, job_text, strlen(job_text));
    jc_t c;
    jc_open(&c, port);
    const char *args[] = {NULL};
    char id[1024];
    assert_fl_ok(jc_submit(&c, job, args, 0, "", id, sizeof id));
    /* Its requirements declared (a slot is requested for them), the
     * JobMaster is dropped: no call of its registration is left. */
    fl_test_latch_await(te.requested);
    cf_wait_stderr(&jm, "Requested slot 0 of TaskManager fake for job ", 1);
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    char rm[128];
    snprintf(rm, sizeof rm, "fling.tcp://127.0.0.1:%d/resourcemanager_1", port);
    fl_fencing_token_t zero = fl_test_token(0);
    fl_rpc_gateway_t *gw = fl_test_connect(
        svc, rm, &fling__cluster__resource_manager_gateway__descriptor, &zero);
    Fling__Cluster__DisconnectJobManagerRequest d =
        FLING__CLUSTER__DISCONNECT_JOB_MANAGER_REQUEST__INIT;
    d.job_id = id;
    d.state = FLING__CLUSTER__JOB_STATUS__STATE__RUNNING;
    d.cause = "the test drops it";
    protobuf_c_message_free_unpacked(
        ft_call(gw, &fling__cluster__resource_manager_gateway__descriptor,
                "DisconnectJobManager", &d.base),
        NULL);
    char line[2048], prefix[1200];
    cf_next_app(&jm, line, sizeof line);
    snprintf(prefix, sizeof prefix,
             "JobMaster of job %s disconnected: RUNNING: the test drops it",
             id);
    assert_string_equal(prefix, line);
    cf_next_app(&jm, line, sizeof line);
    snprintf(prefix, sizeof prefix,
             "JobMaster of job %s lost its ResourceManager %s: ", id, rm);
    assert_timed_out(line, prefix, rm, "; registering again");
    Fling__Cluster__JobStatusReply *s = jc_status(&c, id);
    assert_int_equal(JS(RUNNING), s->state);
    assert_string_equal("", s->failure);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);
    jc_close(&c);
    ft_end(&te);
    free(job);
    rm_scratch(dir);
    cf_stop(&jm, SIGTERM, 0);
}

#define SILENT_JOB "0123456789abcdef0123456789abcdef"

/* The ResourceManager heartbeats a registered JobMaster (played by the
 * test) that never answers: after heartbeat.timeout it drops it. */
static void test_resourcemanager_notices_silent_jobmaster(void **state)
{
    (void)state;
    static cf_proc_t jm;
    static fake_jm_t f;
    int port = start_jm(&jm, "0");
    fj_start(&f);
    char rm[128];
    snprintf(rm, sizeof rm, "fling.tcp://127.0.0.1:%d/resourcemanager_1", port);
    fl_fencing_token_t zero = fl_test_token(0);
    fl_rpc_gateway_t *gw = fl_test_connect(
        f.svc, rm, &fling__cluster__resource_manager_gateway__descriptor,
        &zero);
    Fling__Cluster__JobMasterRegistration r =
        FLING__CLUSTER__JOB_MASTER_REGISTRATION__INIT;
    r.job_id = SILENT_JOB;
    r.address = (char *)fl_rpc_endpoint_address(f.ep);
    r.token.data = f.token.bytes;
    r.token.len = 16;
    protobuf_c_message_free_unpacked(
        ft_call(gw, &fling__cluster__resource_manager_gateway__descriptor,
                "RegisterJobMaster", &r.base),
        NULL);
    cf_expect_app(&jm, "Registered JobMaster of job " SILENT_JOB " at %s",
                  fl_rpc_endpoint_address(f.ep));
    fl_test_latch_await(f.rm_beats); /* it is heartbeated, and stays silent */
    cf_expect_app(&jm,
                  "JobMaster of job " SILENT_JOB " lost: heartbeat timed out");
    fl_rpc_gateway_free(gw);
    fj_end(&f);
    cf_stop(&jm, SIGTERM, 0);
}

/* ---- the TaskExecutor's side: its reports to a JobMaster the test plays */

#define ALLOC "fedcba9876543210fedcba9876543210"

/* Asks tm1 (gateway te) for a heartbeat as the fake's JobMaster, whose
 * request counts `submitted` SubmitTask calls; returns its report. */
static const Fling__Cluster__DeploymentReport *
beat(fake_jm_t *f, fl_rpc_gateway_t *te, uint64_t submitted)
{
    Fling__Cluster__JobMasterHeartbeatPayload p =
        FLING__CLUSTER__JOB_MASTER_HEARTBEAT_PAYLOAD__INIT;
    p.submitted = submitted;
    uint8_t buf[16];
    Fling__Cluster__Heartbeat hb = FLING__CLUSTER__HEARTBEAT__INIT;
    hb.origin = FJ_ID;
    hb.target = "tm1";
    hb.payload.data = buf;
    hb.payload.len =
        fling__cluster__job_master_heartbeat_payload__pack(&p, buf);
    fj_arm_report(f);
    protobuf_c_message_free_unpacked(
        ft_call(te, &fling__cluster__task_executor_gateway__descriptor,
                "HeartbeatFromJobManager", &hb.base),
        NULL);
    return fj_await_report(f);
}

/* Asserts report r: SILENT_JOB, submitted, and n attempts of vertex 0
 * (attempt 0), ending as said. */
static void assert_report(const Fling__Cluster__DeploymentReport *r,
                          uint64_t submitted, size_t n, bool ending)
{
    assert_string_equal(SILENT_JOB, r->job_id);
    assert_int_equal(submitted, r->submitted);
    assert_int_equal(n, r->n_attempts);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(0, r->attempts[i]->vertex);
        assert_int_equal(0, r->attempts[i]->attempt);
        assert_int_equal(ending, r->attempts[i]->ending);
    }
}

/* A real TaskManager answers the JobMaster's heartbeats with its running
 * attempt and the request's count; a cancelled attempt whose CANCELED is
 * not yet acknowledged is still there, ending; then it is gone. */
static void test_taskexecutor_reports_its_attempts(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    static fake_jm_t f;
    int port = start_jm(&jm, "0");
    int tport = start_tm_only(&tm1, "tm1", port, NULL);
    cf_wait_stderr(&jm, "Slot report of TaskManager tm1: 2 slots, 2 free", 1);
    fj_start(&f);
    char address[128];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/taskexecutor",
             tport);
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__task_executor_gateway__descriptor;
    fl_rpc_gateway_t *te = fl_test_connect(f.svc, address, d, NULL);
    Fling__Cluster__SlotRequest sr = FLING__CLUSTER__SLOT_REQUEST__INIT;
    sr.job_id = SILENT_JOB;
    sr.allocation_id = ALLOC;
    sr.jm_address = (char *)fl_rpc_endpoint_address(f.ep);
    sr.jm_token.data = f.token.bytes;
    sr.jm_token.len = 16;
    protobuf_c_message_free_unpacked(ft_call(te, d, "RequestSlot", &sr.base),
                                     NULL);
    fl_test_latch_await(f.offered);
    char *dir = scratch(), *out = path_in(dir, "out"), job[1024];
    snprintf(job, sizeof job,
             "{\"name\": \"long\", \"parallelism\": 1, \"operators\": ["
             "{\"id\": \"n\", \"type\": \"source.sequence\","
             " \"params\": {\"from\": \"1\", \"to\": \"1000000000000\"}},"
             "{\"id\": \"out\", \"type\": \"sink.text\","
             " \"params\": {\"path\": \"%s\"}}]}",
             out);
    Fling__Cluster__TaskDeploymentDescriptor td =
        FLING__CLUSTER__TASK_DEPLOYMENT_DESCRIPTOR__INIT;
    td.job_id = SILENT_JOB;
    td.allocation_id = ALLOC;
    td.job_json = job;
    td.name = "long (1/1)";
    protobuf_c_message_free_unpacked(ft_call(te, d, "SubmitTask", &td.base),
                                     NULL);
    cf_wait_stderr(&tm1,
                   "long (1/1) (attempt #0) switched from INITIALIZING to "
                   "RUNNING.",
                   1);
    assert_report(beat(&f, te, 1), 1, 1, false);
    pthread_mutex_lock(&f.mu);
    f.lose_finals = UINT_MAX;
    pthread_mutex_unlock(&f.mu);
    Fling__Cluster__ExecutionAttempt ca =
        FLING__CLUSTER__EXECUTION_ATTEMPT__INIT;
    ca.job_id = SILENT_JOB;
    protobuf_c_message_free_unpacked(ft_call(te, d, "CancelTask", &ca.base),
                                     NULL);
    cf_wait_stderr(&tm1,
                   "State update CANCELED of long (1/1) (attempt #0) to the "
                   "JobMaster of job " SILENT_JOB " failed: the test lost it; "
                   "sending it again in 200 ms "
                   "(cluster.registration.error-delay)",
                   1);
    assert_report(beat(&f, te, 1), 1, 1, true);
    pthread_mutex_lock(&f.mu);
    f.lose_finals = 0;
    pthread_mutex_unlock(&f.mu);
    fl_test_latch_await(f.acked_final);
    /* The acknowledgement reaches tm1 after the fake sent it: until then
     * the attempt is still ending. */
    const Fling__Cluster__DeploymentReport *r = beat(&f, te, 2);
    uint64_t deadline = cf_now_ms() + CF_WAIT_MS;
    while (r->n_attempts == 1 && cf_now_ms() < deadline) {
        assert_report(r, 2, 1, true);
        r = beat(&f, te, 2);
    }
    assert_report(r, 2, 0, false);
    cf_stop(&tm1, SIGTERM, 0);
    fl_rpc_gateway_free(te);
    fj_end(&f);
    cf_stop(&jm, SIGTERM, 0);
    free(out);
    rm_scratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_missing_attempt_fails),
        CF_TEST(test_pending_attempt_is_not_missing),
        CF_TEST(test_unknown_attempt_is_cancelled),
        CF_TEST(test_huge_report_is_ignored),
        CF_TEST(test_garbled_report_is_ignored),
        CF_TEST(test_stale_attempt_update_is_refused),
        CF_TEST(test_task_failing_while_cancelled_ends_the_job),
        CF_TEST(test_jobmaster_notices_silent_resourcemanager),
        CF_TEST(test_resourcemanager_notices_silent_jobmaster),
        CF_TEST(test_taskexecutor_reports_its_attempts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
