/*
 * heartbeat_test.c - the heartbeat manager (include/fling/heartbeat.h,
 * contract 3.3): two endpoints of one service, "sender" and "receiver",
 * each with a manager, heartbeating through the gateway of
 * heartbeat_gateways.proto with short intervals. Every wait is on an event
 * (a counter the callbacks raise), bounded by WAIT_MS.
 */
#include "heartbeat_fixture.h"

#include "oom_fixture.h"

/* ---- the cases -----------------------------------------------------------
 */

/* The heartbeat timeout of the cases that wait for a timeout or for its
 * absence, with rounds every 20 ms: 75 rounds, so that a stall of a
 * loaded machine does not time a live target out, the witness included
 * (under TSan with both cores busy, 118 ms between two rounds was seen,
 * and 735 ms with a build on top). */
#define TIMEOUT_MS 1500
/* The witness's rounds in two timeouts. */
#define TWO_TIMEOUTS (2 * TIMEOUT_MS / 20)

/* Heartbeats flow both ways, each carrying the payload retrieved for its
 * target, and both sides see the other's last heartbeat; over TCP the
 * endpoints call each other through 127.0.0.1. */
static void test_flow_with_payloads(void **state)
{
    (void)state;
    pair_t p;
    int64_t t0 = wall_ms();
    pair_start(&p, 20, 2000, 20, 2000, true);
    assert_string_equal(fl_rpc_endpoint_address(p.r.ep),
                        tep_address(p.svc, "receiver").s);
    wait_count(&p.r, &p.r.nreports, 3, "reports");
    wait_count(&p.s, &p.s.nreports, 3, "reports");
    pthread_mutex_lock(&p.r.mu);
    assert_string_equal(p.r.last_payload, "sender-to-receiver");
    assert_string_equal(p.r.last_origin, "sender");
    pthread_mutex_unlock(&p.r.mu);
    pthread_mutex_lock(&p.s.mu);
    assert_string_equal(p.s.last_payload, "receiver-to-sender");
    assert_string_equal(p.s.last_origin, "receiver");
    pthread_mutex_unlock(&p.s.mu);
    int64_t rs = last_from(&p.r, "sender"), sr = last_from(&p.s, "receiver");
    int64_t t1 = wall_ms();
    assert_true(rs >= t0 && rs <= t1);
    assert_true(sr >= t0 && sr <= t1);
    assert_int_equal(count_of(&p.s, &p.s.ntimeouts), 0);
    assert_int_equal(count_of(&p.r, &p.r.ntimeouts), 0);
    assert_int_equal(count_of(&p.s, &p.s.nincompatible), 0);
    pair_end(&p);
}

/* The expected timeout message for ev. */
static void timeout_message(char *buf, size_t len, const ev_copy_t *ev)
{
    if (ev->last_heartbeat_ms != 0) {
        char at[48];
        iso(at, sizeof at, ev->last_heartbeat_ms);
        snprintf(buf, len,
                 "Heartbeat of '%s' timed out: last heard from %lld ms ago "
                 "(at %s), the timeout is %lld ms; check that it is alive "
                 "and reachable, or raise heartbeat.timeout",
                 ev->target, (long long)ev->silent_ms, at,
                 (long long)ev->timeout_ms);
    } else {
        snprintf(buf, len,
                 "Heartbeat of '%s' timed out: never heard from in the %lld "
                 "ms since it was monitored, the timeout is %lld ms; check "
                 "that it is alive and reachable, or raise heartbeat.timeout",
                 ev->target, (long long)ev->silent_ms,
                 (long long)ev->timeout_ms);
    }
}

static void assert_timeout(node_t *n, const char *target, int64_t last)
{
    pthread_mutex_lock(&n->mu);
    ev_copy_t ev = n->timeout;
    pthread_mutex_unlock(&n->mu);
    char want[1024];
    timeout_message(want, sizeof want, &ev);
    assert_string_equal(ev.message, want);
    assert_string_equal(ev.target, target);
    assert_fl(FL_ETIMEDOUT, ev.err);
    assert_int_equal(ev.timeout_ms, TIMEOUT_MS);
    assert_int_equal(ev.last_heartbeat_ms, last);
    /* Silent for the timeout, and found late by at most a check period
     * plus scheduling. */
    assert_true(ev.silent_ms >= TIMEOUT_MS);
    assert_true(ev.silent_ms < TIMEOUT_MS + 5000);
}

