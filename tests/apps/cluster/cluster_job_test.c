/*
 * cluster_job_test.c - jobs on a cluster of processes (issue 17, contract
 * section 4 steps 9-22): submitted through the DispatcherGateway, run by
 * a JobMaster in TaskManagers' slots; synchronised on the JobManager's
 * log lines.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "job_client.h"
#include "long_job.h"
#include "taskexecutor.pb-c.h"

#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x
#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x

/* Writes n lines of random "abc \r" text, a third of them with "ab". */
static void gen_input(const char *path, size_t n)
{
    tbuf_t b = {0};
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        size_t len = 1 + i % 23;
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            tbuf_add(&b, &"abc \rxyz"[x % 8], 1);
        }
        tbuf_add(&b, "\n", 1);
    }
    write_file(path, b.data, b.len);
    tbuf_free(&b);
}

static void wait_job(cf_proc_t *jm, const char *name, const char *id,
                     const char *from, const char *to)
{
    char line[1400];
    snprintf(line, sizeof line, "Job %s (%s) switched from state %s to %s.",
             name, id, from, to);
    cf_wait_stderr(jm, line, 1);
}

/* Asserts the job's status: its state, failure, and every task's state. */
static void assert_status(jc_t *c, const char *id, int state,
                          const char *failure, size_t ntasks, int task_state)
{
    Fling__Cluster__JobStatusReply *r = jc_status(c, id);
    assert_string_equal(id, r->job_id);
    assert_int_equal(state, r->state);
    assert_string_equal(failure, r->failure);
    assert_int_equal(ntasks, r->n_tasks);
    for (size_t i = 0; i < r->n_tasks; i++) {
        assert_int_equal(task_state, r->tasks[i]->state);
        assert_int_equal(0, r->tasks[i]->attempt);
    }
    if (state == JS(FINISHED) || state == JS(FAILED) || state == JS(CANCELED))
        assert_true(r->end_time_ms >= r->start_time_ms);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Asserts that the n part files in out hold want, and frees want. */
static void assert_parts(const char *out, unsigned n, tbuf_t *want)
{
    tbuf_t got = {0};
    concat_parts(out, n, &got);
    assert_int_equal(want->len, got.len);
    assert_memory_equal(want->data, got.data, want->len);
    tbuf_free(want);
    tbuf_free(&got);
}

static void check_grep_output(const char *input, const char *out, unsigned n)
{
    tbuf_t want = {0};
    run_grep("ab", input, &want);
    tbuf_add(&want, "", 0);
    assert_true(want.len > 1000);
    assert_parts(out, n, &want);
}

/* A JobManager, its TaskManagers tm1..tmN, a client of its Dispatcher and
 * a scratch folder. Static in each test: cf_teardown reaps its processes
 * after a failed assertion. */
typedef struct cluster {
    cf_proc_t jm, tm[3];
    int n_tm, port;
    jc_t c;
    char *dir;
    char *input, *out; /* dir/input.txt (not made), dir/out */
} cluster_t;

/* Makes a scratch folder (and the paths in it), starts a JobManager (with -D
 * extra unless NULL) and n_tm TaskManagers of 2 slots, and opens a client. */
static void cluster_up(cluster_t *k, const char *extra, int n_tm)
{
    static const char *const names[] = {"tm1", "tm2", "tm3"};
    assert_true(n_tm >= 0 && n_tm <= 3);
    k->dir = scratch();
    k->input = path_in(k->dir, "input.txt");
    k->out = path_in(k->dir, "out");
    k->port = start_jm_opt(&k->jm, "0", extra);
    k->n_tm = n_tm;
    for (int i = 0; i < n_tm; i++)
        start_tm(&k->tm[i], &k->jm, names[i], k->port);
    memset(&k->c, 0, sizeof k->c);
    jc_open(&k->c, k->port);
}

/* Closes the client, stops each TaskManager still running and then the
 * JobManager (each must exit 0), removes the scratch folder. */
static void cluster_down(cluster_t *k)
{
    jc_close(&k->c);
    for (int i = 0; i < k->n_tm; i++)
        if (!k->tm[i].reaped)
            cf_stop(&k->tm[i], SIGTERM, 0);
    cf_stop(&k->jm, SIGTERM, 0);
    free(k->input);
    free(k->out);
    rm_scratch(k->dir);
}

/* Submits the job of file path with args (NULL terminated) and p; its id
 * (32 hex digits) into id. */
static void submit(cluster_t *k, const char *path, const char *const *args,
                   unsigned p, const char *job_dir, char id[static 1024])
{
    assert_fl_ok(jc_submit(&k->c, path, args, p, job_dir, id, 1024));
    assert_int_equal(32, strlen(id));
}

#define GREP_JSON FLING_SOURCE_DIR "/examples/jobs/grep.json"

/* Submits grep.json for "ab" from k->input to k->out with parallelism p
 * (0: the job's); its id into id. */
static void submit_grep(cluster_t *k, unsigned p, char id[static 1024])
{
    const char *args[] = {"input",  k->input, "pattern", "ab",
                          "output", k->out,   NULL};
    submit(k, GREP_JSON, args, p, "", id);
}
#define SEQUENCE_JSON FLING_SOURCE_DIR "/examples/jobs/sequence.json"

/* grep.json with parallelism 4 on two TaskManagers of 2 slots: the job
 * FINISHES, each TaskManager ran two tasks, the part files are grep -F's
 * output, and the four slots are available again. */
static void test_grep_on_two_taskmanagers(void **state)
{
    (void)state;
    static cluster_t k;
    cluster_up(&k, NULL, 2);
    const char *input = k.input, *out = k.out;
    gen_input(input, 40000);
    char id[1024];
    submit_grep(&k, 0, id);
    wait_job(&k.jm, "grep", id, "RUNNING", "FINISHED");
    Fling__Cluster__JobStatusReply *r = jc_status(&k.c, id);
    assert_int_equal(JS(FINISHED), r->state);
    assert_string_equal("grep", r->name);
    assert_int_equal(4, r->n_tasks);
    int on_tm1 = 0;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(XS(FINISHED), r->tasks[i]->state);
        assert_int_equal(i, r->tasks[i]->subtask);
        assert_int_equal(4, r->tasks[i]->parallelism);
        assert_string_equal("", r->tasks[i]->failure);
        on_tm1 += strcmp(r->tasks[i]->task_manager, "tm1") == 0;
        assert_true(strcmp(r->tasks[i]->task_manager, "tm1") == 0 ||
                    strcmp(r->tasks[i]->task_manager, "tm2") == 0);
    }
    assert_int_equal(2, on_tm1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_dir(out, "part-0 part-1 part-2 part-3");
    check_grep_output(input, out, 4);
    cf_wait_stderr(&k.jm, "is available again", 4);
    cluster_down(&k);
}

/* sequence.json through the user library, found in the job's folder. */
static void test_sequence_through_user_library(void **state)
{
    (void)state;
    static cluster_t k;
    cluster_up(&k, NULL, 1);
    const char *out = k.out;
    const char *args[] = {"output", out, NULL};
    char id[1024];
    submit(&k, SEQUENCE_JSON, args, 0, UDF_DIR, id);
    wait_job(&k.jm, "sequence", id, "RUNNING", "FINISHED");
    assert_status(&k.c, id, JS(FINISHED), "", 2, XS(FINISHED));
    tbuf_t want = {0};
    for (int i = 1; i <= 100; i++) {
        char l[32];
        int n = snprintf(l, sizeof l, "%d\n", i * i);
        tbuf_add(&want, l, (size_t)n);
    }
    assert_parts(out, 2, &want);
    cluster_down(&k);
}

/* Two jobs at once, two slots each, on two TaskManagers of two slots. */
static void test_two_jobs_share_the_slots(void **state)
{
    (void)state;
    static cluster_t k;
    cluster_up(&k, NULL, 2);
    const char *input = k.input, *out = k.out;
    char *seq = path_in(k.dir, "seq");
    gen_input(input, 20000);
    const char *sargs[] = {"output", seq, "to", "1000", NULL};
    char gid[1024], sid[1024];
    submit_grep(&k, 2, gid);
    submit(&k, SEQUENCE_JSON, sargs, 0, UDF_DIR, sid);
    /* Either may finish first: wait for both, in any order. */
    cf_wait_stderr(&k.jm, "switched from state RUNNING to FINISHED.", 2);
    assert_status(&k.c, gid, JS(FINISHED), "", 2, XS(FINISHED));
    assert_status(&k.c, sid, JS(FINISHED), "", 2, XS(FINISHED));
    /* ListJobs: both, in submission order. */
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(
        k.c.gw,
        (unsigned)fl_rpc_method_index(
            &fling__cluster__dispatcher_gateway__descriptor, "ListJobs"),
        &ack.base, 5000, &reply));
    Fling__Cluster__JobList *list = (Fling__Cluster__JobList *)reply;
    assert_int_equal(2, list->n_jobs);
    assert_string_equal(gid, list->jobs[0]->job_id);
    assert_string_equal("grep", list->jobs[0]->name);
    assert_string_equal(sid, list->jobs[1]->job_id);
    assert_string_equal("sequence", list->jobs[1]->name);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(JS(FINISHED), list->jobs[i]->state);
        assert_true(list->jobs[i]->start_time_ms > 0);
        assert_true(list->jobs[i]->end_time_ms >= list->jobs[i]->start_time_ms);
    }
    protobuf_c_message_free_unpacked(reply, NULL);
    check_grep_output(input, out, 2);
    cluster_down(&k);
    free(seq);
}

