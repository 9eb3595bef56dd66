/*
 * jobstore_test.c - the JobManager's job store on a folder
 * (apps/jobmanager/jobstore*.c): only regular files are read (a FIFO
 * does not hang the open).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_test.h"
#include "jobmanager/jobstore.h"

/* ---- the log lines of the store -------------------------------------- */

#define MAX_LINES 16
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char lines[MAX_LINES][600];
static size_t nlines;

static void on_log(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    pthread_mutex_lock(&log_mu);
    if (rec->level == FL_LOG_WARN && nlines < MAX_LINES)
        snprintf(lines[nlines++], sizeof lines[0], "%s", rec->message);
    pthread_mutex_unlock(&log_mu);
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* ---- scratch folders ------------------------------------------------- */

static char *scratch(void)
{
    char tmpl[] = "/tmp/fling-jobstore-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *p = realpath(tmpl, NULL);
    assert_non_null(p);
    return p;
}

static void rm_scratch(char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(dir);
}

/* The id of job k: 32 hex digits, in no order of k. */
static void job_id(unsigned k, char id[33])
{
    snprintf(id, 33, "%08x%024x", (k * 2654435761u) & 0xffffffffu, k);
}

/* Writes the file of job id into dir, submitted at t. */
static void write_job(const char *dir, const char *id, int64_t t)
{
    jm_stored_job_t j = {.json = "{\"name\": \"j\"}",
                         .parallelism = 2,
                         .job_dir = "/jobs",
                         .submitted_ms = t};
    snprintf(j.job_id, sizeof j.job_id, "%s", id);
    char err[300] = "";
    assert_fl(FL_OK, jm_jobfile_write(dir, &j, err, sizeof err));
}

/* ---- the cases ------------------------------------------------------- */

/* A FIFO, a symbolic link (to a good job file) and a folder named like
 * job files: each skipped with why, none opened, the good file loaded. */
static void test_only_regular_files_are_read(void **state)
{
    (void)state;
    char *dir = scratch();
    char a[33], fifo[33], link[33], sub[33], p[4300], q[4300];
    job_id(1, a);
    job_id(2, fifo);
    job_id(3, link);
    job_id(4, sub);
    write_job(dir, a, 1000);
    snprintf(p, sizeof p, "%s/%s.job", dir, fifo);
    assert_int_equal(0, mkfifo(p, 0600));
    snprintf(p, sizeof p, "%s/%s.job", dir, a);
    snprintf(q, sizeof q, "%s/%s.job", dir, link);
    assert_int_equal(0, symlink(p, q));
    snprintf(p, sizeof p, "%s/%s.job", dir, sub);
    assert_int_equal(0, mkdir(p, 0700));

    nlines = 0;
    fl_log_set_handler(on_log, NULL);
    jm_jobstore_t *s = NULL;
    char err[300] = "";
    int rc = jm_jobstore_open(dir, &s, err, sizeof err);
    fl_log_set_handler(NULL, NULL);
    assert_fl(FL_OK, rc);

    char want[3][600];
    snprintf(want[0], sizeof want[0],
             "Job store file %s/%s.job skipped: it is not a regular file", dir,
             fifo);
    snprintf(want[1], sizeof want[1],
             "Job store file %s/%s.job skipped: it is a symbolic link", dir,
             link);
    snprintf(want[2], sizeof want[2],
             "Job store file %s/%s.job skipped: it is not a regular file", dir,
             sub);
    qsort(want, 3, sizeof want[0], by_text);
    qsort(lines, nlines, sizeof lines[0], by_text);
    assert_int_equal(3, nlines);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(want[i], lines[i]);

    jm_stored_job_t *jobs = NULL;
    size_t n = 0;
    assert_fl(FL_OK, jm_jobstore_list(s, &jobs, &n));
    assert_int_equal(1, n);
    assert_string_equal(a, jobs[0].job_id);
    assert_string_equal("{\"name\": \"j\"}", jobs[0].json);
    jm_stored_jobs_free(jobs, n);
    jm_jobstore_free(s);
    rm_scratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_only_regular_files_are_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
