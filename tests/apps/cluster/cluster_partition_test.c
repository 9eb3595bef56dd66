/*
 * cluster_partition_test.c - a silent partition (issue 17, "Failure";
 * contract section 4): TaskManager tm1 runs in a network namespace joined
 * to the host by a veth pair (scripts/netns-pair.sh), tm2 and the
 * JobManager on the host. A job runs on both; the namespace's end of the
 * link goes down (packets dropped, no RST, no ICMP), and:
 *   1. the JobManager's ResourceManager and JobMaster see tm1 lost within
 *      heartbeat.timeout (plus DETECT_MARGIN_MS), measured from the
 *      `down` to the time stamps of their log lines;
 *   2. the job restarts, its four new attempts in tm2's four slots;
 *   3. once the link is up again, tm1 registers again (a new
 *      registration, its two slots free), the late FINISHED updates of
 *      its old attempts are refused, no slot serves two attempts, and
 *      the job FINISHES with grep -F's output.
 * Each task holds in a FIFO of its TaskManager (udf_hold_lib) until the
 * test opens it, so each step happens while the job is where the test
 * wants it.
 *
 * Needs root (ip netns, veth): run as another user it FAILS and says so.
 * The namespace is named after the pid (flpart<pid>), on a /30 that
 * netns-pair.sh finds free on the host (under its lock, so parallel runs
 * never share one). The teardown deletes it; so do SIGABRT (the case's
 * alarm, which rings before ctest's SIGKILL), SIGTERM, SIGINT and SIGHUP;
 * namespaces left by a run killed otherwise are deleted at the start.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "job_client.h"
#include "jobmaster.pb-c.h"
#include "netns_fixture.h"

#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x
#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x

/* CF_FAST's heartbeat.timeout and interval; docs/cluster.md gives the
 * figures measured. */
#define HB_TIMEOUT_MS 3000
#define HB_INTERVAL_MS 200
/* Detection may come up to an interval after the timeout (the check runs
 * once an interval) and one more (the last heartbeat before the cut), plus
 * 3 s of scheduling delay on a loaded machine (six builds on two cores,
 * the sanitizers). */
#define DETECT_MARGIN_MS (2 * HB_INTERVAL_MS + 3000)
/* Milliseconds since the epoch of a log line's time stamp
 * ("2026-12-05T00:12:03.123456Z ..."). */
static int64_t line_ms(const char *raw)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(raw, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL || *rest != '.')
        fail_msg("no time stamp in the line: %s", raw);
    long us = strtol(rest + 1, NULL, 10);
    return (int64_t)timegm(&tm) * 1000 + us / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next line of p's stderr (raw). Fails at EOF or after CF_WAIT_MS. */
static void next_raw(cf_proc_t *p, char *raw, size_t cap)
{
    if (!cf_next_line(p, &p->err, raw, cap))
        fail_msg("%s: stderr ended", p->name);
}

/* Reads p's stderr up to the line whose app message is msg; its raw line
 * into raw (may be NULL). */
static void wait_app(cf_proc_t *p, const char *msg, char *raw, size_t cap)
{
    char line[4096];
    for (;;) {
        next_raw(p, line, sizeof line);
        const char *m = strstr(line, "] app: ");
        if (m != NULL && strcmp(m + strlen("] app: "), msg) == 0)
            break;
    }
    if (raw != NULL)
        snprintf(raw, cap, "%s", line);
}

/* Reads p's stderr up to a line containing needle. */
static void wait_contains(cf_proc_t *p, const char *needle)
{
    char line[4096];
    do
        next_raw(p, line, sizeof line);
    while (strstr(line, needle) == NULL);
}

static void wait_job(cf_proc_t *jm, const char *id, const char *from,
                     const char *to)
{
    char msg[512];
    snprintf(msg, sizeof msg, "Job part (%s) switched from state %s to %s.", id,
             from, to);
    wait_app(jm, msg, NULL, 0);
}

