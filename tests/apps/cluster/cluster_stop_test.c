/*
 * cluster_stop_test.c - the TaskManager's cancellation watchdog (issue
 * 17; Flink's task.cancellation.interval and task.cancellation.timeout):
 * a task stuck in a user function (udf_hold_lib.c's hold_open, deaf to
 * the cancel flag) is logged every interval once cancelled, and ends the
 * TaskManager at the timeout, whether the cancel came from a SIGTERM or
 * from the job's cancel; a timeout of 0 waits for ever. Synchronised on
 * the processes' log lines and the FIFO the user function reads.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../task/task_fixture.h"
#include "cluster_procs.h"
#include "held_job.h"
#include "job_client.h"

/* How late past the timeout a TaskManager may end (a loaded machine). */
#define LATE_MS 20000

/* A JobManager, TaskManager tm1 and a job of one task stuck in
 * hold_open. */
typedef struct held {
    held_job_t j; /* the job "held" counting to 3 */
    char id[1024];
    char task[512]; /* the task's name, as tm1 logs it */
    int port;       /* the JobManager's */
    int fd;         /* the FIFO's writer: closing it lets the task go on */
} held_t;

/* Starts jm and tm1 (the -D options keys, NULL terminated), opens c,
 * submits the held job and returns once its task is stuck reading the
 * FIFO, its name in h->task. */
static void held_start(held_t *h, cf_proc_t *jm, cf_proc_t *tm1, jc_t *c,
                       const char *const *keys)
{
    held_job_write(&h->j, "held", "3");
    h->port = start_jm(jm, "0");
    setenv("HOLD_FIFO", h->j.fifo, 1);
    start_tm_keys(tm1, jm, "tm1", h->port, keys);
    unsetenv("HOLD_FIFO");
    jc_open(c, h->port);
    const char *args[] = {NULL};
    assert_fl_ok(jc_submit(c, h->j.job, args, 0, "", h->id, sizeof h->id));
    static const char running[] =
        " (attempt #0) switched from INITIALIZING to RUNNING.";
    char line[2048];
    h->task[0] = '\0';
    while (h->task[0] == '\0') {
        cf_next_app(tm1, line, sizeof line);
        size_t len = strlen(line), rl = strlen(running);
        if (len > rl && strcmp(line + len - rl, running) == 0)
            snprintf(h->task, sizeof h->task, "%.*s", (int)(len - rl), line);
    }
    /* Returns once hold_open opened the FIFO: the task then reads until
     * the writer closes it, whatever its cancel flag says. */
    h->fd = held_job_open(&h->j);
}

static void held_free(held_t *h)
{
    if (h->fd >= 0)
        close(h->fd);
    held_job_free(&h->j);
}

/* The fatal reason of a watchdog of `timeout` ms for h's task. */
static void fatal_reason(const held_t *h, int timeout, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "Task %s (attempt #0) did not end within %d ms of its "
             "cancellation (task.cancellation.timeout): TaskManager tm1 "
             "ends, as a thread stuck in a user function cannot be stopped; "
             "make the function return when cancelled, or raise "
             "task.cancellation.timeout",
             h->task, timeout);
}

/* Stops p (SIGSTOP) until cf_now_ms() reaches `until`, then lets it go
 * on (SIGCONT): a process stalled on a loaded machine. The wait on the
 * clock IS the stall, not an ordering. */