/* A job that would run for hours, cancelled once its tasks run: CANCELED,
 * every task CANCELED, no part file left. */
static void test_cancel(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    jc_t c = {0};
    long_job_t l;
    long_job_start(&l, &jm, &tm1, &c, NULL);
    assert_int_equal(JS(CANCELLING), jc_cancel(&c, l.id));
    wait_job(&jm, "long", l.id, "CANCELLING", "CANCELED");
    assert_status(&c, l.id, JS(CANCELED), "", 2, XS(CANCELED));
    long_job_assert_no_output(&l);
    /* Cancelling a job that ended changes nothing. */
    assert_int_equal(JS(CANCELED), jc_cancel(&c, l.id));
    jc_close(&c);
    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    long_job_free(&l);
}

/* grep with parallelism 4 on one TaskManager of 2 slots fails after
 * slot.request.timeout, saying how many slots it has and needs; the two
 * it had are available again. */
static void test_too_few_slots(void **state)
{
    (void)state;
    static cluster_t k;
    cluster_up(&k, "slot.request.timeout=700 ms", 1);
    gen_input(k.input, 100);
    char id[1024];
    submit_grep(&k, 0, id);
    wait_job(&k.jm, "grep", id, "RUNNING", "FAILED");
    char want[1400];
    snprintf(want, sizeof want,
             "Job grep (%s) could not get the slots it needs within 700 ms "
             "(slot.request.timeout): it has 2 and needs 4; start more "
             "TaskManagers or lower the parallelism",
             id);
    assert_status(&k.c, id, JS(FAILED), want, 4, XS(CANCELED));
    cf_wait_stderr(&k.jm, "is available again", 2);
    cluster_down(&k);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The numbers 1..n (n < 10^9) whose decimal form holds "777777", one a
 * line, ascending: built from where the run can be, not by trying all. */
static void sevens(uint64_t n, tbuf_t *out)
{
    uint64_t *v = malloc(20000 * sizeof *v);
    assert_non_null(v);
    size_t k = 0;
    for (int len = 6; len <= 9; len++)
        for (int at = 0; at + 6 <= len; at++) {
            int others = len - 6;
            uint64_t combos = 1;
            for (int i = 0; i < others; i++)
                combos *= 10;
            for (uint64_t c = 0; c < combos; c++) {
                char d[10];
                uint64_t r = c;
                for (int i = 0, o = 0; i < len; i++) {
                    if (i >= at && i < at + 6) {
                        d[i] = '7';
                    } else {
                        d[i] = (char)('0' + r % 10);
                        r /= 10;
                        o++;
                    }
                }
                if (d[0] == '0')
                    continue;
                uint64_t x = 0;
                for (int i = 0; i < len; i++)
                    x = x * 10 + (uint64_t)(d[i] - '0');
                if (x <= n)
                    v[k++] = x;
            }
        }
    qsort(v, k, sizeof *v, cmp_u64);
    tbuf_add(out, "", 0);
    for (size_t i = 0; i < k; i++) {
        if (i > 0 && v[i] == v[i - 1])
            continue;
        char l[32];
        int m = snprintf(l, sizeof l, "%llu\n", (unsigned long long)v[i]);
        tbuf_add(out, l, (size_t)m);
    }
    free(v);
}

/* A TaskManager killed with kill -9 while the job runs: the JobMaster
 * fails its tasks, restarts the job (fixed delay) on the slots left and a
 * third TaskManager's, and the job FINISHES with the whole output. */
static void test_kill_a_taskmanager_mid_job(void **state)
{
    (void)state;
    static cluster_t k;
    cluster_up(&k, "restart-strategy.fixed-delay.delay=100 ms", 3);
    char *job = path_in(k.dir, "sevens.json");
    const char *out = k.out;
    static const char text[] =
        "{\"name\": \"sevens\", \"parallelism\": 4,"
        " \"params\": {\"output\": null},"
        " \"operators\": ["
        "  {\"id\": \"n\", \"type\": \"source.sequence\","
        "   \"params\": {\"from\": \"1\", \"to\": \"40000000\"}},"
        "  {\"id\": \"sevens\", \"type\": \"filter.contains\","
        "   \"params\": {\"pattern\": \"777777\"}},"
        "  {\"id\": \"out\", \"type\": \"sink.text\","
        "   \"params\": {\"path\": \"${output}\"}}]}";
    write_file(job, text, strlen(text));
    const char *args[] = {"output", out, NULL};
    char id[1024];
    submit(&k, job, args, 0, "", id);
    cf_wait_stderr(&k.jm, "(attempt #0) switched from INITIALIZING to RUNNING.",
                   4);
    Fling__Cluster__JobStatusReply *r = jc_status(&k.c, id);
    int on_tm1 = 0;
    for (size_t i = 0; i < r->n_tasks; i++)
        on_tm1 += strcmp(r->tasks[i]->task_manager, "tm1") == 0;
    assert_int_equal(2, on_tm1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cf_kill9(&k.tm[0]);
    wait_job(&k.jm, "sevens", id, "RUNNING", "RESTARTING");
    wait_job(&k.jm, "sevens", id, "RESTARTING", "RUNNING");
    wait_job(&k.jm, "sevens", id, "RUNNING", "FINISHED");
    r = jc_status(&k.c, id);
    assert_int_equal(JS(FINISHED), r->state);
    assert_int_equal(1, r->restarts);
    assert_int_equal(4, r->n_tasks);
    for (size_t i = 0; i < r->n_tasks; i++) {
        assert_int_equal(XS(FINISHED), r->tasks[i]->state);
        assert_int_equal(1, r->tasks[i]->attempt);
        assert_string_not_equal("tm1", r->tasks[i]->task_manager);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_dir(out, "part-0 part-1 part-2 part-3");
    tbuf_t want = {0};
    sevens(40000000, &want);
    assert_parts(out, 4, &want);
    cluster_down(&k);
    free(job);
}

/* A task that fails (a missing input file) with no restart left: the job
 * FAILS with the task runner's message, the task's own failure too. */
static void test_failed_task_fails_the_job(void **state)
{
    (void)state;
    static cluster_t k;
    cluster_up(&k, "restart-strategy.fixed-delay.attempts=0", 1);
    const char *input = k.input; /* never written: missing */
    char id[1024];
    submit_grep(&k, 1, id);
    wait_job(&k.jm, "grep", id, "FAILING", "FAILED");
    /* The task runner's message (tests/apps/task/task_error_test.c). */
    char want[1024];
    snprintf(want, sizeof want,
             "Operator 'lines' (source.text) cannot open %s: No such file "
             "or directory",
             input);
    Fling__Cluster__JobStatusReply *r = jc_status(&k.c, id);
    assert_int_equal(JS(FAILED), r->state);
    assert_string_equal(want, r->failure);
    assert_int_equal(1, r->n_tasks);
    assert_int_equal(XS(FAILED), r->tasks[0]->state);
    assert_string_equal(want, r->tasks[0]->failure);
    assert_int_equal(0, r->restarts);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cluster_down(&k);
}

/* Refusals: a job that does not parse, an unknown job id. */
static void test_refusals(void **state)
{
    (void)state;
    static cluster_t k;
    cluster_up(&k, NULL, 0);
    Fling__Cluster__SubmitJobRequest req =
        FLING__CLUSTER__SUBMIT_JOB_REQUEST__INIT;
    req.job_json = "{\"name\": \"x\", \"operators\": 3}";
    char err[1024], want[1200];
    fj_job_t *job = NULL;
    assert_int_equal(FL_EINVAL,
                     fj_job_parse(req.job_json, strlen(req.job_json),
                                  "the submitted job", &job, err, sizeof err));
    snprintf(want, sizeof want, "Job submission refused: %s", err);
    char msg[1200];
    assert_int_equal(
        FL_EINVAL,
        fl_test_call_code(
            k.c.gw,
            (unsigned)fl_rpc_method_index(
                &fling__cluster__dispatcher_gateway__descriptor, "SubmitJob"),
            &req.base, 5000, msg, sizeof msg));
    assert_string_equal(want, msg);
    Fling__Cluster__JobIdRequest jr = FLING__CLUSTER__JOB_ID_REQUEST__INIT;
    jr.job_id = "0123456789abcdef0123456789abcdef";
    assert_int_equal(
        FL_ENOENT,
        fl_test_call_code(k.c.gw,
                          (unsigned)fl_rpc_method_index(
                              &fling__cluster__dispatcher_gateway__descriptor,
                              "RequestJobStatus"),
                          &jr.base, 5000, msg, sizeof msg));
    assert_string_equal("No job 0123456789abcdef0123456789abcdef", msg);
    cluster_down(&k);
}

/* The TaskExecutorGateway (unfenced) refuses a task for a slot it does
 * not hold for the job, and a slot it does not have; a cancel of an
 * attempt it does not run is taken and does nothing. */
static void test_taskexecutor_refusals(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    int port = start_jm(&jm, "0");
    int tport = start_tm_only(&tm1, "tm1", port, "pekko.ask.timeout=1 s");
    cf_wait_stderr(&jm, "Slot report of TaskManager tm1: 2 slots, 2 free", 1);
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    char address[128];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/taskexecutor",
             tport);
    fl_rpc_gateway_t *gw = fl_test_connect(
        svc, address, &fling__cluster__task_executor_gateway__descriptor, NULL);
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__task_executor_gateway__descriptor;
    Fling__Cluster__TaskDeploymentDescriptor td =
        FLING__CLUSTER__TASK_DEPLOYMENT_DESCRIPTOR__INIT;
    td.job_id = "0123456789abcdef0123456789abcdef";
    td.allocation_id = "fedcba9876543210fedcba9876543210";
    td.job_json = "{}";
    td.name = "Source: n -> Sink: out (1/1)";
    char msg[1024];
    assert_int_equal(
        FL_ESTATE,
        fl_test_call_code(gw, (unsigned)fl_rpc_method_index(d, "SubmitTask"),
                          &td.base, 5000, msg, sizeof msg));
    assert_string_equal(
        "Task Source: n -> Sink: out (1/1) refused: TaskManager tm1 holds "
        "no slot of allocation fedcba9876543210fedcba9876543210 for job "
        "0123456789abcdef0123456789abcdef",
        msg);
    Fling__Cluster__SlotRequest sr = FLING__CLUSTER__SLOT_REQUEST__INIT;
    sr.slot_index = 2;
    sr.job_id = td.job_id;
    sr.allocation_id = td.allocation_id;
    sr.jm_address = "fling.tcp://127.0.0.1:1/jobmaster_x";
    uint8_t tok[16] = {0};
    sr.jm_token.data = tok;
    sr.jm_token.len = 16;
    assert_int_equal(
        FL_EINVAL,
        fl_test_call_code(gw, (unsigned)fl_rpc_method_index(d, "RequestSlot"),
                          &sr.base, 5000, msg, sizeof msg));
    assert_string_equal(
        "Slot request fedcba9876543210fedcba9876543210 refused: TaskManager "
        "tm1 has slots 0 to 1, and a job or allocation id has 32 hex digits",
        msg);
    Fling__Cluster__ExecutionAttempt ea =
        FLING__CLUSTER__EXECUTION_ATTEMPT__INIT;
    ea.job_id = td.job_id;
    ea.vertex = 0;
    ea.attempt = 3;
    assert_fl_ok(
        fl_test_call_code(gw, (unsigned)fl_rpc_method_index(d, "CancelTask"),
                          &ea.base, 5000, msg, sizeof msg));
    /* A slot whose JobMaster never takes it (there is none: the job
     * leader service retries) is freed after pekko.ask.timeout. */
    char jm_address[128];
    snprintf(jm_address, sizeof jm_address,
             "fling.tcp://127.0.0.1:%d/jobmaster_none", port);
    sr.slot_index = 0;
    sr.jm_address = jm_address;
    assert_fl_ok(
        fl_test_call_code(gw, (unsigned)fl_rpc_method_index(d, "RequestSlot"),
                          &sr.base, 5000, msg, sizeof msg));
    cf_wait_stderr(&tm1,
                   "app: Slot 0 allocated to job "
                   "0123456789abcdef0123456789abcdef (allocation "
                   "fedcba9876543210fedcba9876543210)",
                   1);
    cf_wait_stderr(&tm1,
                   "app: Slot 0 freed: it did not become active within 1000 "
                   "ms (pekko.ask.timeout)",
                   1);
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);
    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_grep_on_two_taskmanagers),
        CF_TEST(test_sequence_through_user_library),
        CF_TEST(test_two_jobs_share_the_slots),
        CF_TEST(test_cancel),
        CF_TEST(test_too_few_slots),
        CF_TEST(test_kill_a_taskmanager_mid_job),
        CF_TEST(test_failed_task_fails_the_job),
        CF_TEST(test_refusals),
        CF_TEST(test_taskexecutor_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