/* A receiver that stops answering times out on the sender, and the sender
 * on the receiver, once each, with who, when and how long in the message. */
static void test_timeout_once(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, 20, TIMEOUT_MS, 20, TIMEOUT_MS, true);
    assert_fl_ok(do_job(&p.s, job_monitor_witness, NULL));
    wait_count(&p.s, &p.s.nreports, 2, "reports");
    atomic_store(&p.r.mute, 1);
    wait_count(&p.s, &p.s.ntimeouts, 1, "timeouts");
    wait_count(&p.r, &p.r.ntimeouts, 1, "timeouts");
    assert_timeout(&p.s, "receiver", last_from(&p.s, "receiver"));
    assert_timeout(&p.r, "sender", last_from(&p.r, "sender"));
    assert_true(last_from(&p.s, "receiver") > 0);
    /* Rounds for two more timeouts: no second timeout. */
    wait_witness(&p.s, TWO_TIMEOUTS);
    assert_int_equal(count_of(&p.s, &p.s.ntimeouts), 1);
    assert_int_equal(count_of(&p.r, &p.r.ntimeouts), 1);
    pair_end(&p);
}

/* A target never heard from times out with "never heard from". */
static void test_timeout_never_heard(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, 20, TIMEOUT_MS, 20, TIMEOUT_MS, false);
    wait_count(&p.r, &p.r.ntimeouts, 1, "timeouts");
    assert_timeout(&p.r, "sender", 0);
    assert_int_equal(last_from(&p.r, "sender"), 0);
    pair_end(&p);
}

/* The timeout of test_late_heartbeat: the time a job holds a main thread. */
#define LATE_MS 200

/* On its node's main thread: monitors "late" (the fake, answering S),
 * holds the main thread past the target's deadline so that no check can
 * run, then hands in a heartbeat from "late" (a request on a receiver, a
 * response on a sender). value: the timeouts that came meanwhile. */
static int job_late(job_t *j)
{
    node_t *n = j->n;
    snprintf(n->script, sizeof n->script, "SSSS");
    int before = count_of(n, &n->ntimeouts);
    uint64_t deadline = fl_clock_now_ns() + (uint64_t)LATE_MS * 1000000u;
    int rc = fl_heartbeat_monitor(n->m, "late", send_fake, n, NULL);
    if (rc != FL_OK)
        return rc;
    /* The fault itself (a paused process): not a synchronisation. */
    while (fl_clock_now_ns() <= deadline) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    fl_heartbeat_msg_t msg = {.origin = "late", .target = n->name};
    rc = n->role == FL_HEARTBEAT_RECEIVER
             ? fl_heartbeat_receive_request(n->m, &msg, j->err, sizeof j->err)
             : fl_heartbeat_receive_response(n->m, &msg, j->err, sizeof j->err);
    j->value = count_of(n, &n->ntimeouts) - before;
    return rc;
}

/* A heartbeat handled after its target's deadline, before any check ran
 * (a paused process runs both at once, in any order), times the target
 * out first, as the check would have: on a receiver (a request) and on a
 * sender (a response), the timeout comes within the heartbeat's call. */
static void test_late_heartbeat(void **state)
{
    (void)state;
    pair_t p;
    pair_nodes(&p);
    node_t *nodes[] = {&p.r, &p.s};
    for (size_t i = 0; i < 2; i++) {
        node_t *n = nodes[i];
        fl_heartbeat_opts_t o = opts_of(n, 20, LATE_MS);
        job_t j = {.n = n, .fn = job_alloc, .opts = &o};
        on_main(&j);
        assert_fl_ok(j.rc);
        j = (job_t){.n = n, .fn = job_late};
        on_main(&j);
        assert_fl_ok(j.rc);
        assert_string_equal(j.err, "");
        assert_int_equal(j.value, 1);
        pthread_mutex_lock(&n->mu);
        ev_copy_t ev = n->timeout;
        pthread_mutex_unlock(&n->mu);
        char want[1024];
        timeout_message(want, sizeof want, &ev);
        assert_string_equal(ev.message, want);
        assert_string_equal(ev.target, "late");
        assert_fl(FL_ETIMEDOUT, ev.err);
        assert_int_equal(ev.timeout_ms, LATE_MS);
        assert_int_equal(ev.last_heartbeat_ms, 0);
        assert_true(ev.silent_ms >= LATE_MS);
    }
    pair_end(&p);
}