static void stall(cf_proc_t *p, uint64_t until)
{
    assert_int_equal(0, kill(p->pid, SIGSTOP));
    for (uint64_t now = cf_now_ms(); now < until; now = cf_now_ms()) {
        struct timespec ts = {.tv_sec = (time_t)((until - now) / 1000),
                              .tv_nsec =
                                  (long)((until - now) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(0, kill(p->pid, SIGCONT));
}

/* tm1's next lines: the task still running at each interval before the
 * timeout, then the fatal line; tm1 exits 1 (the reason last on stderr)
 * between timeout and timeout + LATE_MS after t0. With `stalled`, tm1 is
 * stopped from its first interval line until past the timeout: every
 * line must still come, each once and in order. */
static void expect_watchdog_end(cf_proc_t *tm1, const held_t *h, int interval,
                                int timeout, uint64_t t0, bool stalled)
{
    for (int at = interval; at < timeout; at += interval) {
        cf_expect_app(tm1,
                      "Task %s (attempt #0) is still running after "
                      "cancellation, %d ms",
                      h->task, at);
        /* The cancel was at most now - interval: stopped until then +
         * timeout + interval / 2, tm1 wakes past every later check. */
        if (stalled && at == interval)
            stall(tm1, cf_now_ms() + (uint64_t)(timeout - interval) +
                           (uint64_t)interval / 2);
    }
    char why[2048], line[2048];
    fatal_reason(h, timeout, why, sizeof why);
    cf_expect_app(tm1, "%s", why);
    int ws = cf_wait_exit(tm1);
    uint64_t took = cf_now_ms() - t0;
    assert_true(WIFEXITED(ws));
    assert_int_equal(1, WEXITSTATUS(ws));
    if (took < (uint64_t)timeout || took > (uint64_t)timeout + LATE_MS)
        fail_msg("tm1 ended %llu ms after the cancel; expected %d to %d ms",
                 (unsigned long long)took, timeout, timeout + LATE_MS);
    char want[2100];
    snprintf(want, sizeof want, "fling-taskmanager: %s", why);
    last_stderr_line(tm1, line, sizeof line);
    assert_string_equal(want, line);
}

static const char *const watchdog_keys[] = {
    "task.cancellation.interval=400 ms", "task.cancellation.timeout=1 s", NULL};
/* Several checks fit in a stall of the stop's second wait. */
static const char *const stall_keys[] = {"task.cancellation.interval=200 ms",
                                         "task.cancellation.timeout=1200 ms",
                                         NULL};

/* SIGTERM with a task stuck in a user function: the stop waits, logs the
 * task at 400 and 800 ms, and at 1000 ms ends the process with status 1
 * and the fatal line naming the task, its attempt and the timeout. */
static void sigterm_with_a_stuck_task(const char *const *keys, int interval,
                                      int timeout, bool stalled)
{
    static cf_proc_t jm, tm1;
    static held_t h;
    jc_t c = {0};
    held_start(&h, &jm, &tm1, &c, keys);
    uint64_t t0 = cf_now_ms();
    kill(tm1.pid, SIGTERM);
    cf_expect_app(&tm1, "fling-taskmanager stopping on SIGTERM");
    expect_watchdog_end(&tm1, &h, interval, timeout, t0, stalled);
    char line[1200];
    snprintf(line, sizeof line, "TaskManager tm1 lost: ");
    cf_wait_stderr(&jm, line, 1);
    jc_close(&c);
    cf_stop(&jm, SIGTERM, 0);
    held_free(&h);
}

static void test_sigterm_with_a_stuck_task_ends_at_the_timeout(void **state)
{
    (void)state;
    sigterm_with_a_stuck_task(watchdog_keys, 400, 1000, false);
}

/* The same, logging every 200 ms until 1200 ms, with tm1 stalled from its
 * 200 ms line until past the timeout: woken with its 400 ms check due,
 * the stop still logs 600, 800 and 1000 ms, then the fatal line. */
static void test_stalled_stop_still_logs_every_interval(void **state)
{
    (void)state;
    sigterm_with_a_stuck_task(stall_keys, 200, 1200, true);
}

/* The job cancelled while its task is stuck: the task is CANCELING (its
 * slot is not given out again: tm1 logs nothing else), logged at 400 and
 * 800 ms, and the TaskManager ends at 1000 ms with status 1. */
static void cancelled_job_with_a_stuck_task(const char *const *keys,
                                            int interval, int timeout,
                                            bool stalled)
{
    static cf_proc_t jm, tm1;
    static held_t h;
    jc_t c = {0};
    held_start(&h, &jm, &tm1, &c, keys);
    uint64_t t0 = cf_now_ms();
    jc_cancel(&c, h.id);
    cf_expect_app(&tm1, "%s (attempt #0) switched from RUNNING to CANCELING.",
                  h.task);
    expect_watchdog_end(&tm1, &h, interval, timeout, t0, stalled);
    jc_close(&c);
    cf_stop(&jm, SIGTERM, 0);
    held_free(&h);
}

static void
test_cancelled_job_with_a_stuck_task_ends_the_taskmanager(void **state)
{
    (void)state;
    cancelled_job_with_a_stuck_task(watchdog_keys, 400, 1000, false);
}

/* The same with tm1 stalled (shorter than heartbeat.timeout) as above:
 * the timers' checks come late, each once and in order. */
static void test_stalled_cancel_still_logs_every_interval(void **state)
{
    (void)state;
    cancelled_job_with_a_stuck_task(stall_keys, 200, 1200, true);
}

/* task.cancellation.timeout=0: the stop waits for ever, logging the task
 * every 300 ms; the process is still there after four intervals, and once
 * the user function returns the task ends CANCELED and the TaskManager
 * exits 0. */
static void test_timeout_zero_waits_for_ever(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1;
    static held_t h;
    jc_t c = {0};
    static const char *const keys[] = {"task.cancellation.interval=300 ms",
                                       "task.cancellation.timeout=0 ms", NULL};
    held_start(&h, &jm, &tm1, &c, keys);
    kill(tm1.pid, SIGTERM);
    cf_expect_app(&tm1, "fling-taskmanager stopping on SIGTERM");
    for (int at = 300; at <= 1200; at += 300)
        cf_expect_app(&tm1,
                      "Task %s (attempt #0) is still running after "
                      "cancellation, %d ms",
                      h.task, at);
    int ws = 0;
    assert_int_equal(0, waitpid(tm1.pid, &ws, WNOHANG));
    close(h.fd);
    h.fd = -1;
    cf_wait_stderr(&tm1, "app: fling-taskmanager stopped", 1);
    assert_int_equal(0, WEXITSTATUS(cf_wait_exit(&tm1)));
    assert_true(WIFEXITED(tm1.status));
    jc_close(&c);
    cf_stop(&jm, SIGTERM, 0);
    held_free(&h);
}

/* Values out of range are refused at start, naming the key and value. */
static void test_watchdog_keys_are_checked(void **state)
{
    (void)state;
    static cf_proc_t tm;
    static const char *const bad[][2] = {
        {"task.cancellation.interval=0 ms",
         "fling-taskmanager: Bad value '0 ms' for "
         "'task.cancellation.interval' (-D): expected duration 1 ms..24 h."},
        {"task.cancellation.interval=9223372036854775807 ms",
         "fling-taskmanager: Bad value '9223372036854775807 ms' for "
         "'task.cancellation.interval' (-D): expected duration 1 ms..24 h."},
        {"task.cancellation.timeout=-1 ms",
         "fling-taskmanager: Bad value '-1 ms' for "
         "'task.cancellation.timeout' (-D): expected duration 0 ms..24 h, a "
         "duration such as 10 s, 500 ms or 5 min (units ms, s, min, h, d; a "
         "bare number is ms)."},
        {"task.cancellation.timeout=25 h",
         "fling-taskmanager: Bad value '25 h' for "
         "'task.cancellation.timeout' (-D): expected duration 0 ms..24 h."},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[] = {"-D", bad[i][0], NULL};
        cf_spawn(&tm, "tm", TM_PATH, args);
        char line[1024];
        last_stderr_line(&tm, line, sizeof line);
        assert_string_equal(bad[i][1], line);
        int ws = cf_wait_exit(&tm);
        assert_true(WIFEXITED(ws));
        assert_int_equal(1, WEXITSTATUS(ws));
        cf_release(&tm);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_watchdog_keys_are_checked),
        CF_TEST(test_sigterm_with_a_stuck_task_ends_at_the_timeout),
        CF_TEST(test_cancelled_job_with_a_stuck_task_ends_the_taskmanager),
        CF_TEST(test_stalled_stop_still_logs_every_interval),
        CF_TEST(test_stalled_cancel_still_logs_every_interval),
        CF_TEST(test_timeout_zero_waits_for_ever),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
