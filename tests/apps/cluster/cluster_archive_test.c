/*
 * cluster_archive_test.c - a job that ended loses its JobMaster (its
 * endpoint closed, its memory freed) and stays in the Dispatcher's
 * archive for list and status: the newest jobstore.max-capacity of them,
 * each for jobstore.expiration-time.
 */
#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "job_client.h"
#include "jobmaster.pb-c.h"
#include "long_job.h"
#include "small_job.h"

#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x
#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x

/* A DispatcherGateway call's code, its message into msg. */
static int d_call(jc_t *c, const char *method, const ProtobufCMessage *req,
                  ProtobufCMessage **reply, char *msg, size_t cap)
{
    int rc = fl_rpc_call_sync(
        c->gw,
        (unsigned)fl_rpc_method_index(
            &fling__cluster__dispatcher_gateway__descriptor, method),
        req, 5000, reply);
    snprintf(msg, cap, "%s", rc == FL_OK ? "" : fl_rpc_last_message());
    return rc;
}

/* Three jobs, one after the other, with jobstore.max-capacity 2: each
 * JobMaster's endpoint is gone once its job is archived, status still
 * answers for it, and the first job leaves the archive when the third
 * comes in. */
static void test_ended_jobmasters_are_freed(void **state)
{
    (void)state;
    static cf_proc_t jm, tm;
    char *dir = scratch();
    char *job = small_job_write(dir);
    int port = start_jm_opt(&jm, "0", "jobstore.max-capacity=2");
    start_tm(&tm, &jm, "tm1", port);
    jc_t c = {0};
    jc_open(&c, port);
    char ids[3][256];
    for (int k = 0; k < 3; k++) {
        char name[16];
        snprintf(name, sizeof name, "out%d", k);
        char *out = path_in(dir, name);
        const char *args[] = {"output", out, NULL};
        assert_fl_ok(jc_submit(&c, job, args, 0, "", ids[k], sizeof ids[k]));
        char line[1024];
        snprintf(line, sizeof line,
                 "Job small (%s) archived: its JobMaster is freed", ids[k]);
        cf_wait_stderr(&jm, line, 1);

        char addr[1024], msg[700], expect[3000];
        snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/jobmaster_%s",
                 port, ids[k]);
        int rc = fl_test_connect_error(
            c.svc, addr, &fling__cluster__job_master_gateway__descriptor, msg,
            sizeof msg);
        /* Three: jobmanager, resourcemanager_1, dispatcher_1. */
        snprintf(expect, sizeof expect,
                 "Could not connect to rpc endpoint under address %s: the "
                 "service has no endpoint 'jobmaster_%s'; it has 3 endpoints, "
                 "none matching 'jobmaster_%s*' (ids are not disclosed to "
                 "remote callers)",
                 addr, ids[k], ids[k]);
        assert_int_equal(FL_ECONNECT, rc);
        assert_string_equal(expect, msg);

        Fling__Cluster__JobStatusReply *r = jc_status(&c, ids[k]);
        assert_string_equal("small", r->name);
        assert_int_equal(JS(FINISHED), r->state);
        assert_string_equal("", r->failure);
        assert_int_equal(1, r->n_tasks);
        assert_int_equal(XS(FINISHED), r->tasks[0]->state);
        assert_string_equal("tm1", r->tasks[0]->task_manager);
        assert_true(r->end_time_ms >= r->start_time_ms);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        small_job_assert_output(out);
        free(out);
    }

    /* jobstore.max-capacity is 2: the first job is gone. */
    Fling__Cluster__JobIdRequest req = FLING__CLUSTER__JOB_ID_REQUEST__INIT;
    req.job_id = ids[0];
    ProtobufCMessage *reply = NULL;
    char msg[512], expect[600];
    assert_int_equal(FL_ENOENT, d_call(&c, "RequestJobStatus", &req.base,
                                       &reply, msg, sizeof msg));
    snprintf(expect, sizeof expect, "No job %s", ids[0]);
    assert_string_equal(expect, msg);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    assert_fl_ok(d_call(&c, "ListJobs", &ack.base, &reply, msg, sizeof msg));
    Fling__Cluster__JobList *l = (Fling__Cluster__JobList *)reply;
    assert_int_equal(2, l->n_jobs);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(ids[i + 1], l->jobs[i]->job_id);
        assert_string_equal("small", l->jobs[i]->name);
        assert_int_equal(JS(FINISHED), l->jobs[i]->state);
    }
    protobuf_c_message_free_unpacked(reply, NULL);

    jc_close(&c);
    cf_stop(&tm, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    free(job);
    rm_scratch(dir);
}

