/*
 * job_file_test - job files: what parses, and every error with its exact
 * message (docs/jobs.md, "Errors").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_test.h"
#include "job/graph.h"
#include "job/job.h"

/* Parses text as "t.yaml"; asserts it fails with FL_EINVAL and msg. */
static void expect_error(const char *text, const char *msg)
{
    char err[1024] = "";
    fj_job_t *job = (fj_job_t *)1;
    int rc = fj_job_parse(text, strlen(text), "t.yaml", &job, err, sizeof err);
    assert_fl(FL_EINVAL, rc);
    assert_null(job);
    assert_string_equal(msg, err);
}

static fj_job_t *parse_ok(const char *text)
{
    char err[1024] = "";
    fj_job_t *job = NULL;
    int rc = fj_job_parse(text, strlen(text), "t.yaml", &job, err, sizeof err);
    if (rc != FL_OK)
        fail_msg("parse failed: %s", err);
    assert_non_null(job);
    return job;
}

/* Builds the StreamGraph of text; asserts FL_EINVAL and msg. */
static void expect_plan_error(const char *text, const char *msg)
{
    fj_job_t *job = parse_ok(text);
    char err[1024] = "";
    fj_stream_graph_t *sg = (fj_stream_graph_t *)1;
    assert_fl(FL_EINVAL, fj_stream_graph_build(job, &sg, err, sizeof err));
    assert_null(sg);
    assert_string_equal(msg, err);
    fj_job_free(job);
}

/* A job whose operators are the text ops (YAML list items, from line 3). */
static char *job_with(const char *ops)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "name: t\noperators:\n%s", ops);
    return buf;
}

#define SRC "  - {id: lines, type: source.text, params: {path: /in}}\n"
#define SINK "  - {id: out, type: sink.text, params: {path: /out}}\n"

static void syntax_errors(void **state)
{
    (void)state;
    expect_error("{\"name\": \"x\", \"operators\": [}\n",
                 "Job file 't.yaml' does not parse at line 1, column 29: did "
                 "not find expected node content (while parsing a flow "
                 "node).");
    expect_error("{\"name\": \"x\" \"operators\": []}",
                 "Job file 't.yaml' does not parse at line 1, column 14: did "
                 "not find expected ',' or '}' (while parsing a flow "
                 "mapping).");
    expect_error("name: x\n operators: []\n",
                 "Job file 't.yaml' does not parse at line 2, column 11: "
                 "mapping values are not allowed in this context.");
    expect_error("name: x\n---\nname: y\n",
                 "Job file 't.yaml' line 2, column 1: a second document; a "
                 "job file holds one job.");
    expect_error("- a\n- b\n", "Job file 't.yaml' line 1, column 1: a job "
                               "file is a map with 'name' and 'operators'.");
    expect_error("", "Job file 't.yaml' line 1, column 1: a job file is a "
                     "map with 'name' and 'operators'.");
    expect_error("name: &n x\noperators: *n\n",
                 "Job file 't.yaml' line 2, column 12: an alias; a job file "
                 "writes each value out.");
    expect_error("name: [[[[[[[[[[x]]]]]]]]]]\n",
                 "Job file 't.yaml' line 1, column 14: nested deeper than a "
                 "job file goes (8 levels).");
}

