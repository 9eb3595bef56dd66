/*
 * cluster_lost_tm_test.c - the JobMaster and a TaskManager it loses
 * (issue 17, contract section 4): a SubmitTask whose connection went
 * away keeps the restart off that TaskManager, and a TaskManager the
 * JobMaster counts lost is told so (DisconnectJobManager), at the loss
 * and at each offer it makes after. Played by fake_te.h and a real
 * TaskManager, synchronised on the fake's calls and the programs' logs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../task/task_fixture.h"
#include "fake_te.h"
#include "job_client.h"
#include "sevens_job.h"

#define XS(x) FLING__CLUSTER__EXECUTION_STATE__STATE__##x
#define JS(x) FLING__CLUSTER__JOB_STATUS__STATE__##x

/* The fake (one slot) and tm2 (two) give the job its slots; the
 * SubmitTask to the fake is held, and the fake's service shut down: the
 * call fails FL_EUNREACHABLE. The job restarts (once, 10 ms later) only
 * on tm2, once the fake is lost, and FINISHES with its exact output;
 * without the fix it went back to the fake's slot and failed. */
static void test_unreachable_deploy_restarts_elsewhere(void **state)
{
    (void)state;
    static cf_proc_t jm, tm2;
    static fake_te_t te;
    jc_t c = {0};
    int port =
        start_jm_opt(&jm, "0", "restart-strategy.fixed-delay.delay=10 ms");
    ft_start(&te, &jm, port, REPORT_HONEST);
    te.hold_submit = true;
    char *dir = scratch();
    char *job = sevens_job_write(dir, 2), *out = path_in(dir, "out");
    jc_open(&c, port);
    const char *args[] = {"output", out, NULL};
    char id[64];
    assert_fl_ok(jc_submit(&c, job, args, 0, "", id, sizeof id));
    cf_wait_stderr(&jm, "Requested slot 0 of TaskManager fake for job ", 1);
    start_tm(&tm2, &jm, "tm2", port);
    ft_take_slot(&te);
    char task[128];
    pthread_mutex_lock(&te.mu);
    snprintf(task, sizeof task, "%s", te.names[0]);
    pthread_mutex_unlock(&te.mu);
    int te_port = fl_rpc_service_port(te.svc);
    assert_fl_ok(fl_rpc_service_shutdown(te.svc));

    char line[1400];
    snprintf(line, sizeof line,
             "Job sevens (%s) switched from state RUNNING to RESTARTING.", id);
    cf_wait_stderr(&jm, line, 1);
    snprintf(line, sizeof line,
             "Restarting job sevens (%s) in 10 ms (restart 1 of 1): Could not "
             "deploy %s: recipient unreachable: connection to 127.0.0.1:%d "
             "lost: the peer closed the connection",
             id, task, te_port);
    cf_wait_stderr(&jm, line, 1);
    /* Lost at the ResourceManager and at the JobMaster. */
    cf_wait_stderr(&jm, "TaskManager fake lost: heartbeat target unreachable",
                   2);
    snprintf(line, sizeof line,
             "Job sevens (%s) switched from state RUNNING to FINISHED.", id);
    cf_wait_stderr(&jm, line, 1);

    Fling__Cluster__JobStatusReply *r = jc_status(&c, id);
    assert_int_equal(JS(FINISHED), r->state);
    assert_int_equal(1, r->restarts);
    assert_int_equal(2, r->n_tasks);
    for (size_t i = 0; i < r->n_tasks; i++) {
        assert_int_equal(1, r->tasks[i]->attempt);
        assert_int_equal(XS(FINISHED), r->tasks[i]->state);
        assert_string_equal("tm2", r->tasks[i]->task_manager);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    sevens_job_assert_output(out, 2);
    jc_close(&c);
    ft_end(&te);
    cf_stop(&tm2, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    free(job);
    free(out);
    rm_scratch(dir);
}

/* The job: one task that would count to 10^12 (the fake runs nothing). */
static const char long_text[] =
    "{\"name\": \"long\", \"parallelism\": 1, \"operators\": ["
    " {\"id\": \"n\", \"type\": \"source.sequence\","
    "  \"params\": {\"from\": \"1\", \"to\": \"1000000000000\"}},"
    " {\"id\": \"out\", \"type\": \"sink.text\","
    "  \"params\": {\"path\": \"/nonexistent/out\"}}]}";

/* The fake stops answering the JobMaster's heartbeats: the JobMaster
 * loses it and tells it so; a slot offer it makes after is refused and
 * it is told again, so that it frees the job's slots and registers again
 * instead of offering over and over. */
static void test_lost_taskmanager_is_told(void **state)
{
    (void)state;
    static cf_proc_t jm;
    static fake_te_t te;
    jc_t c = {0};
    int port = start_jm(&jm, "0");
    ft_start(&te, &jm, port, REPORT_HONEST);
    char *dir = scratch();
    char *job = path_in(dir, "long.json");
    write_file(job, long_text, strlen(long_text));
    jc_open(&c, port);
    const char *args[] = {NULL};
    char id[64];
    assert_fl_ok(jc_submit(&c, job, args, 0, "", id, sizeof id));
    ft_take_slot(&te);
    pthread_mutex_lock(&te.mu);
    te.silent = true;
    pthread_mutex_unlock(&te.mu);

    cf_wait_stderr(&jm, "TaskManager fake lost: heartbeat timed out", 1);
    fl_test_latch_await(te.disconnect[0]);
    char want[1400];
    snprintf(want, sizeof want,
             "%s: the JobMaster of job %s lost this TaskManager: heartbeat "
             "timed out",
             id, id);
    pthread_mutex_lock(&te.mu);
    assert_string_equal(want, te.disconnects[0]);
    pthread_mutex_unlock(&te.mu);

    Fling__Cluster__SlotOffer o = FLING__CLUSTER__SLOT_OFFER__INIT;
    o.allocation_id = te.alloc;
    Fling__Cluster__SlotOffer *po = &o;
    Fling__Cluster__SlotOffers offers = FLING__CLUSTER__SLOT_OFFERS__INIT;
    offers.resource_id = FT_ID;
    offers.offers = &po;
    offers.n_offers = 1;
    const ProtobufCServiceDescriptor *d =
        &fling__cluster__job_master_gateway__descriptor;
    char msg[1024];
    assert_int_equal(
        FL_ESTATE,
        fl_test_call_code(te.jm, (unsigned)fl_rpc_method_index(d, "OfferSlots"),
                          &offers.base, 5000, msg, sizeof msg));
    snprintf(want, sizeof want,
             "Slot offers of TaskManager fake refused: it is not registered "
             "at the JobMaster of job %s; register first",
             id);
    assert_string_equal(want, msg);
    fl_test_latch_await(te.disconnect[1]);
    snprintf(want, sizeof want,
             "%s: the JobMaster of job %s lost this TaskManager earlier; "
             "register again",
             id, id);
    pthread_mutex_lock(&te.mu);
    assert_string_equal(want, te.disconnects[1]);
    pthread_mutex_unlock(&te.mu);
    jc_close(&c);
    ft_end(&te);
    cf_stop(&jm, SIGTERM, 0);
    free(job);
    rm_scratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_unreachable_deploy_restarts_elsewhere),
        CF_TEST(test_lost_taskmanager_is_told),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
