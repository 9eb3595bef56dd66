/*
 * client_cluster_test - `fling run`, `fling list` and `fling cancel`
 * against a real cluster: a JobManager and two TaskManagers (2 slots each)
 * on 127.0.0.1 run examples/jobs/grep.json with parallelism 4 over a
 * generated input. The job FINISHES, `fling run` exits 0 having printed
 * each task's way to FINISHED, the part files equal grep -F's output, and
 * list and cancel then see the finished job.
 */
#include <ctype.h>
#include <spawn.h>
#include <sys/stat.h>

#include "../client/fling_spawn.h"
#include "cluster_procs.h"

#ifndef FLING_CLIENT
#error "FLING_CLIENT must name the fling program"
#endif

/* The input: 20,000 lines, one in 7 with ERROR; grep -F's answer into
 * *want (malloc'd). */
static void make_input(const char *path, char **want)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    size_t cap = 1 << 20, len = 0;
    *want = malloc(cap);
    assert_non_null(*want);
    for (int i = 0; i < 20000; i++) {
        char line[128];
        int n = snprintf(line, sizeof line, "%05d %s task-%d\n", i,
                         i % 7 == 3 ? "ERROR" : "INFO", i % 64);
        fputs(line, f);
        if (i % 7 == 3) {
            assert_true(len + (size_t)n < cap);
            memcpy(*want + len, line, (size_t)n);
            len += (size_t)n;
        }
    }
    (*want)[len] = '\0';
    assert_int_equal(0, fclose(f));
}

#define VERTEX "Source: lines -> Filter: match -> Sink: out"

/* Checks run's stdout: the submission line, then only state-change lines,
 * the last line of each of the 4 tasks FINISHED, the job FINISHED, and
 * the closing line. The job id into id. */
static void check_run_output(const char *out, char id[33])
{
    static const char sub[] = "Job has been submitted with JobID ";
    assert_memory_equal(sub, out, sizeof sub - 1);
    memcpy(id, out + sizeof sub - 1, 32);
    id[32] = '\0';
    for (int i = 0; i < 32; i++)
        assert_true(isxdigit((unsigned char)id[i]));
    const char *p = strchr(out, '\n');
    assert_non_null(p);
    p++;
    char last_task[4][256] = {{0}}, job_line[256], last[256] = "";
    snprintf(job_line, sizeof job_line, "Job grep (%s) switched to ", id);
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[256];
        size_t n = (size_t)(nl - p);
        assert_true(n < sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        unsigned sub_i, par;
        if (sscanf(line, "Task " VERTEX " (%u/%u)", &sub_i, &par) == 2) {
            assert_int_equal(4, par);
            assert_true(sub_i >= 1 && sub_i <= 4);
            snprintf(last_task[sub_i - 1], sizeof last_task[0], "%s", line);
        } else if (strncmp(line, job_line, strlen(job_line)) != 0) {
            snprintf(last, sizeof last, "%s", line);
            assert_true(nl[1] == '\0'); /* only the closing line is other */
        }
        p = nl + 1;
    }
    for (int i = 0; i < 4; i++) {
        const char *tail = " switched to FINISHED.";
        size_t l = strlen(last_task[i]);
        assert_true(l > strlen(tail));
        assert_string_equal(tail, last_task[i] + l - strlen(tail));
    }
    char want[512];
    snprintf(want, sizeof want,
             "Job grep (%s) switched to FINISHED.\n"
             "Job with JobID %s has finished.\n",
             id, id);
    size_t ol = strlen(out), wl = strlen(want);
    assert_true(ol > wl);
    assert_string_equal(want, out + ol - wl);
    snprintf(want, sizeof want, "Job with JobID %s has finished.", id);
    assert_string_equal(want, last);
}

static void test_run_grep_on_the_cluster(void **state)
{
    (void)state;
    static cf_proc_t jm, tm1, tm2;
    char dir[] = "/tmp/client_cluster_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char input[256], output[256], *want;
    snprintf(input, sizeof input, "%s/input.txt", dir);
    snprintf(output, sizeof output, "%s/out", dir);
    make_input(input, &want);

    int port = start_jm(&jm, "0");
    start_tm(&tm1, &jm, "tm1", port);
    start_tm(&tm2, &jm, "tm2", port);
    char hp[64];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", port);

    const char *run[] = {
        "run",     "-m",       hp,
        "-p",      "4",        FLING_SOURCE_DIR "/examples/jobs/grep.json",
        "--input", input,      "--pattern",
        "ERROR",   "--output", output,
        NULL};
    result_t r = run_fling(run);
    assert_string_equal("", r.err);
    assert_int_equal(0, r.status);
    char id[33];
    check_run_output(r.out, id);
    free(r.out);
    free(r.err);

    /* The part files, in subtask order, are grep -F's output. */
    size_t cap = strlen(want) + 1, len = 0;
    char *got = malloc(cap);
    assert_non_null(got);
    for (int i = 0; i < 4; i++) {
        char part[300];
        snprintf(part, sizeof part, "%s/part-%d", output, i);
        char *s = slurp(part);
        size_t n = strlen(s);
        assert_true(len + n < cap);
        memcpy(got + len, s, n);
        len += n;
        free(s);
        unlink(part);
    }
    got[len] = '\0';
    assert_string_equal(want, got);
    free(got);
    free(want);

    /* list: no running job, the finished one among the terminated. */
    const char *list[] = {"list", "-m", hp, NULL};
    r = run_fling(list);
    assert_string_equal("", r.err);
    assert_int_equal(0, r.status);
    static const char head[] =
        "No running jobs.\n"
        "---------------------- Terminated Jobs -----------------------\n";
    assert_memory_equal(head, r.out, sizeof head - 1);
    char rest[256];
    snprintf(rest, sizeof rest,
             " : %s : grep (FINISHED)\n"
             "--------------------------------------------------------------\n",
             id);
    /* "dd.mm.yyyy hh:mm:ss" before it. */
    assert_string_equal(rest, r.out + sizeof head - 1 + 19);
    free(r.out);
    free(r.err);

    /* cancel: the job has ended. */
    const char *cancel[] = {"cancel", "-m", hp, id, NULL};
    r = run_fling(cancel);
    char out[128], err[256];
    snprintf(out, sizeof out, "Cancelling job %s.\n", id);
    snprintf(err, sizeof err,
             "fling cancel: job %s has already ended: FINISHED.\n", id);
    assert_string_equal(out, r.out);
    assert_string_equal(err, r.err);
    assert_int_equal(1, r.status);
    free(r.out);
    free(r.err);

    cf_stop(&tm1, SIGTERM, 0);
    cf_stop(&tm2, SIGTERM, 0);
    cf_stop(&jm, SIGTERM, 0);
    rmdir(output);
    unlink(input);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CF_TEST(test_run_grep_on_the_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