/* Starts the JobManager on host:0; returns its port. */
static int start_jm_at(cf_proc_t *jm)
{
    static char a[64];
    snprintf(a, sizeof a, "jobmanager.rpc.address=%s", host);
    const char *args[] = {"-D",
                          a,
                          "-D",
                          "jobmanager.rpc.port=0",
                          CF_FAST,
                          "-D",
                          "restart-strategy.fixed-delay.delay=100 ms",
                          NULL};
    cf_spawn(jm, "jm", JM_PATH, args);
    char addr[256];
    int port = cf_read_address(jm, addr, sizeof addr);
    cf_expect_app(jm, "fling-jobmanager listening on %s (pid %ld)", addr,
                  (long)jm->pid);
    cf_expect_app(jm,
                  "ResourceManager %s/resourcemanager_1 started with leader "
                  "token " ZERO_TOKEN,
                  addr);
    return port;
}

/* Starts TaskManager id with slots slots on addr (in the namespace when
 * in_ns), HOLD_FIFO=hold, and waits until it registered; returns its
 * port. */
static int start_tm_at(cf_proc_t *tm, cf_proc_t *jm, const char *id, bool in_ns,
                       const char *addr, int slots, int jm_port,
                       const char *hold)
{
    static char a[4][96];
    snprintf(a[0], sizeof a[0], "jobmanager.rpc.address=%s", host);
    snprintf(a[1], sizeof a[1], "jobmanager.rpc.port=%d", jm_port);
    snprintf(a[2], sizeof a[2], "taskmanager.host=%s", addr);
    snprintf(a[3], sizeof a[3], "taskmanager.resource-id=%s", id);
    char n[64];
    snprintf(n, sizeof n, "taskmanager.numberOfTaskSlots=%d", slots);
    const char *tm_args[] = {"-D", a[0], "-D", a[1], "-D",    a[2],
                             "-D", a[3], "-D", n,    CF_FAST, NULL};
    const char *args[CF_MAX_ARGS];
    size_t k = 0;
    if (in_ns) {
        args[k++] = "netns";
        args[k++] = "exec";
        args[k++] = ns;
        args[k++] = TM_PATH;
    }
    for (size_t i = 0; tm_args[i] != NULL; i++)
        args[k++] = tm_args[i];
    args[k] = NULL;
    setenv("HOLD_FIFO", hold, 1);
    cf_spawn(tm, id, in_ns ? ip_prog : TM_PATH, args);
    unsetenv("HOLD_FIFO");
    char tm_addr[256];
    int port = cf_read_address(tm, tm_addr, sizeof tm_addr);
    cf_expect_app(tm, "fling-taskmanager listening on %s (pid %ld)", tm_addr,
                  (long)tm->pid);
    cf_expect_app(tm,
                  "TaskExecutor %s/taskexecutor started as %s with %d slots",
                  tm_addr, id, slots);
    cf_expect_app(tm,
                  "Registered at ResourceManager "
                  "fling.tcp://%s:%d/resourcemanager_1 as %s",
                  host, jm_port, id);
    cf_expect_app(jm,
                  "Registered TaskManager %s at "
                  "fling.tcp://%s:%d/taskexecutor with %d slots",
                  id, addr, port, slots);
    cf_expect_app(jm, "Slot report of TaskManager %s: %d slots, %d free", id,
                  slots, slots);
    return port;
}

/* Writes n lines of text, every third with "ab". */
static void gen_input(const char *path, size_t n)
{
    tbuf_t b = {0};
    for (size_t i = 0; i < n; i++) {
        char line[64];
        int len = snprintf(line, sizeof line, "%zu %s\n", i * 7919 % 100003,
                           i % 3 == 0 ? "xaby" : "ba");
        tbuf_add(&b, line, (size_t)len);
    }
    write_file(path, b.data, b.len);
    tbuf_free(&b);
}

/* Opens and closes the FIFO for writing whenever a task of p reads it,
 * until count lines of p's stderr contained needle. */
static void release(cf_proc_t *p, const char *fifo, const char *needle,
                    int count)
{
    int seen = 0;
    uint64_t deadline = cf_now_ms() + CF_WAIT_MS;
    while (seen < count) {
        int fd = open(fifo, O_WRONLY | O_NONBLOCK);
        if (fd >= 0)
            close(fd);
        char raw[4096];
        while (seen < count && cf_take_line(&p->err, raw, sizeof raw))
            seen += strstr(raw, needle) != NULL;
        if (seen == count)
            break;
        if (cf_now_ms() >= deadline)
            fail_msg("%s: '%s' came %d times of %d within %d ms", p->name,
                     needle, seen, count, CF_WAIT_MS);
        if (p->err.eof)
            fail_msg("%s: stderr ended", p->name);
        cf_fill(&p->err, 50);
    }
}

