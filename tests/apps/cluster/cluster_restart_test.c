/*
 * cluster_restart_test.c - the JobManager stops and comes back: its
 * TaskManagers learn of the stop from the ResourceManager's goodbye, keep
 * trying to register, and register with the JobManager started again on
 * the same port. A TaskManager that goes silent is dropped after
 * heartbeat.timeout and registers again once it wakes.
 */
#include "cluster_fixture.h"

#include "cluster_procs.h"
#include "fl_test.h"
#include "taskexecutor.pb-c.h"

/* Reads n app lines of jm and checks they are exactly the expected ones,
 * each once, "Registered" of a TaskManager before its slot report (the
 * TaskManagers race each other, so their lines interleave). */
static void expect_registrations(cf_proc_t *jm, const char *const *ids,
                                 const int *ports, size_t n)
{
    bool seen_reg[8] = {false}, seen_rep[8] = {false};
    for (size_t k = 0; k < 2 * n; k++) {
        char line[1024];
        cf_next_app(jm, line, sizeof line);
        bool matched = false;
        for (size_t i = 0; i < n && !matched; i++) {
            char reg[512], rep[512];
            snprintf(reg, sizeof reg,
                     "Registered TaskManager %s at "
                     "fling.tcp://127.0.0.1:%d/taskexecutor with 2 slots",
                     ids[i], ports[i]);
            snprintf(rep, sizeof rep,
                     "Slot report of TaskManager %s: 2 slots, 2 free", ids[i]);
            if (!seen_reg[i] && strcmp(line, reg) == 0)
                matched = seen_reg[i] = true;
            else if (seen_reg[i] && !seen_rep[i] && strcmp(line, rep) == 0)
                matched = seen_rep[i] = true;
        }
        if (!matched)
            fail_msg("jm: unexpected line: %s", line);
    }
}

static void test_taskmanagers_come_back_to_a_restarted_jobmanager(void **state)
{
    (void)state;
    static cf_proc_t jm, jm2, tm1, tm2;
    int port = start_jm(&jm, "0");
    int p1 = start_tm(&tm1, &jm, "tm1", port);
    int p2 = start_tm(&tm2, &jm, "tm2", port);

    cf_stop(&jm, SIGTERM, 0);
    static cf_proc_t *tms[] = {&tm1, &tm2};
    for (size_t i = 0; i < 2; i++) {
        cf_expect_app(tms[i],
                      "ResourceManager "
                      "fling.tcp://127.0.0.1:%d/resourcemanager_1 lost: it "
                      "disconnected this TaskManager (the JobManager is "
                      "shutting down); registering again",
                      port);
        /* They keep trying while nothing listens there. */
        cf_wait_stderr(tms[i], "could not connect: ", 3);
    }

    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    start_jm(&jm2, ports);
    for (size_t i = 0; i < 2; i++)
        cf_expect_app(tms[i],
                      "Registered at ResourceManager "
                      "fling.tcp://127.0.0.1:%d/resourcemanager_1 as tm%zu",
                      port, i + 1);
    static const char *const ids[] = {"tm1", "tm2"};
    const int tm_ports[] = {p1, p2};
    expect_registrations(&jm2, ids, tm_ports, 2);

    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&tm2, SIGTERM, 0);
    cf_stop(&jm2, SIGTERM, 0);
}

/* A TaskManager frozen (SIGSTOP) longer than heartbeat.timeout: the
 * ResourceManager drops it and tells it so; thawed (SIGCONT), it learns
 * it (from that or from its own heartbeat timeout, whichever it sees
 * first) and registers again. */
static void test_silent_taskmanager_times_out_and_registers_again(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    int port = start_jm(&jm, "0");
    int p1 = start_tm(&tm1, &jm, "tm1", port);

    kill(tm1.pid, SIGSTOP);
    cf_expect_app(&jm, "TaskManager tm1 lost: heartbeat timed out");
    kill(tm1.pid, SIGCONT);

    char line[1024], told[512], own[512];
    snprintf(told, sizeof told,
             "ResourceManager fling.tcp://127.0.0.1:%d/resourcemanager_1 lost: "
             "it disconnected this TaskManager (TaskManager tm1 lost: "
             "heartbeat timed out); registering again",
             port);
    snprintf(own, sizeof own,
             "ResourceManager fling.tcp://127.0.0.1:%d/resourcemanager_1 lost: "
             "heartbeat timed out; registering again",
             port);
    cf_next_app(&tm1, line, sizeof line);
    if (strcmp(line, told) != 0 && strcmp(line, own) != 0)
        fail_msg("tm1: expected\n  %s\nor\n  %s\ngot\n  %s", told, own, line);
    cf_expect_app(&tm1,
                  "Registered at ResourceManager "
                  "fling.tcp://127.0.0.1:%d/resourcemanager_1 as tm1",
                  port);
    static const char *const ids[] = {"tm1"};
    const int tm_ports[] = {p1};
    expect_registrations(&jm, ids, tm_ports, 1);
    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
}

/* A heartbeat request whose timing tm1 refuses (an interval longer than
 * its heartbeat.timeout) is no unreachable ResourceManager: tm1 logs the
 * refusal as the reason it registers again. */
static void test_refused_heartbeat_is_not_called_unreachable(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    int port = start_jm(&jm, "0");
    int p1 = start_tm(&tm1, &jm, "tm1", port);
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    char address[128], rm[128];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/taskexecutor",
             p1);
    snprintf(rm, sizeof rm, "fling.tcp://127.0.0.1:%d/resourcemanager_1", port);
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__task_executor_gateway__descriptor;
    fl_rpc_gateway_t *gw = fl_test_connect(svc, address, d, NULL);
    Fling__Cluster__HeartbeatTiming timing =
        FLING__CLUSTER__HEARTBEAT_TIMING__INIT;
    timing.interval_ms = 10000;
    timing.timeout_ms = 50000;
    Fling__Cluster__Heartbeat hb = FLING__CLUSTER__HEARTBEAT__INIT;
    hb.origin = rm;
    hb.target = "tm1";
    hb.timing = &timing;
    char msg[1024];
    assert_int_equal(FL_EINVAL,
                     fl_test_call_code(gw,
                                       (unsigned)fl_rpc_method_index(
                                           d, "HeartbeatFromResourceManager"),
                                       &hb.base, 5000, msg, sizeof msg));
    char want[1024];
    snprintf(want, sizeof want,
             "Heartbeats with '%s' refused: its heartbeat interval 10000 ms "
             "is longer than our heartbeat timeout 3000 ms, so we would time "
             "it out between two heartbeats; make heartbeat.timeout at least "
             "heartbeat.interval on both sides",
             rm);
    assert_string_equal(want, msg);
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);
    cf_expect_app(&tm1, "ResourceManager %s lost: %s; registering again", rm,
                  want);
    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_taskmanagers_come_back_to_a_restarted_jobmanager),
        CF_TEST(test_silent_taskmanager_times_out_and_registers_again),
        CF_TEST(test_refused_heartbeat_is_not_called_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