/* Unmonitored targets are forgotten: no timeout, last heartbeat -1, and
 * their send_arg is freed. */
static void test_unmonitor(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, 20, TIMEOUT_MS, 20, TIMEOUT_MS, true);
    assert_fl_ok(do_job(&p.s, job_monitor_witness, NULL));
    wait_count(&p.s, &p.s.nreports, 2, "reports");
    assert_fl_ok(do_job(&p.s, job_unmonitor, "receiver"));
    assert_fl_ok(do_job(&p.r, job_unmonitor, "sender"));
    assert_int_equal(atomic_load(&p.s.arg_frees), 1);
    assert_int_equal(atomic_load(&p.r.arg_frees), 1);
    assert_fl(FL_ENOENT, do_job(&p.s, job_unmonitor, "receiver"));
    assert_int_equal(last_from(&p.s, "receiver"), -1);
    assert_int_equal(last_from(&p.r, "sender"), -1);
    int sends = atomic_load(&p.s.sends);
    wait_witness(&p.s, TWO_TIMEOUTS); /* two timeouts of rounds */
    assert_int_equal(count_of(&p.s, &p.s.ntimeouts), 0);
    assert_int_equal(count_of(&p.r, &p.r.ntimeouts), 0);
    assert_int_equal(atomic_load(&p.s.sends), sends);
    pair_end(&p);
}

/* FL_EUNREACHABLE failures count, a success resets the count, other
 * failures do neither: U O S U O U reaches 2 at the sixth call, once. */
static void test_unreachable_threshold(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, 20, 5000, 20, 5000, false);
    snprintf(p.s.script, sizeof p.s.script, "UOSUOU");
    assert_fl_ok(do_job(&p.s, job_monitor_witness, NULL));
    assert_fl_ok(do_job(&p.s, job_monitor_fake, NULL));
    wait_count(&p.s, &p.s.nunreachable, 1, "unreachable");
    pthread_mutex_lock(&p.s.mu);
    ev_copy_t ev = p.s.unreachable;
    int at = p.s.unreachable_at;
    pthread_mutex_unlock(&p.s.mu);
    assert_int_equal(at, 6);
    assert_string_equal(ev.target, "fake");
    assert_fl(FL_EUNREACHABLE, ev.err);
    assert_string_equal(ev.message,
                        "Heartbeat target 'fake' is unreachable: 2 heartbeat "
                        "calls in a row failed, the last with: recipient "
                        "unreachable: fake #6");
    assert_int_equal(ev.last_heartbeat_ms, 0);
    /* No more calls to it, no second event. */
    wait_witness(&p.s, 10);
    assert_int_equal(atomic_load(&p.s.fake_sends), 6);
    assert_int_equal(count_of(&p.s, &p.s.nunreachable), 1);
    assert_int_equal(count_of(&p.s, &p.s.ntimeouts), 0);
    pair_end(&p);
}

static int job_alloc_disabled(job_t *j)
{
    fl_heartbeat_opts_t o = opts_of(j->n, 20, 5000);
    o.failure_threshold = -1;
    return fl_heartbeat_manager_alloc(j->n->ep, &o, &j->n->m, j->err,
                                      sizeof j->err);
}

/* Threshold -1: failures never make a target unreachable. */
static void test_unreachable_disabled(void **state)
{
    (void)state;
    pair_t p;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &p.svc));
    node_init(&p, &p.s, "sender", FL_HEARTBEAT_SENDER);
    node_init(&p, &p.r, "receiver", FL_HEARTBEAT_RECEIVER);
    assert_fl_ok(do_job(&p.s, job_alloc_disabled, NULL));
    assert_fl_ok(do_job(&p.s, job_monitor_witness, NULL));
    assert_fl_ok(do_job(&p.s, job_monitor_fake, NULL)); /* all U */
    wait_witness(&p.s, 10);
    assert_true(atomic_load(&p.s.fake_sends) >= 5);
    assert_int_equal(count_of(&p.s, &p.s.nunreachable), 0);
    pair_end(&p);
}