static void key_errors(void **state)
{
    (void)state;
    expect_error("{\"name\": \"x\", \"paralellism\": 2, \"operators\": []}",
                 "Job file 't.yaml' line 1, column 15: unknown key "
                 "'paralellism' in the job; did you mean 'parallelism'?");
    expect_error("name: x\ncolour: red\noperators: []\n",
                 "Job file 't.yaml' line 2, column 1: unknown key 'colour' in "
                 "the job; docs/jobs.md lists the keys.");
    expect_error(job_with("  - {id: a, type: source.text, inptu: b}\n"),
                 "Job file 't.yaml' line 3, column 32: unknown key 'inptu' in "
                 "an operator; did you mean 'input'?");
    expect_error("name: x\nname: y\noperators: []\n",
                 "Job file 't.yaml' line 2, column 1: key 'name' is given "
                 "twice in the job.");
    expect_error("operators: []\n",
                 "Job file 't.yaml' has no 'name'; give the job a name.");
    expect_error("name: x\n", "Job file 't.yaml' has no 'operators'; list "
                              "the job's operators under it.");
    expect_error("name: x\noperators: {a: b}\n",
                 "Job file 't.yaml' line 2, column 12: 'operators' must be a "
                 "list of operators.");
    expect_error(job_with("  - {type: source.text}\n"),
                 "Job file 't.yaml' line 3, column 5: the operator has no "
                 "'id'.");
    expect_error(job_with("  - {id: a}\n"),
                 "Job file 't.yaml' line 3, column 5: the operator has no "
                 "'type'.");
    expect_error(job_with("  - {id: '', type: map}\n"),
                 "Job file 't.yaml' line 3, column 10: 'id' must not be "
                 "empty.");
    expect_error(job_with("  - {id: \"a\\0b\", type: map}\n"),
                 "Job file 't.yaml' line 3, column 10: the value of 'id' "
                 "holds a NUL byte.");
    expect_error("name: x\nparallelism: four\noperators: []\n",
                 "Job file 't.yaml' line 2, column 14: 'parallelism' must be "
                 "a whole number, not 'four'.");
    expect_error("name: x\nparams: {a: 1, a: 2}\noperators: []\n",
                 "Job file 't.yaml' line 2, column 16: parameter 'a' is "
                 "declared twice.");
    expect_error(job_with("  - {id: a, type: map, params: [x]}\n"),
                 "Job file 't.yaml' line 3, column 32: 'params' of operator "
                 "'a' must be a map of names to values.");
}

static void rule_errors(void **state)
{
    (void)state;
    expect_error("name: x\noperators: []\n",
                 "Job 'x' has no operators; add a source and a sink.");
    expect_error(job_with(SRC "  - {id: match, type: filter.contain, params: "
                              "{pattern: a}}\n" SINK),
                 "Operator 'match' (t.yaml:4) has an unknown type "
                 "'filter.contain'; did you mean 'filter.contains'?");
    expect_error(job_with(SRC "  - {id: m, type: reduce}\n" SINK),
                 "Operator 'm' (t.yaml:4) has an unknown type 'reduce'; the "
                 "known types are source.text, source.sequence, map, "
                 "flatmap, filter, filter.contains, sink.text.");
    expect_error(job_with(SRC SINK
                          "  - {id: out, type: sink.text, input: lines, "
                          "params: {path: /b}}\n"),
                 "Operator id 'out' (t.yaml:5) is used twice, first at "
                 "t.yaml:4; give each operator its own id.");
    expect_error(job_with(SRC "  - {id: out, type: sink.text, input: lnes, "
                              "params: {path: /b}}\n"),
                 "Operator 'out' (t.yaml:4) takes its input from 'lnes', "
                 "which is no operator of job 't'; did you mean 'lines'?");
    expect_error(job_with(SRC "  - {id: out, type: sink.text, input: "
                              "elsewhere, params: {path: /b}}\n"),
                 "Operator 'out' (t.yaml:4) takes its input from "
                 "'elsewhere', which is no operator of job 't'.");
    expect_error(
        job_with(SRC "  - {id: a, type: map, input: b, params: {function: "
                     "f}}\n"
                     "  - {id: b, type: map, input: a, params: {function: "
                     "f}}\n" SINK),
        "Operators 'a' -> 'b' -> 'a' form a cycle (t.yaml:4); inputs must "
        "lead back to a source.");
    expect_error("name: x\nparallelism: 0\noperators:\n" SRC SINK,
                 "Job 'x' (t.yaml:2) has parallelism 0; it must be at least "
                 "1 and at most 32768.");
    expect_error(job_with(SRC "  - {id: out, type: sink.text, parallelism: "
                              "-1, params: {path: /b}}\n"),
                 "Operator 'out' (t.yaml:4) has parallelism -1; it must be "
                 "at least 1 and at most 32768.");
    expect_error(job_with(SRC "  - {id: more, type: source.sequence, input: "
                              "lines, params: {from: 1, to: 2}}\n" SINK),
                 "Source 'more' (t.yaml:4) has an input ('lines'); a source "
                 "reads no other operator, so remove its 'input'.");
    expect_error(job_with(SRC SINK "  - {id: m, type: map, params: "
                                   "{function: f}}\n"),
                 "Sink 'out' (t.yaml:4) feeds operator 'm'; a sink ends a "
                 "flow, so give 'm' another input.");
    expect_error(
        job_with("  - {id: m, type: map, params: {function: f}}\n" SRC SINK),
        "Operator 'm' (t.yaml:3) has no input: it comes first and "
        "is not a source; put a source before it.");
    expect_error(job_with(SRC "  - {id: m, type: map, params: {function: "
                              "f}}\n  - {id: out, type: sink.text, input: "
                              "lines, params: {path: /b}}\n"),
                 "Operator 'm' (t.yaml:4) leads nowhere: no operator takes "
                 "its output; end the flow with a sink.");
    expect_error(job_with("  - {id: lines, type: source.text}\n" SINK),
                 "Operator 'lines' (t.yaml:3) of type 'source.text' needs the "
                 "param 'path'.");
    expect_error(job_with("  - {id: lines, type: source.text, params: {pth: "
                          "/in}}\n" SINK),
                 "Operator 'lines' (t.yaml:3) has an unknown param 'pth' for "
                 "type 'source.text'; did you mean 'path'?");
    expect_error(job_with("  - {id: n, type: source.sequence, params: {from: "
                          "1, to: 2, step: 1}}\n" SINK),
                 "Operator 'n' (t.yaml:3) has an unknown param 'step'; type "
                 "'source.sequence' takes from and to.");
}

