/*
 * plan_test - `fling plan` run as a process: its output, its errors on
 * stderr and its exit status (0 done, 1 a bad job file, 2 a usage error).
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_test.h"
#include "fling_spawn.h"
#include "job/graph.h"
#include "job/util.h"

#define EXAMPLES FLING_SOURCE_DIR "/examples/jobs/"

/* Runs argv (argv[0] a path), its stdout and stderr into files. */
static result_t run(const char *const *argv)
{
    return spawn_tmp(argv);
}

static const char *usage =
    "usage: fling plan JOBFILE [--dot] [-p N] [--KEY VALUE ...]\n"
    "  --dot        print Graphviz dot instead of text\n"
    "  -p N         default parallelism (1 to 32768)\n"
    "  --KEY VALUE  the value of job parameter KEY (also --KEY=VALUE)\n";

/* Asserts r failed with status and stderr "fling plan: msg\n" (plus the
 * usage for status 2) and wrote nothing to stdout. */
static void expect_failure(const char *const *argv, int status, const char *msg)
{
    result_t r = run(argv);
    char expect[2048];
    snprintf(expect, sizeof expect, "fling plan: %s\n%s", msg,
             status == 2 ? usage : "");
    assert_string_equal(expect, r.err);
    assert_string_equal("", r.out);
    assert_int_equal(status, r.status);
    result_free(&r);
}

/* The job id printed on the JobGraph's line. */
static void job_id_of(const char *out, char id[33])
{
    const char *p = strstr(out, "JobGraph of job 'grep' (");
    assert_non_null(p);
    p = strchr(p, '(') + 1;
    snprintf(id, 33, "%.32s", p);
    fj_id_t parsed;
    assert_fl_ok(fj_id_parse(id, &parsed));
}

static void plans_grep(void **state)
{
    (void)state;
    const char *argv[] = {FLING_CLIENT, "plan",    EXAMPLES "grep.json",
                          "--input",    "/in.txt", "--pattern=a b",
                          "--output",   "/out",    "-p",
                          "2",          NULL};
    result_t r = run(argv);
    assert_string_equal("", r.err);
    assert_int_equal(0, r.status);
    char id[33], v[33], expect[4096];
    job_id_of(r.out, id);
    const char *parts[] = {"grep", "lines", "match", "out"};
    fj_id_t vid;
    fj_id_hash(vid.b, parts, 4);
    fj_id_format(&vid, v);
    const char *chain = "Source: lines -> Filter: match -> Sink: out";
    snprintf(expect, sizeof expect,
             "StreamGraph of job 'grep': 3 nodes, 2 edges\n"
             "  node 1 \"Source: lines\" source.text, parallelism 2, "
             "path=/in.txt\n"
             "  node 2 \"Filter: match\" filter.contains, parallelism 2, "
             "pattern=a b\n"
             "  node 3 \"Sink: out\" sink.text, parallelism 2, path=/out\n"
             "  edge 1 -> 2 FORWARD\n"
             "  edge 2 -> 3 FORWARD\n"
             "\n"
             "JobGraph of job 'grep' (%s): 1 vertex, 0 data sets, 0 job "
             "edges\n"
             "  vertex %s \"%s\", parallelism 2, nodes 1, 2, 3\n"
             "\n"
             "ExecutionGraph of job 'grep' (%s): 2 execution vertices, 0 "
             "result partitions\n"
             "  \"%s (1/2)\" subtask 0, attempt 0 CREATED\n"
             "  \"%s (2/2)\" subtask 1, attempt 0 CREATED\n",
             id, v, chain, id, chain, chain);
    assert_string_equal(expect, r.out);
    result_free(&r);
}