/* A real unreachable peer: the receiver's endpoint terminates, the
 * sender's requests fail with FL_EUNREACHABLE, twice, then once the event. */
static void test_unreachable_terminated_peer(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, 20, 5000, 20, 5000, true);
    wait_count(&p.s, &p.s.nreports, 2, "reports");
    do_job(&p.r, job_free, NULL);
    fl_future_t *f = fl_rpc_endpoint_close(p.r.ep);
    fl_test_future_ok(f, "receiver close");
    fl_future_release(f);
    wait_count(&p.s, &p.s.nunreachable, 1, "unreachable");
    pthread_mutex_lock(&p.s.mu);
    ev_copy_t ev = p.s.unreachable;
    pthread_mutex_unlock(&p.s.mu);
    assert_string_equal(ev.target, "receiver");
    assert_string_equal(
        ev.message,
        "Heartbeat target 'receiver' is unreachable: 2 heartbeat calls in a "
        "row failed, the last with: recipient unreachable: rpc endpoint "
        "'receiver' has terminated (hbtest.HeartbeatGateway.RequestHeartbeat "
        "not delivered)");
    pair_end(&p);
}

/* -1 unknown, 0 monitored but never heard, then the wall-clock time. */
static void test_last_heartbeat(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, 20, 2000, 20, 2000, false);
    assert_int_equal(last_from(&p.r, "sender"), 0);
    assert_int_equal(last_from(&p.r, "nobody"), -1);
    assert_int_equal(last_from(&p.s, "receiver"), -1);
    int64_t t0 = wall_ms();
    assert_fl_ok(do_job(&p.s, job_monitor_peer, "receiver"));
    assert_fl(FL_EEXIST, do_job(&p.s, job_monitor_peer, "receiver"));
    assert_int_equal(atomic_load(&p.s.arg_frees), 1); /* the refused one */
    wait_count(&p.s, &p.s.nreports, 1, "reports");
    int64_t v = last_from(&p.s, "receiver");
    assert_true(v >= t0 && v <= wall_ms());
    pair_end(&p);
}

/* The sender's interval is longer than the receiver's timeout: both sides
 * refuse the pair at once, each with its own side of the story. */
static void test_incompatible_timing(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, 200, 1000, 20, 100, true);
    wait_count(&p.r, &p.r.nincompatible, 1, "incompatible");
    wait_count(&p.s, &p.s.nincompatible, 1, "incompatible");
    pthread_mutex_lock(&p.r.mu);
    ev_copy_t rev = p.r.incompatible;
    pthread_mutex_unlock(&p.r.mu);
    pthread_mutex_lock(&p.s.mu);
    ev_copy_t sev = p.s.incompatible;
    pthread_mutex_unlock(&p.s.mu);
    assert_fl(FL_EINVAL, rev.err);
    assert_fl(FL_EINVAL, sev.err);
    assert_string_equal(
        rev.message,
        "Heartbeats with 'sender' refused: its heartbeat interval 200 ms is "
        "longer than our heartbeat timeout 100 ms, so we would time it out "
        "between two heartbeats; make heartbeat.timeout at least "
        "heartbeat.interval on both sides");
    assert_string_equal(
        sev.message,
        "Heartbeats with 'receiver' refused: its heartbeat timeout 100 ms is "
        "shorter than our heartbeat interval 200 ms, so it would time us out "
        "between two heartbeats; make heartbeat.timeout at least "
        "heartbeat.interval on both sides");
    pair_end(&p);
}

static int job_alloc_bad(job_t *j)
{
    return fl_heartbeat_manager_alloc(j->n->ep, j->opts, &j->n->m, j->err,
                                      sizeof j->err);
}

static void expect_refused(node_t *n, fl_heartbeat_opts_t o, const char *why)
{
    job_t j = {.n = n, .fn = job_alloc_bad, .opts = &o};
    on_main(&j);
    assert_fl(FL_EINVAL, j.rc);
    assert_null(n->m);
    assert_string_equal(j.err, why);
}

