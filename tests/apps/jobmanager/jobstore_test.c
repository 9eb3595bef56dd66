/*
 * jobstore_test.c - the JobManager's job store on a folder
 * (apps/jobmanager/jobstore*.c): only regular files are read (a FIFO
 * does not hang the open), the recovered jobs come oldest first, and a
 * file's write and removal are flushed to the disk, folder included.
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

/* ---- fsync, recorded ------------------------------------------------- */

/* The fsyncs of this process while recording: "file <path>" or "folder
 * <path>, <watched> there|gone" (whether the file watched exists then). */
static bool recording;
static char watched[4200];
static char syncs[8][8400];
static size_t nsyncs;

int fsync(int fd)
{
    if (recording && nsyncs < 8) {
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        path[n < 0 ? 0 : n] = '\0';
        struct stat st;
        bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
        if (dir)
            snprintf(syncs[nsyncs++], sizeof syncs[0], "folder %s, %s %s", path,
                     watched, access(watched, F_OK) == 0 ? "there" : "gone");
        else
            snprintf(syncs[nsyncs++], sizeof syncs[0], "file %s", path);
    }
    return (int)syscall(SYS_fsync, fd);
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

/* Jobs recovered from the folder come oldest first, ties by id, whatever
 * the folder's order: 24 files written newest first, four to a time. */
static void test_recovered_jobs_come_oldest_first(void **state)
{
    (void)state;
    char *dir = scratch();
    enum { N = 24 };
    char ids[N][33];
    for (unsigned k = 0; k < N; k++) {
        job_id(k + 10, ids[k]);
        write_job(dir, ids[k], 5000 - (int64_t)(k / 4) * 100);
    }
    jm_jobstore_t *s = NULL;
    char err[300] = "";
    assert_fl(FL_OK, jm_jobstore_open(dir, &s, err, sizeof err));
    jm_stored_job_t *jobs = NULL;
    size_t n = 0;
    assert_fl(FL_OK, jm_jobstore_list(s, &jobs, &n));
    assert_int_equal(N, n);
    /* The expected order: time ascending (k / 4 descending), then id. */
    size_t at = 0;
    for (int g = N / 4 - 1; g >= 0; g--) {
        char grp[4][33];
        for (int i = 0; i < 4; i++)
            memcpy(grp[i], ids[g * 4 + i], 33);
        qsort(grp, 4, sizeof grp[0], by_text);
        for (int i = 0; i < 4; i++, at++) {
            assert_string_equal(grp[i], jobs[at].job_id);
            assert_int_equal(5000 - g * 100, jobs[at].submitted_ms);
        }
    }
    jm_stored_jobs_free(jobs, n);
    jm_jobstore_free(s);
    rm_scratch(dir);
}

/* A put flushes its temporary file, then the folder once the file has
 * its name; a remove flushes the folder once the file is gone. */
static void test_writes_and_removals_are_flushed(void **state)
{
    (void)state;
    char *dir = scratch();
    jm_jobstore_t *s = NULL;
    char err[300] = "";
    assert_fl(FL_OK, jm_jobstore_open(dir, &s, err, sizeof err));
    char id[33], want[8400];
    job_id(7, id);
    snprintf(watched, sizeof watched, "%s/%s.job", dir, id);
    jm_stored_job_t j = {
        .json = "{}", .parallelism = 1, .job_dir = "/", .submitted_ms = 1};
    memcpy(j.job_id, id, 33);

    nsyncs = 0;
    recording = true;
    int rc = jm_jobstore_put(s, &j, err, sizeof err);
    recording = false;
    assert_fl(FL_OK, rc);
    assert_int_equal(2, nsyncs);
    snprintf(want, sizeof want, "file %s/.%s.tmp", dir, id);
    assert_string_equal(want, syncs[0]);
    snprintf(want, sizeof want, "folder %s, %s there", dir, watched);
    assert_string_equal(want, syncs[1]);

    nsyncs = 0;
    recording = true;
    jm_jobstore_remove(s, id);
    recording = false;
    assert_int_equal(1, nsyncs);
    snprintf(want, sizeof want, "folder %s, %s gone", dir, watched);
    assert_string_equal(want, syncs[0]);
    jm_jobstore_free(s);
    rm_scratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_only_regular_files_are_read),
        FL_TEST(test_recovered_jobs_come_oldest_first),
        FL_TEST(test_writes_and_removals_are_flushed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