static void plans_multi_vertex(void **state)
{
    (void)state;
    char path[] = "/tmp/plan_test_job_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *job = "name: two\nparallelism: 2\noperators:\n"
                      "  - {id: src, type: source.sequence, params: {from: "
                      "1, to: 9}}\n"
                      "  - {id: out, type: sink.text, parallelism: 1, "
                      "params: {path: /o}}\n";
    assert_int_equal((ssize_t)strlen(job), write(fd, job, strlen(job)));
    close(fd);
    const char *argv[] = {FLING_CLIENT, "plan", path, NULL};
    result_t r = run(argv);
    assert_int_equal(0, r.status);
    const char *tail = "\nJob 'two' cannot run yet: the edge from 'Source: "
                       "src' (parallelism 2) to 'Sink: out' (parallelism 1) "
                       "needs a REBALANCE exchange, and tasks exchange no "
                       "records in this version; give its operators one "
                       "parallelism and one flow.\n";
    size_t lo = strlen(r.out), lt = strlen(tail);
    assert_true(lo > lt);
    assert_string_equal(tail, r.out + lo - lt);
    assert_non_null(strstr(r.out, "2 vertices, 1 data set, 1 job edge\n"));
    result_free(&r);
#ifdef FLING_DOT
    /* The dot output renders. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s plan %s --dot | %s -Tsvg -o /dev/null",
             FLING_CLIENT, path, FLING_DOT);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(0, WEXITSTATUS(st));
#endif
    unlink(path);
}

static void usage_errors(void **state)
{
    (void)state;
    const char *none[] = {FLING_CLIENT, "plan", NULL};
    expect_failure(none, 2, "which job file? Give its path.");
    const char *opt[] = {FLING_CLIENT, "plan", EXAMPLES "grep.json", "-x",
                         NULL};
    expect_failure(opt, 2, "unknown option '-x'.");
    const char *two[] = {FLING_CLIENT, "plan", "a.json", "b.json", NULL};
    expect_failure(two, 2, "one job file at a time; 'b.json' is a second.");
    const char *p0[] = {FLING_CLIENT, "plan", EXAMPLES "grep.json",
                        "-p",         "0",    NULL};
    expect_failure(p0, 2, "-p needs a whole number from 1 to 32768, not '0'.");
    const char *novalue[] = {FLING_CLIENT, "plan", EXAMPLES "grep.json",
                             "--input", NULL};
    expect_failure(novalue, 2, "--input needs a value.");
    const char *unknown[] = {FLING_CLIENT, "plan", EXAMPLES "grep.json",
                             "--inptu",    "x",    NULL};
    expect_failure(unknown, 2,
                   "Job 'grep' has no parameter 'inptu'; did you mean "
                   "'input'?");

    const char *bare[] = {FLING_CLIENT, NULL};
    result_t r = run(bare);
    const char *main_usage =
        "usage: fling COMMAND [ARGS...]\ncommands:\n"
        "  run     submit a job to the JobManager and follow it\n"
        "  list    list the JobManager's jobs\n"
        "  cancel  cancel a job\n"
        "  plan    print a job's StreamGraph, JobGraph and ExecutionGraph\n"
        "Run 'fling COMMAND --help' for a command's options.\n";
    assert_int_equal(2, r.status);
    assert_string_equal(main_usage, r.err);
    result_free(&r);
    const char *bogus[] = {FLING_CLIENT, "plna", NULL};
    r = run(bogus);
    assert_int_equal(2, r.status);
    char expect[512];
    snprintf(expect, sizeof expect, "fling: unknown command 'plna'.\n%s",
             main_usage);
    assert_string_equal(expect, r.err);
    result_free(&r);
    const char *help[] = {FLING_CLIENT, "plan", "--help", NULL};
    r = run(help);
    assert_int_equal(0, r.status);
    assert_string_equal(usage, r.out);
    result_free(&r);
}

static void job_file_errors(void **state)
{
    (void)state;
    const char *missing[] = {FLING_CLIENT, "plan", "/nonexistent.json", NULL};
    expect_failure(missing, 1,
                   "Cannot read job file '/nonexistent.json': No such file "
                   "or directory.");
    const char *noval[] = {FLING_CLIENT, "plan", EXAMPLES "grep.json",
                           "--input",    "/in",  NULL};
    expect_failure(noval, 1,
                   "Job 'grep' needs a value for parameter 'pattern', used by "
                   "operator 'match': give it with --pattern VALUE.");
    char path[] = "/tmp/plan_test_bad_XXXXXX";
    int fd = mkstemp(path);
    const char *bad = "{\"name\": \"x\",\n \"operators\": [\n  {\"id\": \"a\", "
                      "\"type\": \"source.txt\"}\n ]\n}\n";
    assert_int_equal((ssize_t)strlen(bad), write(fd, bad, strlen(bad)));
    close(fd);
    const char *argv[] = {FLING_CLIENT, "plan", path, NULL};
    char msg[512];
    snprintf(msg, sizeof msg,
             "Operator 'a' (%s:3) has an unknown type 'source.txt'; did you "
             "mean 'source.text'?",
             path);
    expect_failure(argv, 1, msg);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(plans_grep),
        FL_TEST(plans_multi_vertex),
        FL_TEST(usage_errors),
        FL_TEST(job_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