/* Options are validated, and 0 means Flink's defaults. */
static void test_validation_and_defaults(void **state)
{
    (void)state;
    pair_t p;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &p.svc));
    node_init(&p, &p.s, "sender", FL_HEARTBEAT_SENDER);
    node_init(&p, &p.r, "receiver", FL_HEARTBEAT_RECEIVER);
    expect_refused(&p.s, opts_of(&p.s, 200, 100),
                   "heartbeat interval 200 ms is longer than the heartbeat "
                   "timeout 100 ms; the interval must be at most the timeout");
    expect_refused(&p.s, opts_of(&p.s, -5, 100),
                   "heartbeat interval -5 ms is invalid; it must be above 0");
    fl_heartbeat_opts_t o = opts_of(&p.s, 10, 100);
    o.failure_threshold = -2;
    expect_refused(&p.s, o,
                   "heartbeat rpc failure threshold -2 is invalid; it must be "
                   "above 0, or -1 to disable it");
    o = opts_of(&p.s, 0, 0);
    job_t j = {.n = &p.s, .fn = job_alloc, .opts = &o};
    on_main(&j);
    assert_fl_ok(j.rc);
    fl_heartbeat_timing_t tm = fl_heartbeat_manager_timing(p.s.m);
    assert_int_equal(tm.interval_ms, 10000);
    assert_int_equal(tm.timeout_ms, 50000);
    assert_string_equal(fl_heartbeat_manager_id(p.s.m), "sender");
    pair_end(&p);
}

static int job_monitor_after_stop(job_t *j)
{
    return fl_heartbeat_monitor(j->n->m, "late", send_real, j->n, count_free);
}

/* stop forgets every target (their send_arg freed), sends nothing more
 * and refuses new work; the receiver then times the sender out. */
static void test_stop(void **state)
{
    (void)state;
    pair_t p;
    pair_start(&p, 20, TIMEOUT_MS, 20, TIMEOUT_MS, true);
    wait_count(&p.r, &p.r.nreports, 2, "reports");
    assert_fl_ok(do_job(&p.s, job_stop, NULL));
    assert_int_equal(atomic_load(&p.s.arg_frees), 1);
    int sends = atomic_load(&p.s.sends);
    assert_fl_ok(do_job(&p.s, job_stop, NULL));
    assert_fl(FL_ECLOSED, do_job(&p.s, job_monitor_after_stop, NULL));
    assert_int_equal(atomic_load(&p.s.arg_frees), 2); /* consumed anyway */
    assert_fl(FL_ECLOSED, do_job(&p.s, job_unmonitor, "receiver"));
    assert_int_equal(last_from(&p.s, "receiver"), -1);
    wait_count(&p.r, &p.r.ntimeouts, 1, "timeouts");
    assert_int_equal(atomic_load(&p.s.sends), sends);
    assert_int_equal(count_of(&p.s, &p.s.ntimeouts), 0);
    pair_end(&p);
}

/* ---- out of memory --------------------------------------------------------
 */

/* The allocations of another thread, made while a job ran armed, that
 * failed or were not made (no thread). */
static atomic_int elsewhere_failed;

/* Allocates through fling's seam (a message too big for the pools), as a
 * timer, the other node or the test's thread may while a job runs. */
static void *alloc_elsewhere(void *arg)
{
    (void)arg;
    fl_msg_t *m = fl_msg_alloc(0, 1 << 16);
    if (m == NULL)
        atomic_fetch_add(&elsewhere_failed, 1);
    fl_msg_free(m);
    return NULL;
}

/* Runs inner with its oom_n-th allocation failing. Only the main
 * thread's allocations count: another thread's meanwhile (one is made
 * here, as one may come at any time) would otherwise take the failure or
 * move it to an earlier allocation of inner, and the case would see one
 * more or one fewer refusal than inner makes. */
static int job_oom(job_t *j)
{
    oom_arm_here(j->oom_n);
    pthread_t other;
    if (pthread_create(&other, NULL, alloc_elsewhere, NULL) == 0)
        pthread_join(other, NULL);
    else
        atomic_fetch_add(&elsewhere_failed, 1);
    int rc = j->inner(j);
    j->oom_hit = oom_disarm();
    return rc;
}