/* A job too big to plan quickly is refused before it is planned. */
static void limits(void **state)
{
    (void)state;
    fj_job_t *job = fj_job_new("big");
    assert_fl_ok(fj_job_source_text(job, "src", "/in"));
    char id[32];
    for (int i = 0; i < 1023; i++) {
        snprintf(id, sizeof id, "m%d", i);
        assert_fl_ok(fj_job_map(job, id, "f"));
    }
    assert_fl_ok(fj_job_sink_text(job, "out", "/out"));
    char err[256] = "";
    assert_fl(FL_EINVAL, fj_job_check(job, err, sizeof err));
    assert_string_equal("Job 'big' has 1025 operators; it may have at most "
                        "1024.",
                        err);
    fj_job_free(job);
    expect_plan_error("name: t\nparallelism: 32768\noperators:\n" SRC
                      "  - {id: m, type: map, params: {function: f}}\n" SINK,
                      "Job 't' has 98304 subtasks in all (the sum of its "
                      "operators' parallelism); it may have at most 65536.");
}

static void parameter_errors(void **state)
{
    (void)state;
    expect_error("name: x\nparams: {input: null}\noperators:\n"
                 "  - {id: lines, type: source.text, params: {path: "
                 "'${inptu}'}}\n" SINK,
                 "Operator 'lines' (t.yaml:4) uses '${inptu}', which is not "
                 "a parameter of job 'x'; did you mean 'input'?");
    expect_error(job_with("  - {id: lines, type: source.text, params: {path: "
                          "'${zzz}'}}\n" SINK),
                 "Operator 'lines' (t.yaml:3) uses '${zzz}', which is not a "
                 "parameter of job 't'; declare it under 'params'.");
    expect_error(job_with("  - {id: lines, type: source.text, params: {path: "
                          "'/a/${in'}}\n" SINK),
                 "Operator 'lines' (t.yaml:3) param 'path' has a '${' that is "
                 "no parameter; write '${name}' (letters, digits, '_', '.', "
                 "'-'), or '$$' for a '$'.");
    expect_error("name: x\nlibrary: '${lib}'\noperators:\n" SRC SINK,
                 "The library of job 'x' uses '${lib}', which is not a "
                 "parameter of job 'x'; declare it under 'params'.");
    expect_error("name: x\nparams:\n  in put: ~\noperators:\n" SRC SINK,
                 "Job parameter 'in put' (t.yaml:3) has a name '${...}' "
                 "cannot use; name it with letters, digits, '_', '.' and "
                 "'-', not starting with '-'.");
    expect_plan_error("name: x\nparams: {input: ~}\noperators:\n"
                      "  - {id: lines, type: source.text, params: {path: "
                      "'${input}'}}\n" SINK,
                      "Job 'x' needs a value for parameter 'input', used by "
                      "operator 'lines': give it with --input VALUE.");
    expect_plan_error("name: x\nparams: {to: 1x}\noperators:\n"
                      "  - {id: n, type: source.sequence, params: {from: 1, "
                      "to: '${to}'}}\n" SINK,
                      "Operator 'n' (t.yaml:4) param 'to' must be a whole "
                      "number, not '1x'.");

    fj_job_t *job = parse_ok("name: x\nparams: {input: ~, output: /o}\n"
                             "operators:\n" SRC SINK);
    char err[256] = "";
    assert_fl(FL_ENOENT, fj_job_set_arg(job, "inptu", "v", err, sizeof err));
    assert_string_equal("Job 'x' has no parameter 'inptu'; did you mean "
                        "'input'?",
                        err);
    assert_fl(FL_ENOENT, fj_job_set_arg(job, "colour", "v", err, sizeof err));
    assert_string_equal("Job 'x' has no parameter 'colour'; its parameters "
                        "are input, output.",
                        err);
    fj_job_free(job);
}

