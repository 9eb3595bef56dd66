/*
 * tests/apps/task/task_error_test.c - every refusal of the task runner,
 * with its code and its whole message, and what it leaves behind: a
 * missing or unreadable input, an output folder that cannot be made, an
 * unknown operator, a missing or bad parameter, a chain of the wrong
 * shape, a user library or function that is not there, a user function
 * that fails.
 */
#include <dlfcn.h>
#include <stdarg.h>

#include "task_fixture.h"

typedef struct fx {
    char *dir;
    char *input;
    char *out;
} fx_t;

static int fx_setup(void **state)
{
    fl_test_arm(state);
    fx_t *f = calloc(1, sizeof(*f));
    f->dir = scratch();
    f->input = path_in(f->dir, "in.txt");
    f->out = path_in(f->dir, "out");
    write_file(f->input, "1\n2\nabc\n4\n", 10);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    free(f->input);
    free(f->out);
    rm_scratch(f->dir);
    free(f);
    return fl_test_disarm(state);
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

/* Runs a source.text -> [op] -> sink.text chain over path into out. */
static int run3(fx_t *f, const char *path, const fj_op_spec_t *mid,
                const char *library, char *err, size_t errlen)
{
    fj_param_t src_p[] = {{"path", path}};
    fj_param_t sink_p[] = {{"path", f->out}};
    fj_op_spec_t chain[3] = {
        {"lines", "source.text", src_p, 1},
        {"", "", NULL, 0},
        {"out", "sink.text", sink_p, 1},
    };
    size_t n = 2;
    if (mid) {
        chain[1] = *mid;
        n = 3;
    } else {
        chain[1] = chain[2];
    }
    fj_task_t t = task_of(chain, n, 0, 1);
    t.library = library;
    return run_task(&t, NULL, err, errlen);
}

/* Asserts that run3 of path, mid and library fails with code and the
 * message want. */
static void expect3(fx_t *f, const char *path, const fj_op_spec_t *mid,
                    const char *library, int code, const char *want)
{
    char err[512];
    assert_fl(code, run3(f, path, mid, library, err, sizeof(err)));
    assert_string_equal(err, want);
}

/* expect3 with the message made of fmt and its arguments. */
static void expect3f(fx_t *f, const char *path, const fj_op_spec_t *mid,
                     const char *library, int code, const char *fmt, ...)
    FL_PRINTF(6, 7);

static void expect3f(fx_t *f, const char *path, const fj_op_spec_t *mid,
                     const char *library, int code, const char *fmt, ...)
{
    char want[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof(want), fmt, ap);
    va_end(ap);
    expect3(f, path, mid, library, code, want);
}

static void missing_input(void **state)
{
    fx_t *f = *state;
    char *missing = path_in(f->dir, "missing.txt");
    expect3f(f, missing, NULL, NULL, FL_ENOENT,
             "Operator 'lines' (source.text) cannot open %s: No such file "
             "or directory",
             missing);
    /* The sink was set up first and removed its temporary file. */
    assert_dir(f->out, "");
    free(missing);
}

static void unreadable_input(void **state)
{
    fx_t *f = *state;
    expect3f(f, f->dir, NULL, NULL, FL_ESYSTEM,
             "Operator 'lines' (source.text) cannot read %s: Is a directory",
             f->dir);
    assert_dir(f->out, "");
    /* A FIFO without a writer: refused at once, not waited on. */
    char *fifo = path_in(f->dir, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect3f(f, fifo, NULL, NULL, FL_ESYSTEM,
             "Operator 'lines' (source.text) cannot read %s: not a regular "
             "file (a FIFO, a device or a socket); give a file",
             fifo);
    assert_dir(f->out, "");
    free(fifo);
}

/* The output folder is a file, or lies under one. */
static void unwritable_output(void **state)
{
    fx_t *f = *state;
    char err[512], want[512];
    write_file(f->out, "x", 1);
    expect3f(f, f->input, NULL, NULL, FL_ESYSTEM,
             "Operator 'out' (sink.text) cannot create the folder %s: Not a "
             "directory",
             f->out);

    char *under = path_in(f->out, "sub");
    fj_param_t src_p[] = {{"path", f->input}};
    fj_param_t sink_p[] = {{"path", under}};
    fj_op_spec_t chain[] = {
        {"lines", "source.text", src_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    fj_task_t t = task_of(chain, 2, 0, 1);
    assert_fl(FL_ESYSTEM, run_task(&t, NULL, err, sizeof(err)));
    snprintf(want, sizeof(want),
             "Operator 'out' (sink.text) cannot create the folder %s: Not a "
             "directory",
             under);
    assert_string_equal(err, want);
    free(under);
}

/* A folder made with its missing parents. */
static void output_parents_made(void **state)
{
    fx_t *f = *state;
    char err[512] = "";
    char *deep = path_in(f->out, "a/b/c/");
    fj_param_t src_p[] = {{"path", f->input}};
    fj_param_t sink_p[] = {{"path", deep}};
    fj_op_spec_t chain[] = {
        {"lines", "source.text", src_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    fj_task_t t = task_of(chain, 2, 0, 1);
    assert_fl_ok(run_task(&t, NULL, err, sizeof(err)));
    assert_dir(deep, "part-0");
    free(deep);
}

static void unknown_operator(void **state)
{
    fx_t *f = *state;
    char err[512];
    fj_op_spec_t mid = {"sq", "mapp", NULL, 0};
    assert_fl(FL_EINVAL, run3(f, f->input, &mid, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'sq' has the unknown type 'mapp'; the "
                             "types are source.text, source.sequence, "
                             "filter.contains, map, flatmap, filter, "
                             "sink.text");
    /* Refused before anything was made. */
    assert_int_equal(access(f->out, F_OK), -1);
}

static void missing_params(void **state)
{
    fx_t *f = *state;
    char err[512];
    fj_op_spec_t mid = {"sq", "map", NULL, 0};
    assert_fl(FL_EINVAL, run3(f, f->input, &mid, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'sq' (map) has no parameter "
                             "'function'; add it to the job");
    assert_dir(f->out, "");

    fj_op_spec_t grep = {"grep", "filter.contains", NULL, 0};
    assert_fl(FL_EINVAL, run3(f, f->input, &grep, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'grep' (filter.contains) has no "
                             "parameter 'pattern'; add it to the job");

    fj_param_t sink_p[] = {{"path", f->out}};
    fj_op_spec_t nopath[] = {
        {"lines", "source.text", NULL, 0},
        {"out", "sink.text", sink_p, 1},
    };
    fj_task_t t = task_of(nopath, 2, 0, 1);
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'lines' (source.text) has no "
                             "parameter 'path'; add it to the job");
    nopath[1].params = NULL;
    nopath[1].n_params = 0;
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'out' (sink.text) has no parameter "
                             "'path'; add it to the job");
}

static void bad_sequence_params(void **state)
{
    fx_t *f = *state;
    char err[512];
    fj_param_t bad_p[] = {{"from", "1x"}, {"to", "3"}};
    fj_param_t rev_p[] = {{"from", "9"}, {"to", "3"}};
    fj_param_t big_p[] = {{"from", "1"}, {"to", "99999999999999999999"}};
    fj_param_t sink_p[] = {{"path", f->out}};
    fj_op_spec_t chain[] = {
        {"nums", "source.sequence", bad_p, 2},
        {"out", "sink.text", sink_p, 1},
    };
    fj_task_t t = task_of(chain, 2, 0, 1);
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'nums' (source.sequence) has 'from' = "
                             "'1x', which is not a 64-bit decimal integer");
    chain[0].params = big_p;
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'nums' (source.sequence) has 'to' = "
                             "'99999999999999999999', which is not a 64-bit "
                             "decimal integer");
    chain[0].params = rev_p;
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'nums' (source.sequence) has 'from' = "
                             "9 greater than 'to' = 3; write the smaller "
                             "number first");
    chain[0].params = (fj_param_t[]){{"to", "3"}};
    chain[0].n_params = 1;
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'nums' (source.sequence) has no "
                             "parameter 'from'; add it to the job");
    assert_dir(f->out, "");
}

static void bad_chains(void **state)
{
    fx_t *f = *state;
    char err[512];
    fj_param_t src_p[] = {{"path", f->input}};
    fj_param_t sink_p[] = {{"path", f->out}};
    fj_op_spec_t chain[] = {
        {"out", "sink.text", sink_p, 1},
        {"lines", "source.text", src_p, 1},
    };
    fj_task_t t = task_of(chain, 2, 0, 1);
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'out' (sink.text) is a sink and cannot "
                             "stand at place 1 of a chain of 2, which needs "
                             "a source");
    t = task_of(chain, 1, 0, 1);
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "A task needs a chain of a source and a sink at "
                             "least, and this one has 1 operators");
    t = task_of(&chain[1], 1, 0, 1);
    t.n_ops = 2;
    t.chain = (fj_op_spec_t[]){chain[1], chain[0]};
    t.subtask = 4;
    t.parallelism = 4;
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Subtask 4 does not exist with parallelism 4");
    t = task_of((fj_op_spec_t[]){{NULL, "source.text", src_p, 1}, chain[0]}, 2,
                0, 1);
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 1 of the chain has no id, type or "
                             "params; the job model must give them");
    fj_param_t null_p[] = {{"path", f->out}, {"x", NULL}};
    t = task_of((fj_op_spec_t[]){chain[1], {"out", "sink.text", null_p, 2}}, 2,
                0, 1);
    assert_fl(FL_EINVAL, run_task(&t, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'out' has a parameter without a key "
                             "or a value (number 2)");
    assert_int_equal(access(f->out, F_OK), -1);
}

static void missing_library(void **state)
{
    fx_t *f = *state;
    char want[512];
    char *lib = path_in(f->dir, "libnope.so");
    /* dlerror's words are the C library's: ask it for them. */
    assert_null(dlopen(lib, RTLD_NOW | RTLD_LOCAL));
    snprintf(want, sizeof(want), "User library %s cannot be loaded: %s", lib,
             dlerror());
    fj_param_t sq_p[] = {{"function", "square"}};
    fj_op_spec_t mid = {"sq", "map", sq_p, 1};
    expect3(f, f->input, &mid, lib, FL_ENOENT, want);
    assert_int_equal(access(f->out, F_OK), -1);
    /* A file that is not a library. */
    assert_null(dlopen(f->input, RTLD_NOW | RTLD_LOCAL));
    snprintf(want, sizeof(want), "User library %s cannot be loaded: %s",
             f->input, dlerror());
    expect3(f, f->input, &mid, f->input, FL_EINVAL, want);
    free(lib);
}

static void missing_function(void **state)
{
    fx_t *f = *state;
    fj_param_t cube_p[] = {{"function", "cube"}};
    fj_op_spec_t mid = {"sq", "map", cube_p, 1};
    expect3(f, f->input, &mid, UDF_EXAMPLE, FL_ENOENT,
            "Operator 'sq' (map) names the function 'cube', "
            "which the user library " UDF_EXAMPLE
            " does not export and which is not built in");
    assert_dir(f->out, "");
    expect3(f, f->input, &mid, NULL, FL_ENOENT,
            "Operator 'sq' (map) names the function 'cube', "
            "which is not built in, and the job names no "
            "user library");
    /* strtoll is in the C library the example links, not in the example. */
    fj_param_t libc_p[] = {{"function", "strtoll"}};
    mid.params = libc_p;
    expect3(f, f->input, &mid, UDF_EXAMPLE, FL_ENOENT,
            "Operator 'sq' (map) names the function "
            "'strtoll', which the user library " UDF_EXAMPLE
            " does not export and which is not built in");
    /* A built-in function of another kind. */
    fj_param_t words_p[] = {{"function", "words"}};
    mid.params = words_p;
    expect3(f, f->input, &mid, NULL, FL_EINVAL,
            "Operator 'sq' (map) names the built-in function "
            "'words', which is a flatmap, not a map");
}

/* A user function that fails: the task fails with its message, and no
 * part file is left. */
static void function_fails(void **state)
{
    fx_t *f = *state;
    fj_param_t sq_p[] = {{"function", "square"}};
    fj_op_spec_t mid = {"sq", "map", sq_p, 1};
    expect3(f, f->input, &mid, UDF_EXAMPLE, FL_EINVAL,
            "Operator 'sq' (map) failed in function 'square' "
            "on subtask 0: 'abc' is not a decimal integer");
    assert_dir(f->out, "");
    write_file(f->input, "4000000000\n", 11);
    expect3(f, f->input, &mid, UDF_EXAMPLE, FL_EINVAL,
            "Operator 'sq' (map) failed in function 'square' "
            "on subtask 0: the square of 4000000000 does not "
            "fit 64 bits");
    fj_param_t mute_p[] = {{"function", "mute"}};
    mid.params = mute_p;
    expect3(f, f->input, &mid, UDF_TEST_LIB, FL_EINVAL,
            "Operator 'sq' (map) failed in function 'mute' "
            "on subtask 0: it returned 7 without a message");
    /* Bytes at NULL, from a map and from a flatmap. */
    fj_param_t hollow_p[] = {{"function", "hollow"}};
    mid.params = hollow_p;
    expect3(f, f->input, &mid, UDF_TEST_LIB, FL_EINVAL,
            "Operator 'sq' (map) failed in function "
            "'hollow' on subtask 0: it gave a record of 3 "
            "bytes at NULL");
    fj_param_t hollowf_p[] = {{"function", "hollowf"}};
    fj_op_spec_t fm = {"fm", "flatmap", hollowf_p, 1};
    expect3(f, f->input, &fm, UDF_TEST_LIB, FL_EINVAL,
            "Operator 'fm' (flatmap) failed in function "
            "'hollowf' on subtask 0: it gave a record of 4 "
            "bytes at NULL");
    /* An open that fails: tag without its param. */
    fj_param_t tag_p[] = {{"function", "tag"}};
    mid.params = tag_p;
    expect3(f, f->input, &mid, UDF_TEST_LIB, FL_EINVAL,
            "Operator 'sq' (map) failed to open function "
            "'tag' on subtask 0: no param 'tag'");
    assert_dir(f->out, "");
}

/* A flatmap that ignores its collector's refusal still stops the task
 * with the later operator's failure. */
static void flatmap_ignores_stop(void **state)
{
    fx_t *f = *state;
    char err[512];
    fj_param_t src_p[] = {{"path", f->input}};
    fj_param_t deaf_p[] = {{"function", "deaf"}};
    fj_param_t fail_p[] = {{"function", "fail_on"}, {"bad", "2"}};
    fj_param_t sink_p[] = {{"path", f->out}};
    fj_op_spec_t chain[] = {
        {"lines", "source.text", src_p, 1},
        {"deaf", "flatmap", deaf_p, 1},
        {"check", "filter", fail_p, 2},
        {"out", "sink.text", sink_p, 1},
    };
    fj_task_t t = task_of(chain, 4, 0, 1);
    t.library = UDF_TEST_LIB;
    fj_task_stats_t st;
    assert_fl(FL_EINVAL, run_task(&t, &st, err, sizeof(err)));
    assert_string_equal(err, "Operator 'check' (filter) failed in function "
                             "'fail_on' on subtask 0: record '2' is bad");
    /* "1" twice, then "2" failed: the second "2" never reached check. */
    assert_int_equal(st.ops[0].out, 2);
    assert_int_equal(st.ops[2].in, 3);
    assert_int_equal(st.ops[3].in, 2);
    assert_dir(f->out, "");
}

/* A line longer than the most a record holds (64 bytes here, 1 GiB
 * normally) fails the task instead of growing the buffer without end; a
 * line of exactly 64 bytes passes, with a buffer of 5 bytes or the
 * default one. */
static void line_too_long(void **state)
{
    fx_t *f = *state;
    char err[512];
    char text[200];
    memset(text, 'x', sizeof(text));
    memcpy(text, "ok\n", 3);
    text[3 + 64] = '\n';
    text[3 + 64 + 1 + 65] = '\n';
    fj_source_text_set_max_line(64);
    for (size_t b = 0; b <= 5; b += 5) {
        fj_source_text_set_buffer(b);
        write_file(f->input, text, 3 + 64 + 1);
        assert_fl_ok(run3(f, f->input, NULL, NULL, err, sizeof(err)));
        write_file(f->input, text, 3 + 64 + 1 + 65 + 1);
        expect3f(f, f->input, NULL, NULL, FL_EINVAL,
                 "Operator 'lines' (source.text) cannot read %s: the line at "
                 "byte 68 is longer than 64 bytes, the most a record holds",
                 f->input);
        /* The first run's part stays; the failed one left nothing. */
        assert_dir(f->out, "part-0");
    }
    fj_source_text_set_buffer(0);
    fj_source_text_set_max_line(0);
}

static void pattern_with_newline(void **state)
{
    fx_t *f = *state;
    char err[512];
    fj_param_t p[] = {{"pattern", "a\nb"}};
    fj_op_spec_t mid = {"grep", "filter.contains", p, 1};
    assert_fl(FL_EINVAL, run3(f, f->input, &mid, NULL, err, sizeof(err)));
    assert_string_equal(err, "Operator 'grep' (filter.contains) has a "
                             "'pattern' with a newline; a record is one "
                             "line, so give a pattern of one line");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(missing_input),        FX_TEST(unreadable_input),
        FX_TEST(unwritable_output),    FX_TEST(output_parents_made),
        FX_TEST(unknown_operator),     FX_TEST(missing_params),
        FX_TEST(bad_sequence_params),  FX_TEST(bad_chains),
        FX_TEST(missing_library),      FX_TEST(missing_function),
        FX_TEST(function_fails),       FX_TEST(pattern_with_newline),
        FX_TEST(flatmap_ignores_stop), FX_TEST(line_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