/* Out of memory at each allocation of fl_heartbeat_manager_alloc in turn,
 * on the main thread, until one run meets none: FL_ENOMEM with the reason
 * and no manager, or a manager that works; nothing leaked. */
static void test_alloc_out_of_memory(void **state)
{
    (void)state;
    pair_t p;
    pair_nodes(&p);
    fl_heartbeat_opts_t so = opts_of(&p.s, 20, 2000);
    int failed = 0;
    job_t j = {.oom_hit = true};
    for (uint64_t n = 1; j.oom_hit && n <= OOM_MAX_RUNS; n++) {
        p.s.m = (fl_heartbeat_manager_t *)&p; /* must become NULL */
        j = (job_t){.n = &p.s, .fn = job_oom, .inner = job_alloc, .opts = &so};
        j.oom_n = n;
        on_main(&j);
        if (j.rc == FL_OK) {
            assert_string_equal(j.err, "");
            assert_fl_ok(do_job(&p.s, job_free, NULL));
            continue;
        }
        assert_fl(FL_ENOMEM, j.rc);
        assert_null(p.s.m);
        /* The manager itself, or one of its two tasks. */
        assert_string_equal(
            j.err, failed == 0
                       ? "Heartbeat manager 'sender' could not be made: out "
                         "of memory"
                       : "Heartbeat manager 'sender' could not start: could "
                         "not schedule a task on rpc endpoint 'sender': out "
                         "of memory");
        failed++;
    }
    assert_false(j.oom_hit);
    assert_int_equal(atomic_load(&elsewhere_failed), 0);
    assert_true(failed >= 3);
    pair_end(&p);
}

/* Out of memory at each allocation of fl_heartbeat_monitor and the first
 * heartbeat it sends, in turn, on the main thread: FL_ENOMEM with
 * send_arg freed and nothing monitored (a second monitor then goes
 * through), or a lost first beat; either way the receiver hears the
 * sender's heartbeats after. */
static void test_monitor_out_of_memory(void **state)
{
    (void)state;
    int refused = 0;
    job_t j = {.oom_hit = true};
    for (uint64_t n = 1; j.oom_hit && n <= OOM_MAX_RUNS; n++) {
        pair_t p;
        pair_start(&p, 20, 2000, 20, 2000, false);
        j = (job_t){.n = &p.s,
                    .fn = job_oom,
                    .inner = job_monitor_peer,
                    .id = "receiver"};
        j.oom_n = n;
        on_main(&j);
        if (j.rc != FL_OK) {
            assert_fl(FL_ENOMEM, j.rc);
            assert_int_equal(atomic_load(&p.s.arg_frees), 1);
            assert_int_equal(last_from(&p.s, "receiver"), -1);
            assert_fl_ok(do_job(&p.s, job_monitor_peer, "receiver"));
            refused++;
        }
        wait_count(&p.r, &p.r.nreports, 2, "reports");
        assert_int_equal(count_of(&p.s, &p.s.ntimeouts), 0);
        pair_end(&p);
    }
    assert_false(j.oom_hit);
    assert_int_equal(atomic_load(&elsewhere_failed), 0);
    assert_int_equal(refused, 2); /* the table, the target */
}

int main(int argc, char **argv)
{
    oom_install();
    const struct CMUnitTest tests[] = {
        FL_TEST(test_flow_with_payloads),
        FX_LOCAL_ONLY(test_timeout_once),
        FX_LOCAL_ONLY(test_timeout_never_heard),
        FX_LOCAL_ONLY(test_late_heartbeat),
        FX_LOCAL_ONLY(test_unmonitor),
        FX_LOCAL_ONLY(test_unreachable_threshold),
        FX_LOCAL_ONLY(test_unreachable_disabled),
        FX_LOCAL_ONLY(test_unreachable_terminated_peer),
        FX_LOCAL_ONLY(test_last_heartbeat),
        FX_LOCAL_ONLY(test_incompatible_timing),
        FX_LOCAL_ONLY(test_validation_and_defaults),
        FX_LOCAL_ONLY(test_stop),
        FX_LOCAL_ONLY(test_alloc_out_of_memory),
        FX_LOCAL_ONLY(test_monitor_out_of_memory),
    };
    return FX_RUN(argc, argv, tests);
}
