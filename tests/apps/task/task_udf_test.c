/*
 * tests/apps/task/task_udf_test.c - user functions (the example library's
 * square and words, the test library's tag, twice, fail_on, the built-in
 * ones), the loader's ABI check, cancel from another thread, and attempts:
 * a failed one then a good one leave only the good output.
 */
#include <inttypes.h>
#include <pthread.h>

#include "task_fixture.h"

/* The sequence -5..1000 through square, parallelism 3: the parts in order
 * are the squares, computed here. */
static void sequence_square(void **state)
{
    scratch_io_t s = scratch_io();
    const char *out = s.out;
    fj_param_t seq_p[] = {{"from", "-5"}, {"to", "1000"}};
    fj_param_t sq_p[] = {{"function", "square"}};
    fj_param_t sink_p[] = {{"path", out}};
    fj_op_spec_t chain[] = {
        {"nums", "source.sequence", seq_p, 2},
        {"squares", "map", sq_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    uint64_t total = 0;
    for (unsigned i = 0; i < 3; i++) {
        fj_task_t t = task_of(chain, 3, i, 3);
        t.library = UDF_EXAMPLE;
        fj_task_stats_t st;
        char err[512] = "";
        assert_fl_ok(run_task(&t, &st, err, sizeof(err)));
        assert_string_equal(err, "");
        assert_int_equal(st.ops[1].in, st.ops[0].out);
        assert_int_equal(st.ops[1].out, st.ops[1].in);
        assert_int_equal(st.ops[2].out, st.ops[1].out);
        total += st.ops[0].out;
    }
    assert_int_equal(total, 1006);
    tbuf_t want = {0};
    for (int64_t v = -5; v <= 1000; v++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "%" PRId64 "\n", v * v);
        tbuf_add(&want, line, (size_t)n);
    }
    tbuf_t got = {0};
    concat_parts(out, 3, &got);
    assert_string_equal(got.data, want.data);
    assert_dir(out, "part-0 part-1 part-2");
    tbuf_free(&want);
    tbuf_free(&got);
    rm_scratch_io(&s);
}

/* Runs chain (n_ops) for subtask i of n, attempt, with library; returns
 * the code and leaves the message in err. */
static int run_chain(const fj_op_spec_t *chain, size_t n_ops, unsigned i,
                     unsigned n, unsigned attempt, const char *library,
                     char *err, size_t errlen)
{
    fj_task_t t = task_of(chain, n_ops, i, n);
    t.attempt = attempt;
    t.library = library;
    return run_task(&t, NULL, err, errlen);
}

/* A flatmap (words, then twice) and a map whose open reads its params and
 * the subtask (tag), across two subtasks and attempt 2. */
static void flatmap_and_open(void **state)
{
    scratch_io_t s = scratch_io();
    const char *input = s.input, *out = s.out;
    const char text[] = "one two\n\n  three\tfour  \nfive\n";
    write_file(input, text, sizeof(text) - 1);
    fj_param_t src_p[] = {{"path", input}};
    fj_param_t words_p[] = {{"function", "words"}};
    fj_param_t twice_p[] = {{"function", "twice"}};
    fj_param_t tag_p[] = {{"function", "tag"}, {"tag", "T"}};
    fj_param_t sink_p[] = {{"path", out}};
    fj_op_spec_t chain[] = {
        {"lines", "source.text", src_p, 1}, {"words", "flatmap", words_p, 1},
        {"twice", "flatmap", twice_p, 1},   {"tag", "map", tag_p, 2},
        {"out", "sink.text", sink_p, 1},
    };
    char err[512] = "";
    /* 29 bytes: the first instance's range [0, 14) holds the starts of
     * the lines at 0, 8 and 9; the second one owns "five" (at 24). */
    assert_fl_ok(run_chain(chain, 5, 0, 2, 2, UDF_TEST_LIB, err, sizeof(err)));
    assert_fl_ok(run_chain(chain, 5, 1, 2, 2, UDF_TEST_LIB, err, sizeof(err)));
    assert_string_equal(err, "");
    tbuf_t got = {0};
    concat_parts(out, 2, &got);
    assert_string_equal(got.data, "T/0/2:one\nT/0/2:one\nT/0/2:two\n"
                                  "T/0/2:two\nT/0/2:three\nT/0/2:three\n"
                                  "T/0/2:four\nT/0/2:four\nT/1/2:five\n"
                                  "T/1/2:five\n");
    tbuf_free(&got);
    /* The built-in words (no library), nonempty and upper. */
    fj_param_t nonempty_p[] = {{"function", "nonempty"}};
    fj_param_t upper_p[] = {{"function", "upper"}};
    fj_op_spec_t builtins[] = {
        {"lines", "source.text", src_p, 1},
        {"nonempty", "filter", nonempty_p, 1},
        {"upper", "map", upper_p, 1},
        {"words", "flatmap", words_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    assert_fl_ok(run_chain(builtins, 5, 0, 1, 0, NULL, err, sizeof(err)));
    concat_parts(out, 1, &got);
    assert_string_equal(got.data, "ONE\nTWO\nTHREE\nFOUR\nFIVE\n");
    tbuf_free(&got);
    rm_scratch_io(&s);
}

/* The loader's ABI check, on its own and through a task. */
static void abi_check(void **state)
{
    char err[512] = "";
    fj_udf_lib_t *lib = NULL;
    assert_fl_ok(fj_udf_lib_open(UDF_EXAMPLE, &lib, err, sizeof(err)));
    assert_non_null(lib);
    assert_non_null(fj_udf_lib_sym(lib, "square"));
    assert_non_null(fj_udf_lib_sym(lib, "words"));
    /* A symbol of the C library the example depends on is not its own. */
    assert_null(fj_udf_lib_sym(lib, "strtoll"));
    fj_udf_lib_close(lib);

    lib = (fj_udf_lib_t *)&lib;
    assert_fl(FL_EINVAL, fj_udf_lib_open(UDF_BAD_ABI, &lib, err, sizeof(err)));
    assert_null(lib);
    assert_string_equal(err, "User library " UDF_BAD_ABI " was built for the "
                             "user function ABI 999, and this runner takes "
                             "ABI 1; rebuild it against this version's "
                             "<fling/udf.h>");
    assert_fl(FL_EINVAL, fj_udf_lib_open(UDF_NO_ABI, &lib, err, sizeof(err)));
    assert_string_equal(err, "User library " UDF_NO_ABI " exports no "
                             "fl_udf_abi_version; build it with FL_UDF_ABI "
                             "from <fling/udf.h>");

    scratch_io_t s = scratch_io();
    const char *out = s.out;
    fj_param_t seq_p[] = {{"from", "1"}, {"to", "3"}};
    fj_param_t sq_p[] = {{"function", "square"}};
    fj_param_t sink_p[] = {{"path", out}};
    fj_op_spec_t chain[] = {
        {"nums", "source.sequence", seq_p, 2},
        {"squares", "map", sq_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    assert_fl(FL_EINVAL,
              run_chain(chain, 3, 0, 1, 0, UDF_BAD_ABI, err, sizeof(err)));
    assert_string_equal(err, "User library " UDF_BAD_ABI " was built for the "
                             "user function ABI 999, and this runner takes "
                             "ABI 1; rebuild it against this version's "
                             "<fling/udf.h>");
    /* Refused before the sink made anything. */
    assert_int_equal(access(out, F_OK), -1);
    rm_scratch_io(&s);
}

/* ---- cancel ------------------------------------------------------------ */

typedef struct cancel_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int reported; /* the first progress report came */
    atomic_bool cancel;
    fj_task_t task;
    fj_task_stats_t stats;
    char err[512];
    int rc;
} cancel_ctx_t;

/* The first report tells the test, then waits until it set the flag: the
 * cancel lands in the middle of the file, at a known record. */
static void on_progress(void *arg, const fj_task_stats_t *st)
{
    cancel_ctx_t *c = arg;
    pthread_mutex_lock(&c->mu);
    if (!c->reported) {
        c->reported = 1;
        pthread_cond_broadcast(&c->cv);
        while (!atomic_load_explicit(&c->cancel, memory_order_relaxed))
            pthread_cond_wait(&c->cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
}

static void *run_thread(void *arg)
{
    cancel_ctx_t *c = arg;
    c->rc = run_task(&c->task, &c->stats, c->err, sizeof(c->err));
    return NULL;
}

static void cancel_mid_file(void **state)
{
    scratch_io_t s = scratch_io();
    const char *input = s.input, *out = s.out;
    tbuf_t b = {0};
    for (int i = 0; i < 10000; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "line %d\n", i);
        tbuf_add(&b, line, (size_t)n);
    }
    write_file(input, b.data, b.len);
    tbuf_free(&b);
    fj_param_t src_p[] = {{"path", input}};
    fj_param_t sink_p[] = {{"path", out}};
    fj_op_spec_t chain[] = {
        {"lines", "source.text", src_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    cancel_ctx_t c;
    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    atomic_init(&c.cancel, false);
    c.task = task_of(chain, 2, 0, 1);
    c.task.cancel = &c.cancel;
    c.task.progress = on_progress;
    c.task.progress_arg = &c;
    c.task.progress_every = 1000;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, &c), 0);
    pthread_mutex_lock(&c.mu);
    while (!c.reported)
        pthread_cond_wait(&c.cv, &c.mu);
    /* The part is being written now: its temporary file exists. */
    assert_dir(out, ".part-0.inprogress-0");
    atomic_store_explicit(&c.cancel, true, memory_order_relaxed);
    pthread_cond_broadcast(&c.cv);
    pthread_mutex_unlock(&c.mu);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_fl(FL_ECANCELED, c.rc);
    assert_string_equal(c.err, "Subtask 0 of 1 (attempt 0) was canceled "
                               "after 1000 records of operator 'lines'");
    assert_int_equal(c.stats.ops[0].out, 1000);
    assert_dir(out, "");
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    rm_scratch_io(&s);
}

/* A flag set before the run: canceled at once, even with no record to
 * read (the check before the rename), and nothing left. */
static void cancel_before_start(void **state)
{
    scratch_io_t s = scratch_io();
    const char *input = s.input, *out = s.out;
    fj_param_t src_p[] = {{"path", input}};
    fj_param_t sink_p[] = {{"path", out}};
    fj_op_spec_t chain[] = {
        {"lines", "source.text", src_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    atomic_bool cancel;
    atomic_init(&cancel, true);
    static const char *const inputs[] = {"", "a\nb\n"};
    for (int i = 0; i < 2; i++) {
        write_file(input, inputs[i], strlen(inputs[i]));
        fj_task_t t = task_of(chain, 2, 1, 2);
        t.attempt = 3;
        t.cancel = &cancel;
        fj_task_stats_t st;
        char err[512];
        assert_fl(FL_ECANCELED, run_task(&t, &st, err, sizeof(err)));
        assert_string_equal(err, "Subtask 1 of 2 (attempt 3) was canceled "
                                 "after 0 records of operator 'lines'");
        assert_int_equal(st.ops[1].in, 0);
        assert_dir(out, "");
    }
    rm_scratch_io(&s);
}

/* Attempt 0 fails in a user function halfway, attempt 1 (with a stale
 * temporary file of a killed attempt beside it) succeeds: only attempt
 * 1's part file is left. */
static void failed_then_good_attempt(void **state)
{
    scratch_io_t s = scratch_io();
    const char *input = s.input, *out = s.out;
    write_file(input, "a\nb\nbad\nc\n", 10);
    fj_param_t src_p[] = {{"path", input}};
    fj_param_t fail_p[] = {{"function", "fail_on"}, {"bad", "bad"}};
    fj_param_t tag_p[] = {{"function", "tag"}, {"tag", "t"}};
    fj_param_t sink_p[] = {{"path", out}};
    fj_op_spec_t chain[] = {
        {"lines", "source.text", src_p, 1},
        {"check", "filter", fail_p, 2},
        {"tag", "map", tag_p, 2},
        {"out", "sink.text", sink_p, 1},
    };
    char err[512] = "";
    assert_fl(FL_EINVAL,
              run_chain(chain, 4, 0, 1, 0, UDF_TEST_LIB, err, sizeof(err)));
    assert_string_equal(err, "Operator 'check' (filter) failed in function "
                             "'fail_on' on subtask 0: record 'bad' is bad");
    assert_dir(out, "");
    /* A killed attempt 0 would have left this. */
    char *stale = path_in(out, ".part-0.inprogress-0");
    write_file(stale, "partial", 7);
    write_file(input, "a\nb\nc\n", 6);
    assert_fl_ok(run_chain(chain, 4, 0, 1, 1, UDF_TEST_LIB, err, sizeof(err)));
    assert_dir(out, "part-0");
    tbuf_t got = {0};
    concat_parts(out, 1, &got);
    assert_string_equal(got.data, "t/0/1:a\nt/0/1:b\nt/0/1:c\n");
    tbuf_free(&got);
    free(stale);
    rm_scratch_io(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(sequence_square),     FL_TEST(flatmap_and_open),
        FL_TEST(abi_check),           FL_TEST(cancel_mid_file),
        FL_TEST(cancel_before_start), FL_TEST(failed_then_good_attempt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