/* Reads p's stderr until each of the n app messages msgs came, in any
 * order. */
static void wait_all(cf_proc_t *p, const char *const *msgs, size_t n)
{
    bool seen[8] = {false};
    size_t left = n;
    assert_true(n <= 8);
    char line[4096];
    while (left > 0) {
        next_raw(p, line, sizeof line);
        const char *m = strstr(line, "] app: ");
        for (size_t i = 0; m != NULL && i < n; i++)
            if (!seen[i] && strcmp(m + strlen("] app: "), msgs[i]) == 0) {
                seen[i] = true;
                left--;
                break;
            }
    }
}

/* A gateway to the JobMaster of job id (fenced), which jm runs. A call
 * with the zero token is refused without the current token; jm's log
 * (the operator's view) names it: the gateway takes it from there. The
 * caller frees it. */
static fl_rpc_gateway_t *jobmaster_gateway(fl_rpc_service_t *svc, cf_proc_t *jm,
                                           int port, const char *id)
{
    char address[256], msg[1024], want[1024], line[4096];
    snprintf(address, sizeof address, "fling.tcp://%s:%d/jobmaster_%s", host,
             port, id);
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__job_master_gateway__descriptor;
    fl_fencing_token_t tok = {{0}};
    fl_rpc_gateway_t *gw = fl_test_connect(svc, address, d, &tok);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    assert_int_equal(
        FL_EFENCING,
        fl_test_call_code(gw, (unsigned)fl_rpc_method_index(d, "Cancel"),
                          &ack.base, 5000, msg, sizeof msg));
    fl_rpc_gateway_free(gw);
    snprintf(want, sizeof want,
             "Fencing token mismatch: Ignoring message Cancel because the "
             "fencing token " ZERO_TOKEN " is not the fenced endpoint "
             "jobmaster_%s's current one.",
             id);
    assert_string_equal(want, msg);
    snprintf(want, sizeof want,
             "Fencing token mismatch at rpc endpoint 'jobmaster_%s': ignored "
             "message Cancel carrying the fencing token " ZERO_TOKEN
             "; the current one is ",
             id);
    const char *hex;
    do
        next_raw(jm, line, sizeof line);
    while ((hex = strstr(line, want)) == NULL);
    hex += strlen(want);
    for (int i = 0; i < 16; i++) {
        unsigned b;
        assert_int_equal(1, sscanf(hex + 2 * i, "%2x", &b));
        tok.bytes[i] = (uint8_t)b;
    }
    return fl_test_connect(svc, address, d, &tok);
}