/* Substitution: embedded, several, "$$", a lone '$'; arguments win over
 * defaults. */
static void substitution(void **state)
{
    (void)state;
    fj_job_t *job =
        parse_ok("name: x\nparams: {dir: /d, name: n, ext: ~}\noperators:\n"
                 "  - {id: lines, type: source.text, params: {path: "
                 "'${dir}/${name}.${ext} $$5 $x'}}\n" SINK);
    char err[256] = "";
    assert_fl_ok(fj_job_set_arg(job, "ext", "txt", err, sizeof err));
    assert_fl_ok(fj_job_set_arg(job, "dir", "/data", err, sizeof err));
    fj_stream_graph_t *sg = NULL;
    assert_fl_ok(fj_stream_graph_build(job, &sg, err, sizeof err));
    assert_string_equal("/data/n.txt $5 $x",
                        fj_spec_param(&sg->nodes[0].op, "path"));
    fj_stream_graph_free(sg);
    fj_job_free(job);
}

/* JSON and YAML describe the same job. */
static void json_and_yaml(void **state)
{
    (void)state;
    fj_job_t *a = parse_ok(
        "{\"name\": \"t\", \"parallelism\": 3, \"operators\": [\n"
        " {\"id\": \"lines\", \"type\": \"source.text\", \"params\": "
        "{\"path\": \"/in\"}},\n"
        " {\"id\": \"out\", \"type\": \"sink.text\", \"parallelism\": \"2\", "
        "\"params\": {\"path\": \"/out\"}}]}");
    fj_job_t *b = parse_ok("name: t\nparallelism: 3\noperators:\n"
                           "  - id: lines\n    type: source.text\n"
                           "    params:\n      path: /in\n"
                           "  - id: out\n    type: sink.text\n"
                           "    parallelism: 2\n"
                           "    params: {path: /out}\n");
    char *ja, *jb;
    assert_fl_ok(fj_job_to_json(a, &ja, NULL));
    assert_fl_ok(fj_job_to_json(b, &jb, NULL));
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    fj_job_free(a);
    fj_job_free(b);
}

static void unreadable_file(void **state)
{
    (void)state;
    char err[512] = "";
    fj_job_t *job = (fj_job_t *)1;
    assert_fl(FL_ENOENT,
              fj_job_load("/nonexistent/job.json", &job, err, sizeof err));
    assert_null(job);
    assert_string_equal("Cannot read job file '/nonexistent/job.json': No "
                        "such file or directory.",
                        err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(syntax_errors),   FL_TEST(key_errors),
        FL_TEST(rule_errors),     FL_TEST(parameter_errors),
        FL_TEST(substitution),    FL_TEST(json_and_yaml),
        FL_TEST(unreadable_file), FL_TEST(limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
