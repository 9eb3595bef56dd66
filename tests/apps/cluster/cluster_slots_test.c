/*
 * cluster_slots_test.c - the ResourceManager's slot table follows the
 * TaskManagers' slot reports (issue 17, contract section 4 steps 12-13):
 * a TaskManager the ResourceManager dropped while its slot stays taken
 * registers again, and the ResourceManager takes the allocation its
 * report shows instead of asking for slots the JobMaster has already.
 * Synchronised on the processes' log lines and a FIFO the job's user
 * function reads.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "held_job.h"
#include "job_client.h"
#include "resourcemanager.pb-c.h"

/* The ResourceManager drops tm1 (a heartbeat answer of tm1 with a timeout
 * shorter than its interval: incompatible) while tm1's task holds its
 * slot; tm1 registers again, the ResourceManager takes slot 0 as tm1's
 * report shows it, requests no slot, and the job FINISHES with its
 * output once the task goes on. */
static void test_registered_again_keeps_its_slots(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    held_job_t h;
    held_job_write(&h, "held", "3");
    int port = start_jm(&jm, "0");
    setenv("HOLD_FIFO", h.fifo, 1);
    int tm_port = start_tm(&tm1, &jm, "tm1", port);
    unsetenv("HOLD_FIFO");
    jc_t c = {0};
    jc_open(&c, port);
    const char *args[] = {NULL};
    char id[1024];
    assert_fl_ok(jc_submit(&c, h.job, args, 0, "", id, sizeof id));
    /* The allocation of slot 0, then the report showing it taken. */
    char line[2048], alloc[64] = "", want[2048];
    snprintf(want, sizeof want,
             "Requested slot 0 of TaskManager tm1 for job %s (allocation ", id);
    while (alloc[0] == '\0') {
        cf_next_app(&jm, line, sizeof line);
        if (strncmp(line, want, strlen(want)) == 0)
            snprintf(alloc, sizeof alloc, "%.32s", line + strlen(want));
    }
    cf_wait_stderr(&jm, "Slot report of TaskManager tm1: 2 slots, 1 free", 1);
    /* Returns once hold_open opened the FIFO: the task then reads until
     * the close below. */
    int fd = held_job_open(&h);

    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    char address[128];
    snprintf(address, sizeof address,
             "fling.tcp://127.0.0.1:%d/resourcemanager_1", port);
    fl_fencing_token_t zero = {{0}};
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__resource_manager_gateway__descriptor;
    fl_rpc_gateway_t *gw = fl_test_connect(svc, address, d, &zero);
    Fling__Cluster__HeartbeatTiming timing =
        FLING__CLUSTER__HEARTBEAT_TIMING__INIT;
    timing.interval_ms = 200;
    timing.timeout_ms = 100;
    Fling__Cluster__Heartbeat hb = FLING__CLUSTER__HEARTBEAT__INIT;
    hb.origin = "tm1";
    hb.target = "";
    hb.timing = &timing;
    char msg[1024];
    assert_int_equal(
        FL_EINVAL,
        fl_test_call_code(
            gw, (unsigned)fl_rpc_method_index(d, "HeartbeatFromTaskManager"),
            &hb.base, 5000, msg, sizeof msg));
    fl_rpc_gateway_free(gw);
    fl_rpc_service_free(svc);

    cf_expect_app(&jm, "TaskManager tm1 lost: %s", msg);
    cf_expect_app(&jm,
                  "Registered TaskManager tm1 at "
                  "fling.tcp://127.0.0.1:%d/taskexecutor with 2 slots",
                  tm_port);
    cf_expect_app(&jm,
                  "Slot 0 of TaskManager tm1 is allocated to job %s "
                  "(allocation %s) as its report shows",
                  id, alloc);
    cf_expect_app(&jm, "Slot report of TaskManager tm1: 2 slots, 1 free");
    /* The task goes on: the job FINISHES, with no slot requested. */
    close(fd);
    snprintf(want, sizeof want,
             "Job held (%s) switched from state RUNNING to FINISHED.", id);
    for (;;) {
        cf_next_app(&jm, line, sizeof line);
        assert_null(strstr(line, "Requested slot"));
        if (strcmp(line, want) == 0)
            break;
    }
    tbuf_t names = {0};
    list_dir(h.out, &names);
    assert_string_equal("part-0", names.data);
    tbuf_free(&names);
    char *part = path_in(h.out, "part-0");
    tbuf_t data = {0};
    read_file(part, &data);
    assert_string_equal("1\n2\n3\n", data.data);
    tbuf_free(&data);
    free(part);
    jc_close(&c);
    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    held_job_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_registered_again_keeps_its_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