static void test_silent_partition(void **state)
{
    (void)state;
    need_root();
    delete_stale_namespaces();
    ns_create();

    static cf_proc_t jm, tm1, tm2;
    char *dir = scratch();
    char *fifo1 = path_in(dir, "fifo1"), *fifo2 = path_in(dir, "fifo2");
    char *out = path_in(dir, "out"), *input = path_in(dir, "input.txt");
    char *job = path_in(dir, "part.json");
    assert_int_equal(0, mkfifo(fifo1, 0600));
    assert_int_equal(0, mkfifo(fifo2, 0600));
    gen_input(input, 30000);
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "{\"name\": \"part\", \"parallelism\": 4,"
                     " \"library\": \"%s\", \"operators\": ["
                     "{\"id\": \"lines\", \"type\": \"source.text\","
                     " \"params\": {\"path\": \"%s\"}},"
                     "{\"id\": \"h\", \"type\": \"map\","
                     " \"params\": {\"function\": \"hold\"}},"
                     "{\"id\": \"match\", \"type\": \"filter.contains\","
                     " \"params\": {\"pattern\": \"ab\"}},"
                     "{\"id\": \"out\", \"type\": \"sink.text\","
                     " \"params\": {\"path\": \"%s\"}}]}",
                     UDF_HOLD_LIB, input, out);
    write_file(job, text, (size_t)n);

    /* tm1 first: the ResourceManager fills its slots first. Each task
     * holds until the test opens its TaskManager's FIFO. */
    int port = start_jm_at(&jm);
    int tm1_port = start_tm_at(&tm1, &jm, "tm1", true, ns_addr, 2, port, fifo1);
    start_tm_at(&tm2, &jm, "tm2", false, host, 4, port, fifo2);
    jc_t c = {0};
    jc_open_at(&c, host, port);
    const char *args[] = {NULL};
    char id[64]; /* the job id: 32 hex digits */
    assert_fl_ok(jc_submit(&c, job, args, 0, "", id, sizeof id));
    assert_int_equal(32, strlen(id));
    /* tm1's slot 0 allocation, then its two tasks running. */
    char alloc0[64] = "", prefix[128];
    snprintf(prefix, sizeof prefix,
             "] app: Slot 0 allocated to job %s "
             "(allocation ",
             id);
    for (int running = 0; running < 2;) {
        char raw[4096];
        next_raw(&tm1, raw, sizeof raw);
        const char *a = strstr(raw, prefix);
        if (a != NULL)
            snprintf(alloc0, sizeof alloc0, "%.32s", a + strlen(prefix));
        running += strstr(raw, "(attempt #0) switched from INITIALIZING to "
                               "RUNNING.") != NULL;
    }
    assert_int_equal(32, strlen(alloc0));
    /* tm2's attempts #0 end before the partition. */
    release(&tm2, fifo2, "(attempt #0) switched from RUNNING to FINISHED.", 2);
    Fling__Cluster__JobStatusReply *r = jc_status(&c, id);
    assert_int_equal(JS(RUNNING), r->state);
    assert_int_equal(4, r->n_tasks);
    bool on_tm1[4];
    for (size_t i = 0; i < 4; i++) {
        on_tm1[i] = strcmp(r->tasks[i]->task_manager, "tm1") == 0;
        if (!on_tm1[i])
            assert_string_equal("tm2", r->tasks[i]->task_manager);
    }
    assert_int_equal(2, on_tm1[0] + on_tm1[1] + on_tm1[2] + on_tm1[3]);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* The partition, somewhere between down_ms and cut_ms (netns-pair.sh
     * is a shell and a few processes); then tm1's attempts #0 FINISH, and
     * their updates wait in its connection to the JobMaster. */
    int64_t down_ms = wall_ms();
    sh("%s down %s", NETNS_PAIR, ns);
    int64_t cut_ms = wall_ms();
    release(&tm1, fifo1, "(attempt #0) switched from RUNNING to FINISHED.", 2);

    /* 1. Detection, by the ResourceManager and by the JobMaster (each on
     * its own heartbeat schedule: either first), and 2. the failover,
     * whose restart may come between the two. */
    char restarted[512];
    snprintf(restarted, sizeof restarted,
             "Job part (%s) switched from state RESTARTING to RUNNING.", id);
    int lost = 0;
    bool running = false;
    while (lost < 2 || !running) {
        char raw[4096];
        next_raw(&jm, raw, sizeof raw);
        const char *m = strstr(raw, "] app: ");
        if (m == NULL)
            continue;
        m += strlen("] app: ");
        if (strcmp(m, restarted) == 0) {
            assert_true(lost >= 1); /* a restart follows a detection */
            running = true;
        }
        if (strcmp(m, "TaskManager tm1 lost: heartbeat timed out") != 0)
            continue;
        lost++;
        /* At most ms_max and at least ms_min after the cut. */
        int64_t ms_max = line_ms(raw) - down_ms;
        int64_t ms_min = line_ms(raw) - cut_ms;
        fprintf(stderr,
                "partition seen after %lld to %lld ms (heartbeat.timeout %d "
                "ms)\n",
                (long long)ms_min, (long long)ms_max, HB_TIMEOUT_MS);
        /* Earlier than the timeout by up to an interval (tm1's last
         * answer came before the cut), more on a loaded machine; never
         * long before it. */
        if (ms_max < HB_TIMEOUT_MS / 2 ||
            ms_min > HB_TIMEOUT_MS + DETECT_MARGIN_MS)
            fail_msg("partition seen after %lld to %lld ms, want %d to %d ms",
                     (long long)ms_min, (long long)ms_max, HB_TIMEOUT_MS / 2,
                     HB_TIMEOUT_MS + DETECT_MARGIN_MS);
    }

    /* The attempts #1 run in tm2's four slots (and hold). */
    for (int i = 0; i < 4; i++)
        wait_contains(&tm2,
                      "(attempt #1) switched from INITIALIZING to RUNNING.");

    /* tm1 too has found its ResourceManager and JobMaster silent (and
     * freed the job's slots) before the link comes back. */
    char msg[1024], jm_lost[256];
    snprintf(msg, sizeof msg,
             "] app: ResourceManager fling.tcp://%s:%d/resourcemanager_1 "
             "lost: heartbeat timed out; registering again",
             host, port);
    snprintf(jm_lost, sizeof jm_lost,
             "] app: JobMaster of job %s lost: Heartbeat of 'jobmaster_%s' "
             "timed out",
             id, id);
    for (bool rm_seen = false, jm_seen = false; !rm_seen || !jm_seen;) {
        char raw[4096];
        next_raw(&tm1, raw, sizeof raw);
        const char *m = strstr(raw, "] app: ");
        rm_seen = rm_seen || (m != NULL && strcmp(m, msg) == 0);
        jm_seen = jm_seen || strstr(raw, jm_lost) != NULL;
    }

    /* 3. The link back: tm1 registers again with its slots free, and the
     * late FINISHED updates of its attempts #0 are refused. */
    sh("%s up %s", NETNS_PAIR, ns);
    snprintf(msg, sizeof msg,
             "Registered at ResourceManager "
             "fling.tcp://%s:%d/resourcemanager_1 as tm1",
             host, port);
    wait_app(&tm1, msg, NULL, 0);
    char want[4][600];
    snprintf(want[0], sizeof want[0],
             "Registered TaskManager tm1 at fling.tcp://%s:%d/taskexecutor "
             "with 2 slots",
             ns_addr, tm1_port);
    snprintf(want[1], sizeof want[1],
             "Slot report of TaskManager tm1: 2 slots, 2 free");
    size_t k = 2;
    for (unsigned v = 0; v < 4; v++)
        if (on_tm1[v])
            snprintf(want[k++], sizeof want[0],
                     "State update FINISHED of task %u attempt #0 of job %s "
                     "from TaskManager tm1 refused: not a current attempt "
                     "of this JobMaster's job",
                     v, id);
    const char *wants[] = {want[0], want[1], want[2], want[3]};
    wait_all(&jm, wants, 4);

    /* The same late messages of tm1's old registration, sent again
     * through a gateway the test holds: an update of an old attempt, and
     * an offer of its old slot 0, which must not serve the job again. */
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    fl_rpc_gateway_t *jmg = jobmaster_gateway(svc, &jm, port, id);
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__job_master_gateway__descriptor;
    unsigned v1 = on_tm1[0] ? 0 : on_tm1[1] ? 1 : 2;
    Fling__Cluster__TaskExecutionState up =
        FLING__CLUSTER__TASK_EXECUTION_STATE__INIT;
    up.job_id = id;
    up.vertex = v1;
    up.attempt = 0;
    up.state = XS(FINISHED);
    up.message = "";
    up.resource_id = "tm1";
    char said[1024];
    assert_int_equal(
        FL_ESTATE,
        fl_test_call_code(
            jmg, (unsigned)fl_rpc_method_index(d, "UpdateTaskExecutionState"),
            &up.base, 5000, said, sizeof said));
    snprintf(msg, sizeof msg,
             "State update FINISHED of task %u attempt #0 of job %s from "
             "TaskManager tm1 refused: not a current attempt of this "
             "JobMaster's job",
             v1, id);
    assert_string_equal(msg, said);
    Fling__Cluster__SlotOffer o = FLING__CLUSTER__SLOT_OFFER__INIT;
    o.allocation_id = alloc0;
    o.slot_index = 0;
    Fling__Cluster__SlotOffer *po[] = {&o};
    Fling__Cluster__SlotOffers offers = FLING__CLUSTER__SLOT_OFFERS__INIT;
    offers.resource_id = "tm1";
    offers.offers = po;
    offers.n_offers = 1;
    assert_int_equal(
        FL_ESTATE,
        fl_test_call_code(jmg, (unsigned)fl_rpc_method_index(d, "OfferSlots"),
                          &offers.base, 5000, said, sizeof said));
    snprintf(msg, sizeof msg,
             "Slot offers of TaskManager tm1 refused: it is not registered "
             "at the JobMaster of job %s; register first",
             id);
    assert_string_equal(msg, said);
    fl_rpc_gateway_free(jmg);
    fl_rpc_service_free(svc);

    /* No slot serves twice: the job's four tasks run in tm2's four
     * slots, tm1's two are free. */
    r = jc_status(&c, id);
    assert_int_equal(JS(RUNNING), r->state);
    assert_int_equal(1, r->restarts);
    assert_int_equal(4, r->n_tasks);
    for (size_t i = 0; i < r->n_tasks; i++) {
        assert_int_equal(XS(RUNNING), r->tasks[i]->state);
        assert_int_equal(1, r->tasks[i]->attempt);
        assert_string_equal("tm2", r->tasks[i]->task_manager);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* The job FINISHES with grep -F's output. */
    release(&tm2, fifo2, "(attempt #1) switched from RUNNING to FINISHED.", 4);
    wait_job(&jm, id, "RUNNING", "FINISHED");
    r = jc_status(&c, id);
    assert_int_equal(JS(FINISHED), r->state);
    for (size_t i = 0; i < r->n_tasks; i++) {
        assert_int_equal(XS(FINISHED), r->tasks[i]->state);
        assert_int_equal(1, r->tasks[i]->attempt);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_dir(out, "part-0 part-1 part-2 part-3");
    tbuf_t grep = {0}, got = {0};
    run_grep("ab", input, &grep);
    tbuf_add(&grep, "", 0);
    concat_parts(out, 4, &got);
    assert_true(grep.len > 1000);
    assert_int_equal(grep.len, got.len);
    assert_memory_equal(grep.data, got.data, grep.len);
    tbuf_free(&grep);
    tbuf_free(&got);

    jc_close(&c);
    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&tm2, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    /* netns-pair.sh delete twice (the teardown's is a third): both end
     * well, and the pair is gone. */
    sh("%s delete %s", NETNS_PAIR, ns);
    sh("%s delete %s", NETNS_PAIR, ns);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s link show %s-h >/dev/null 2>&1", ip_prog, ns);
    assert_int_not_equal(0, system(cmd));
    free(fifo1);
    free(fifo2);
    free(out);
    free(input);
    free(job);
    rm_scratch(dir);
}

/* The case's alarm rings before ctest's TIMEOUT (finding: under the
 * sanitizers it rang at 180 s, after ctest's SIGKILL at 120 s). */
static void test_alarm_rings_before_ctest(void **state)
{
    (void)state;
    unsigned left = alarm(0);
    alarm(left);
    assert_true(left > 0);
    assert_true(left <= PART_ALARM_S);
    assert_true(PART_ALARM_S + 20 <= CTEST_TIMEOUT_S);
}

/* Runs `netns-pair.sh create <ns>b a b`, which must refuse with exit
 * status 3 and the message want (and make nothing); then, before any
 * assertion, the shell command undo unless NULL. */
static void expect_refused(const char *a, const char *b, const char *want,
                           const char *undo)
{
    char cmd[512], said[1024] = "", other[40];
    snprintf(other, sizeof other, "%sb", ns);
    snprintf(cmd, sizeof cmd, "%s create %s %s %s 2>&1", NETNS_PAIR, other, a,
             b);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    if (fgets(said, sizeof said, f) != NULL)
        said[strcspn(said, "\n")] = '\0';
    int st = pclose(f);
    /* Nothing of the refused namespace was made (deleted, in any case). */
    int made = netns_listed(other);
    snprintf(cmd, sizeof cmd, "%s delete %s", NETNS_PAIR, other);
    (void)!system(cmd);
    if (undo != NULL)
        (void)!system(undo);
    assert_int_equal(0, made);
    assert_true(WIFEXITED(st));
    assert_int_equal(3, WEXITSTATUS(st));
    assert_string_equal(want, said);
}

/* netns-pair.sh refuses an address of a network the host has, an address
 * or a route, with exit status 3 and what it overlaps. */
static void test_address_in_use_is_refused(void **state)
{
    (void)state;
    need_root();
    delete_stale_namespaces();
    ns_create();
    char a[64], b[64], want[1024];
    snprintf(a, sizeof a, "%s/30", host);
    snprintf(b, sizeof b, "%s/30", ns_addr);
    snprintf(want, sizeof want,
             "%s: address %s for namespace '%sb' is in use on this host: it "
             "overlaps address %s of %s-h; choose a free subnet, or give no "
             "addresses to have a free /30 picked",
             NETNS_PAIR, a, ns, a, ns);
    expect_refused(a, b, want, NULL);
    /* A route alone, in a table of this run's own (benchmark range
     * 198.18.0.0/15, which no address here has). */
    int table = 10000 + (int)(getpid() % 1000000);
    sh("%s route add blackhole 198.18.7.0/24 table %d", ip_prog, table);
    snprintf(want, sizeof want,
             "%s: address 198.18.7.5/30 for namespace '%sb' is in use on "
             "this host: it overlaps route 'blackhole 198.18.7.0/24 table "
             "%d'; choose a free subnet, or give no addresses to have a "
             "free /30 picked",
             NETNS_PAIR, ns, table);
    char undo[256];
    snprintf(undo, sizeof undo, "%s route del blackhole 198.18.7.0/24 table %d",
             ip_prog, table);
    expect_refused("198.18.7.5/30", "198.18.7.6/30", want, undo);
}

/* A child sets up as the partition case does, makes its namespace,
 * starts a process, says so on a pipe and waits; then either the test
 * sends it sig, or (sig 0) its alarm rings. It must end by `ends`, its
 * namespace and its process gone. */
static void check_cleanup(int sig, int ends)
{
    need_root();
    delete_stale_namespaces();
    int fds[2];
    assert_int_equal(0, pipe2(fds, O_CLOEXEC));
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        ns_setup(NULL);
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s create %s >/dev/null", NETNS_PAIR, ns);
        if (system(cmd) != 0)
            _exit(1);
        static cf_proc_t sleeper;
        const char *args[] = {"1000", NULL};
        cf_spawn(&sleeper, "sleep", "/bin/sleep", args);
        char msg[64];
        int len = snprintf(msg, sizeof msg, "%ld\n", (long)sleeper.pid);
        if (write(fds[1], msg, (size_t)len) != len)
            _exit(1);
        if (sig == 0)
            alarm(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    char name[32], got[64] = "";
    snprintf(name, sizeof name, "flpart%ld", (long)child);
    /* The child's pid line, then EOF when it has ended. */
    size_t len = 0;
    uint64_t deadline = cf_now_ms() + CF_WAIT_MS;
    bool eof = false, signalled = false;
    while (!eof && cf_now_ms() < deadline) {
        if (sig != 0 && !signalled && memchr(got, '\n', len) != NULL) {
            kill(child, sig);
            signalled = true;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t r = read(fds[0], got + len, sizeof got - 1 - len);
        eof = r <= 0;
        if (r > 0)
            len += (size_t)r;
    }
    close(fds[0]);
    if (!eof)
        kill(child, SIGKILL);
    int ws = 0;
    waitpid(child, &ws, 0);
    pid_t sleeper = (pid_t)atol(got);
    int left = netns_listed(name);
    bool sleeping = sleeper > 0 && runs(sleeper);
    /* Whatever the outcome, nothing stays behind. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s delete %s", NETNS_PAIR, name);
    (void)!system(cmd);
    if (sleeping)
        kill(sleeper, SIGKILL);
    assert_true(eof);
    assert_true(sleeper > 0);
    assert_true(WIFSIGNALED(ws));
    assert_int_equal(ends, WTERMSIG(ws));
    assert_int_not_equal(-1, left); /* ip netns list ran */
    if (left == 1)
        fail_msg("namespace %s left behind after signal %d", name, ends);
    if (sleeping)
        fail_msg("process %ld left running after signal %d", (long)sleeper,
                 ends);
}

static void test_sigterm_deletes_the_namespace(void **state)
{
    (void)state;
    check_cleanup(SIGTERM, SIGTERM);
}

static void test_alarm_deletes_the_namespace(void **state)
{
    (void)state;
    fprintf(stderr, "(a child's alarm rings below: expected)\n");
    check_cleanup(0, SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alarm_rings_before_ctest, ns_setup,
                                        ns_teardown),
        cmocka_unit_test_setup_teardown(test_address_in_use_is_refused,
                                        ns_setup, ns_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_deletes_the_namespace,
                                        ns_setup, ns_teardown),
        cmocka_unit_test_setup_teardown(test_alarm_deletes_the_namespace,
                                        ns_setup, ns_teardown),
        cmocka_unit_test_setup_teardown(test_silent_partition, ns_setup,
                                        ns_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
