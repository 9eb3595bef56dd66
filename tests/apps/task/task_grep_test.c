/*
 * tests/apps/task/task_grep_test.c - grep parity: source.text ->
 * filter.contains -> sink.text, run for every subtask of parallelism 1..5,
 * must give part files whose concatenation equals grep -F's output, byte
 * for byte, on files made to break a line reader: random lines, empty
 * lines, no final newline, CRLF, lines starting right at a range boundary,
 * a line longer than the read buffer. Each file is read with the default
 * buffer and with a 5-byte one.
 */
#include "task_fixture.h"

static const char PATTERN[] = "ab";

/* A deterministic generator (xorshift64*). */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 2685821657736338717ull;
}

/* Runs the grep chain over input with parallelism 1..5 and both buffer
 * sizes; checks the output against grep -F and the counts against the
 * lines. */
static void check_parity(const char *dir, const char *input)
{
    tbuf_t want = {0};
    run_grep(PATTERN, input, &want);
    tbuf_add(&want, "", 0);
    size_t want_lines = 0;
    for (size_t i = 0; i < want.len; i++)
        want_lines += want.data[i] == '\n';
    tbuf_t in = {0};
    assert_int_equal(read_file(input, &in), 0);
    tbuf_add(&in, "", 0);
    size_t in_lines = 0;
    for (size_t i = 0; i < in.len; i++)
        in_lines += in.data[i] == '\n';
    if (in.len > 0 && in.data[in.len - 1] != '\n')
        in_lines++;
    static const size_t buffers[] = {0, 5};
    for (size_t b = 0; b < 2; b++) {
        fj_source_text_set_buffer(buffers[b]);
        for (unsigned n = 1; n <= 5; n++) {
            char *out = path_in(dir, "out");
            fj_param_t src_p[] = {{"path", input}};
            fj_param_t grep_p[] = {{"pattern", PATTERN}};
            fj_param_t sink_p[] = {{"path", out}};
            fj_op_spec_t chain[] = {
                {"lines", "source.text", src_p, 1},
                {"grep", "filter.contains", grep_p, 1},
                {"out", "sink.text", sink_p, 1},
            };
            uint64_t lines = 0, kept = 0;
            for (unsigned i = 0; i < n; i++) {
                fj_task_t t = task_of(chain, 3, i, n);
                fj_task_stats_t st;
                char err[512] = "";
                int rc = run_task(&t, &st, err, sizeof(err));
                if (rc != FL_OK)
                    fail_msg("%s subtask %u of %u: %s", input, i, n, err);
                assert_string_equal(err, "");
                assert_int_equal(st.n_ops, 3);
                assert_int_equal(st.ops[0].in, st.ops[0].out);
                assert_int_equal(st.ops[1].in, st.ops[0].out);
                assert_int_equal(st.ops[2].in, st.ops[1].out);
                assert_int_equal(st.ops[2].out, st.ops[2].in);
                lines += st.ops[0].out;
                kept += st.ops[1].out;
            }
            assert_int_equal(lines, in_lines);
            assert_int_equal(kept, want_lines);
            tbuf_t got = {0};
            concat_parts(out, n, &got);
            if (got.len != want.len || memcmp(got.data, want.data, got.len))
                fail_msg("%s, parallelism %u, buffer %zu: %zu bytes, grep "
                         "gives %zu",
                         input, n, buffers[b], got.len, want.len);
            /* Only the part files: no temporary file left. */
            static const char *const names[] = {
                "part-0", "part-0 part-1", "part-0 part-1 part-2",
                "part-0 part-1 part-2 part-3",
                "part-0 part-1 part-2 part-3 part-4"};
            assert_dir(out, names[n - 1]);
            tbuf_free(&got);
            char *cmd = NULL;
            for (unsigned i = 0; i < n; i++) {
                char name[32];
                snprintf(name, sizeof(name), "out/part-%u", i);
                cmd = path_in(dir, name);
                assert_int_equal(unlink(cmd), 0);
                free(cmd);
            }
            free(out);
        }
    }
    fj_source_text_set_buffer(0);
    tbuf_free(&want);
    tbuf_free(&in);
}

/* Random lines over a small alphabet (so "ab" is frequent), one in five
 * empty, some with '\r' before the '\n'. */
static void gen_random(tbuf_t *b, size_t n_lines, int final_newline)
{
    static const char alphabet[] = "abcab \r";
    for (size_t i = 0; i < n_lines; i++) {
        size_t len = rnd() % 5 == 0 ? 0 : rnd() % 40;
        for (size_t k = 0; k < len; k++) {
            char c = alphabet[rnd() % (sizeof(alphabet) - 1)];
            tbuf_add(b, &c, 1);
        }
        if (i + 1 < n_lines || final_newline)
            tbuf_add(b, "\n", 1);
    }
}

static void random_files(void **state)
{
    char *dir = scratch();
    char *input = path_in(dir, "in.txt");
    for (int final = 0; final <= 1; final++) {
        for (uint64_t seed = 1; seed <= 4; seed++) {
            rnd_state = seed * 0x9E3779B97F4A7C15ull;
            tbuf_t b = {0};
            gen_random(&b, 50 + seed * 37, final);
            write_file(input, b.data, b.len);
            tbuf_free(&b);
            check_parity(dir, input);
        }
    }
    free(input);
    rm_scratch(dir);
}

/* 60 bytes of 12-byte lines, each with the pattern: with 5 instances the
 * ranges start exactly at line starts (12, 24, 36, 48), with 4 inside
 * lines (15, 30, 45), and a pattern may straddle any of them. */
static void range_boundaries(void **state)
{
    char *dir = scratch();
    char *input = path_in(dir, "in.txt");
    const char text[] = "ab--------x\n"
                        "-----ab----\n"
                        "----------a\n"
                        "b---ab-----\n"
                        "ab---------\n";
    write_file(input, text, sizeof(text) - 1);
    check_parity(dir, input);
    /* The same without its final newline, and with CRLF ends. */
    write_file(input, text, sizeof(text) - 2);
    check_parity(dir, input);
    const char crlf[] = "ab\r\n\r\nab\r\nx\r\n\r\nab";
    write_file(input, crlf, sizeof(crlf) - 1);
    check_parity(dir, input);
    free(input);
    rm_scratch(dir);
}

/* Files of nothing but ends: empty, newlines only, one byte. */
static void degenerate_files(void **state)
{
    char *dir = scratch();
    char *input = path_in(dir, "in.txt");
    write_file(input, "", 0);
    check_parity(dir, input);
    write_file(input, "\n\n\n\n\n\n\n", 7);
    check_parity(dir, input);
    write_file(input, "ab", 2);
    check_parity(dir, input);
    free(input);
    rm_scratch(dir);
}

/* A line of 3 MB (longer than the 256 KB buffer), with the pattern only
 * at its end, between short lines. */
static void long_line(void **state)
{
    char *dir = scratch();
    char *input = path_in(dir, "in.txt");
    tbuf_t b = {0};
    tbuf_add(&b, "ab first\n", 9);
    for (int i = 0; i < 3 * 1024 * 1024; i++)
        tbuf_add(&b, "x", 1);
    tbuf_add(&b, "ab\nlast ab\nno\n", 14);
    write_file(input, b.data, b.len);
    tbuf_free(&b);
    check_parity(dir, input);
    free(input);
    rm_scratch(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(random_files),
        FL_TEST(range_boundaries),
        FL_TEST(degenerate_files),
        FL_TEST(long_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