/* The number of jobs ListJobs answers. */
static size_t list_count(jc_t *c)
{
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    ProtobufCMessage *reply = NULL;
    char msg[512];
    assert_fl_ok(d_call(c, "ListJobs", &ack.base, &reply, msg, sizeof msg));
    size_t n = ((Fling__Cluster__JobList *)reply)->n_jobs;
    protobuf_c_message_free_unpacked(reply, NULL);
    return n;
}

/* jobstore.expiration-time 1 ms: an archived job leaves the archive
 * within moments (asked again every 20 ms until then, 10 s at most); the
 * one still running (a long job of parallelism 1, in tm1's other slot)
 * stays, RUNNING. */
static void test_archived_jobs_expire(void **state)
{
    (void)state;
    static cf_proc_t jm, tm;
    long_job_t l;
    long_job_write(&l);
    char *dir = scratch();
    char *job = small_job_write(dir), *out = path_in(dir, "out");
    int port = start_jm_opt(&jm, "0", "jobstore.expiration-time=1 ms");
    start_tm(&tm, &jm, "tm1", port);
    jc_t c = {0};
    jc_open(&c, port);
    const char *largs[] = {"output", l.out, NULL};
    assert_fl_ok(jc_submit(&c, l.job, largs, 1, "", l.id, sizeof l.id));
    cf_wait_stderr(&jm, "(attempt #0) switched from INITIALIZING to RUNNING.",
                   1);
    const char *args[] = {"output", out, NULL};
    char id[256], line[512];
    assert_fl_ok(jc_submit(&c, job, args, 0, "", id, sizeof id));
    snprintf(line, sizeof line,
             "Job small (%s) archived: its JobMaster is freed", id);
    cf_wait_stderr(&jm, line, 1);
    uint64_t deadline = cf_now_ms() + 10000;
    while (list_count(&c) > 1 && cf_now_ms() < deadline) {
        struct timespec ts = {0, 20000000};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    assert_int_equal(1, list_count(&c));
    Fling__Cluster__JobStatusReply *s = jc_status(&c, l.id);
    assert_string_equal(l.id, s->job_id);
    assert_int_equal(JS(RUNNING), s->state);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    Fling__Cluster__JobIdRequest req = FLING__CLUSTER__JOB_ID_REQUEST__INIT;
    req.job_id = id;
    ProtobufCMessage *reply = NULL;
    char msg[512], expect[300];
    assert_int_equal(FL_ENOENT, d_call(&c, "RequestJobStatus", &req.base,
                                       &reply, msg, sizeof msg));
    snprintf(expect, sizeof expect, "No job %s", id);
    assert_string_equal(expect, msg);
    jc_close(&c);
    cf_stop(&tm, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    free(job);
    free(out);
    rm_scratch(dir);
    long_job_free(&l);
}

/* jobstore.expiration-time at its largest (INT64_MAX ms): an archived job
 * stays in the archive (end + expiration-time would overflow). */
static void test_huge_expiration_keeps_jobs(void **state)
{
    (void)state;
    static cf_proc_t jm, tm;
    char *dir = scratch();
    char *job = small_job_write(dir), *out = path_in(dir, "out");
    int port = start_jm_opt(&jm, "0",
                            "jobstore.expiration-time=9223372036854775807 ms");
    start_tm(&tm, &jm, "tm1", port);
    jc_t c = {0};
    jc_open(&c, port);
    const char *args[] = {"output", out, NULL};
    char id[256], line[512];
    assert_fl_ok(jc_submit(&c, job, args, 0, "", id, sizeof id));
    snprintf(line, sizeof line,
             "Job small (%s) archived: its JobMaster is freed", id);
    cf_wait_stderr(&jm, line, 1);
    /* The archive was pruned before the line's call returned; the list
     * call comes after it on the same thread. */
    assert_int_equal(1, list_count(&c));
    jc_close(&c);
    cf_stop(&tm, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    free(job);
    free(out);
    rm_scratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_ended_jobmasters_are_freed),
        CF_TEST(test_archived_jobs_expire),
        CF_TEST(test_huge_expiration_keeps_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
