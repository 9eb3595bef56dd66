/*
 * job_graph_test - the three graphs: the examples printed exactly, the
 * chaining rules, the ExecutionGraph's sizes, the builder against the job
 * file, the JSON round trip, the task accessor, dot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fl_test.h"
#include "job/graph.h"
#include "job/job.h"
#include "job/util.h"

#define EXAMPLES FLING_SOURCE_DIR "/examples/jobs/"

static const fj_id_t job_id = {{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
                                0xff}};

typedef struct plan {
    fj_stream_graph_t *sg;
    fj_job_graph_t *jg;
    fj_exec_graph_t *eg;
} plan_t;

static plan_t plan_of(const fj_job_t *job)
{
    plan_t p = {0};
    char err[1024] = "";
    if (fj_stream_graph_build(job, &p.sg, err, sizeof err) != FL_OK)
        fail_msg("plan failed: %s", err);
    assert_fl_ok(fj_job_graph_build(p.sg, &job_id, &p.jg));
    assert_fl_ok(fj_exec_graph_build(p.jg, &p.eg));
    return p;
}

static void plan_free(plan_t *p)
{
    fj_exec_graph_free(p->eg);
    fj_job_graph_free(p->jg);
    fj_stream_graph_free(p->sg);
}

/* What the printers write: the three graphs, blank lines between. */
static char *printed(const plan_t *p, bool dot)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    if (dot) {
        assert_fl_ok(fj_plan_print_dot(p->eg, f));
    } else {
        assert_fl_ok(fj_stream_graph_print(p->sg, f));
        fputc('\n', f);
        assert_fl_ok(fj_job_graph_print(p->jg, f));
        fputc('\n', f);
        assert_fl_ok(fj_exec_graph_print(p->eg, f));
    }
    fclose(f);
    return buf;
}

static char *stream_printed(const fj_job_t *job)
{
    plan_t p = plan_of(job);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_fl_ok(fj_stream_graph_print(p.sg, f));
    fclose(f);
    plan_free(&p);
    return buf;
}

/* The id of the vertex chaining the operators ids of job name (its hash
 * of the job's name and the operator ids, docs/jobs.md). */
static void vertex_id(char out[33], const char *name, const char *a,
                      const char *b, const char *c)
{
    const char *parts[] = {name, a, b, c};
    fj_id_t id;
    fj_id_hash(id.b, parts, c ? 4 : b ? 3 : 2);
    fj_id_format(&id, out);
}

/* Asserts that got is written as the same job file as want. */
static void assert_same_json(const fj_job_t *want, const fj_job_t *got)
{
    char *jw, *jg;
    assert_fl_ok(fj_job_to_json(want, &jw, NULL));
    assert_fl_ok(fj_job_to_json(got, &jg, NULL));
    assert_string_equal(jw, jg);
    free(jw);
    free(jg);
}

/* Asserts that got prints the same StreamGraph as want. */
static void assert_same_stream(const fj_job_t *want, const fj_job_t *got)
{
    char *sw = stream_printed(want), *sg = stream_printed(got);
    assert_string_equal(sw, sg);
    free(sw);
    free(sg);
}

static fj_job_t *load(const char *path)
{
    char err[1024] = "";
    fj_job_t *job = NULL;
    if (fj_job_load(path, &job, err, sizeof err) != FL_OK)
        fail_msg("load failed: %s", err);
    return job;
}

static void arg(fj_job_t *job, const char *k, const char *v)
{
    char err[256];
    assert_fl_ok(fj_job_set_arg(job, k, v, err, sizeof err));
}

/* The plan printed of a job whose three nodes chain into one vertex:
 * stream (its StreamGraph) and then its JobGraph and ExecutionGraph, into
 * buf. */
static void one_vertex_plan(char *buf, size_t cap, const char *stream,
                            const char *job, const char *a, const char *b,
                            const char *c, const char *chain, int par)
{
    char v[33];
    vertex_id(v, job, a, b, c);
    size_t n = (size_t)snprintf(
        buf, cap,
        "%s\n"
        "JobGraph of job '%s' (00112233445566778899aabbccddeeff): 1 "
        "vertex, 0 data sets, 0 job edges\n"
        "  vertex %s \"%s\", parallelism %d, nodes 1, 2, 3\n"
        "\n"
        "ExecutionGraph of job '%s' "
        "(00112233445566778899aabbccddeeff): %d execution vertices, 0 "
        "result partitions\n",
        stream, job, v, chain, par, job, par);
    for (int i = 0; i < par; i++) {
        assert_true(n < cap);
        n += (size_t)snprintf(buf + n, cap - n,
                              "  \"%s (%d/%d)\" subtask %d, attempt 0 "
                              "CREATED\n",
                              chain, i + 1, par, i);
    }
    assert_true(n < cap);
}

static void grep_example(void **state)
{
    (void)state;
    fj_job_t *job = load(EXAMPLES "grep.json");
    arg(job, "input", "/data/in.txt");
    arg(job, "pattern", "ERROR");
    arg(job, "output", "/tmp/out");
    plan_t p = plan_of(job);
    char *text = printed(&p, false);
    char expect[4096];
    one_vertex_plan(
        expect, sizeof expect,
        "StreamGraph of job 'grep': 3 nodes, 2 edges\n"
        "  node 1 \"Source: lines\" source.text, parallelism 4, "
        "path=/data/in.txt\n"
        "  node 2 \"Filter: match\" filter.contains, parallelism 4, "
        "pattern=ERROR\n"
        "  node 3 \"Sink: out\" sink.text, parallelism 4, path=/tmp/out\n"
        "  edge 1 -> 2 FORWARD\n"
        "  edge 2 -> 3 FORWARD\n",
        "grep", "lines", "match", "out",
        "Source: lines -> Filter: match -> Sink: out", 4);
    assert_string_equal(expect, text);
    char err[256] = "x";
    assert_fl_ok(fj_job_check_runnable(p.jg, err, sizeof err));

    /* The task runner's view of subtask 3. */
    fj_task_spec_t t;
    assert_fl_ok(fj_exec_graph_task(p.eg, 3, &t));
    assert_string_equal("Source: lines -> Filter: match -> Sink: out (4/4)",
                        t.name);
    assert_int_equal(3, t.subtask);
    assert_int_equal(4, t.parallelism);
    assert_null(t.library);
    assert_int_equal(3, t.chain_len);
    assert_string_equal("lines", t.chain[0].id);
    assert_string_equal("source.text", t.chain[0].type);
    assert_string_equal("/data/in.txt", fj_spec_param(&t.chain[0], "path"));
    assert_string_equal("filter.contains", t.chain[1].type);
    assert_string_equal("ERROR", fj_spec_param(&t.chain[1], "pattern"));
    assert_string_equal("/tmp/out", fj_spec_param(&t.chain[2], "path"));
    assert_fl(FL_EINVAL, fj_exec_graph_task(p.eg, 4, &t));
    free(text);
    plan_free(&p);
    fj_job_free(job);
}

static void sequence_example(void **state)
{
    (void)state;
    fj_job_t *job = load(EXAMPLES "sequence.json");
    arg(job, "output", "/tmp/squares");
    plan_t p = plan_of(job);
    char *text = printed(&p, false);
    char expect[4096];
    one_vertex_plan(
        expect, sizeof expect,
        "StreamGraph of job 'sequence': 3 nodes, 2 edges\n"
        "  library libfling_udf_example.so\n"
        "  node 1 \"Source: numbers\" source.sequence, parallelism 2, "
        "from=1, to=100\n"
        "  node 2 \"Map: square\" map, parallelism 2, function=square\n"
        "  node 3 \"Sink: out\" sink.text, parallelism 2, "
        "path=/tmp/squares\n"
        "  edge 1 -> 2 FORWARD\n"
        "  edge 2 -> 3 FORWARD\n",
        "sequence", "numbers", "square", "out",
        "Source: numbers -> Map: square -> Sink: out", 2);
    assert_string_equal(expect, text);
    fj_task_spec_t t;
    assert_fl_ok(fj_exec_graph_task(p.eg, 1, &t));
    assert_string_equal("libfling_udf_example.so", t.library);
    assert_string_equal("square", fj_spec_param(&t.chain[1], "function"));
    free(text);
    plan_free(&p);
    fj_job_free(job);
}

/* grep.yaml is grep.json in YAML: the same job. */
static void yaml_example(void **state)
{
    (void)state;
    fj_job_t *y = load(EXAMPLES "grep.yaml"), *j = load(EXAMPLES "grep.json");
    assert_same_json(j, y);
    fj_job_free(y);
    fj_job_free(j);
}

/* grep built in C prints the same StreamGraph as grep.json. */
static void builder_matches_file(void **state)
{
    (void)state;
    fj_job_t *b = fj_job_new("grep");
    assert_non_null(b);
    assert_fl_ok(fj_job_set_parallelism(b, 4));
    assert_fl_ok(fj_job_declare_param(b, "input", NULL));
    assert_fl_ok(fj_job_declare_param(b, "pattern", NULL));
    assert_fl_ok(fj_job_declare_param(b, "output", NULL));
    assert_fl_ok(fj_job_source_text(b, "lines", "${input}"));
    assert_fl_ok(fj_job_filter_contains(b, "match", "${pattern}"));
    assert_fl_ok(fj_job_sink_text(b, "out", "${output}"));
    fj_job_t *f = load(EXAMPLES "grep.json");
    fj_job_t *both[] = {b, f};
    for (int i = 0; i < 2; i++) {
        arg(both[i], "input", "/in");
        arg(both[i], "pattern", "x");
        arg(both[i], "output", "/out");
    }
    assert_same_stream(f, b);
    /* And the same job file. */
    assert_same_json(f, b);
    fj_job_free(b);
    fj_job_free(f);
}

/* A job written as JSON parses back to the same job, arguments as
 * defaults; odd characters survive. */
static void json_round_trip(void **state)
{
    (void)state;
    fj_job_t *job = fj_job_new("tricky \"name\"\\\t\xc2\x85\xe2\x80\xa8");
    assert_fl_ok(fj_job_set_library(job, "/lib/libu.so"));
    assert_fl_ok(fj_job_declare_param(job, "input", NULL));
    assert_fl_ok(fj_job_declare_param(job, "to", "9"));
    assert_fl_ok(fj_job_source_sequence(job, "n", "1", "${to}"));
    assert_fl_ok(fj_job_set_op_parallelism(job, "n", 3));
    assert_fl_ok(fj_job_add_op(job, "m", "flatmap", "n"));
    assert_fl_ok(fj_job_set_op_param(job, "m", "function", "split\n\x01"));
    assert_fl(FL_ENOENT, fj_job_set_op_param(job, "zz", "function", "f"));
    assert_fl_ok(fj_job_sink_text(job, "out", "${input}/o"));
    arg(job, "input", "/i n");
    char *j1;
    size_t len;
    assert_fl_ok(fj_job_to_json(job, &j1, &len));
    assert_int_equal(strlen(j1), len);
    char err[1024] = "";
    fj_job_t *back = NULL;
    if (fj_job_parse(j1, len, "wire", &back, err, sizeof err) != FL_OK)
        fail_msg("round trip failed: %s\n%s", err, j1);
    assert_same_json(job, back);
    assert_same_stream(job, back);
    assert_string_equal(fj_job_name(job), fj_job_name(back));
    free(j1);
    fj_job_free(back);
    fj_job_free(job);
}

/* FORWARD edges chain; a change of parallelism (REBALANCE) or a fan-out
 * cuts the chain into vertices joined by data sets. */
static void chaining(void **state)
{
    (void)state;
    fj_job_t *job = fj_job_new("c");
    assert_fl_ok(fj_job_set_parallelism(job, 4));
    assert_fl_ok(fj_job_source_text(job, "src", "/in"));
    assert_fl_ok(fj_job_map(job, "a", "f"));
    assert_fl_ok(fj_job_set_op_parallelism(job, "a", 2));
    assert_fl_ok(fj_job_filter(job, "b", "g"));
    assert_fl_ok(fj_job_set_op_parallelism(job, "b", 2));
    assert_fl_ok(fj_job_sink_text(job, "s1", "/o1"));
    assert_fl_ok(fj_job_set_op_parallelism(job, "s1", 2));
    assert_fl_ok(fj_job_add_op(job, "s2", "sink.text", "src"));
    assert_fl_ok(fj_job_set_op_param(job, "s2", "path", "/o2"));
    plan_t p = plan_of(job);
    /* src -> a REBALANCE, a -> b -> s1 FORWARD, src -> s2 FORWARD but src
     * has two outputs. */
    assert_int_equal(5, p.sg->n_nodes);
    assert_int_equal(FJ_REBALANCE, p.sg->edges[0].partitioning);
    assert_int_equal(3, p.jg->n_vertices);
    assert_string_equal("Source: src", p.jg->vertices[0].name);
    assert_string_equal("Map: a -> Filter: b -> Sink: s1",
                        p.jg->vertices[1].name);
    assert_string_equal("Sink: s2", p.jg->vertices[2].name);
    assert_int_equal(2, p.jg->n_data_sets);
    assert_int_equal(2, p.jg->n_edges);
    assert_int_equal(FJ_REBALANCE, p.jg->edges[0].partitioning);
    assert_int_equal(1, p.jg->edges[0].target);
    assert_int_equal(FJ_FORWARD, p.jg->edges[1].partitioning);
    assert_int_equal(2, p.jg->edges[1].target);
    assert_int_equal(0, p.jg->data_sets[1].producer);
    /* 4 + 2 + 4 execution vertices; the source's two data sets have 4
     * partitions each. */
    assert_int_equal(10, p.eg->n_vertices);
    assert_int_equal(8, p.eg->n_partitions);
    assert_string_equal("Map: a -> Filter: b -> Sink: s1 (2/2)",
                        p.eg->vertices[5].name);
    assert_int_equal(3, p.eg->partitions[7].index);
    assert_int_equal(3, p.eg->partitions[7].producer);
    char err[512] = "";
    assert_fl(FL_ENOTSUP, fj_job_check_runnable(p.jg, err, sizeof err));
    assert_string_equal(
        "Job 'c' cannot run yet: the edge from 'Source: src' (parallelism "
        "4) to 'Map: a -> Filter: b -> Sink: s1' (parallelism 2) needs a "
        "REBALANCE exchange, and tasks exchange no records in this version; "
        "give its operators one parallelism and one flow.",
        err);
    /* Vertex ids are the same in every plan; job ids are random. */
    fj_job_graph_t *again = NULL, *other = NULL;
    assert_fl_ok(fj_job_graph_build(p.sg, &job_id, &again));
    assert_fl_ok(fj_job_graph_build(p.sg, NULL, &other));
    assert_memory_equal(p.jg->vertices[1].id.b, again->vertices[1].id.b, 16);
    assert_memory_not_equal(p.jg->vertices[0].id.b, p.jg->vertices[1].id.b, 16);
    assert_memory_not_equal(job_id.b, other->job_id.b, 16);
    fj_job_graph_free(again);
    fj_job_graph_free(other);
    plan_free(&p);
    fj_job_free(job);
}

/* Inputs may name operators further down the file: the StreamGraph puts
 * inputs first, the file's order among the ready. */
static void inputs_in_any_order(void **state)
{
    (void)state;
    char err[512] = "";
    const char *text = "name: o\noperators:\n"
                       "  - {id: out, type: sink.text, input: up, params: "
                       "{path: /o}}\n"
                       "  - {id: up, type: map, input: src, params: "
                       "{function: upper}}\n"
                       "  - {id: src, type: source.text, params: {path: "
                       "/i}}\n";
    fj_job_t *job = NULL;
    assert_fl_ok(
        fj_job_parse(text, strlen(text), "o.yaml", &job, err, sizeof err));
    plan_t p = plan_of(job);
    assert_string_equal("src", p.sg->nodes[0].op.id);
    assert_int_equal(0, p.sg->nodes[0].input);
    assert_string_equal("up", p.sg->nodes[1].op.id);
    assert_int_equal(1, p.sg->nodes[1].input);
    assert_string_equal("out", p.sg->nodes[2].op.id);
    assert_int_equal(2, p.sg->nodes[2].input);
    assert_int_equal(1, p.jg->n_vertices);
    assert_string_equal("Source: src -> Map: up -> Sink: out",
                        p.jg->vertices[0].name);
    plan_free(&p);
    fj_job_free(job);
}

/* The builder refuses only what it cannot record. */
static void builder_arguments(void **state)
{
    (void)state;
    assert_null(fj_job_new(NULL));
    assert_null(fj_job_new(""));
    fj_job_t *job = fj_job_new("b");
    assert_fl(FL_EINVAL, fj_job_add_op(job, "", "map", NULL));
    assert_fl(FL_EINVAL, fj_job_add_op(job, "a", NULL, NULL));
    assert_fl(FL_EINVAL, fj_job_add_op(job, "a", "map", ""));
    assert_fl(FL_EINVAL, fj_job_source_text(job, "s", NULL));
    assert_fl(FL_EINVAL, fj_job_set_library(job, ""));
    assert_fl(FL_EINVAL, fj_job_declare_param(job, NULL, "d"));
    assert_fl(FL_ENOENT, fj_job_set_op_parallelism(job, "none", 2));
    /* Recorded, then refused by the check. */
    assert_fl_ok(fj_job_set_parallelism(job, 0));
    assert_fl_ok(fj_job_source_text(job, "s", "/i"));
    assert_fl_ok(fj_job_sink_text(job, "o", "/o"));
    char err[256] = "";
    assert_fl(FL_EINVAL, fj_job_check(job, err, sizeof err));
    assert_string_equal("Job 'b' has parallelism 0; it must be at least 1 "
                        "and at most 32768.",
                        err);
    fj_job_free(job);
    fj_job_free(NULL);
}

static void ids(void **state)
{
    (void)state;
    char hex[33];
    fj_id_format(&job_id, hex);
    assert_string_equal("00112233445566778899aabbccddeeff", hex);
    fj_id_t back;
    assert_fl_ok(fj_id_parse("00112233445566778899AABBCCDDEEFF", &back));
    assert_memory_equal(job_id.b, back.b, 16);
    assert_fl(FL_EINVAL, fj_id_parse("0011", &back));
    assert_fl(FL_EINVAL,
              fj_id_parse("g0112233445566778899aabbccddeeff", &back));
}

/* Counts the lines of text that start with prefix (after spaces) and hold
 * needle. */
static int count(const char *text, const char *prefix, const char *needle)
{
    int n = 0;
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)len, l);
        const char *t = line + strspn(line, " ");
        if (strncmp(t, prefix, strlen(prefix)) == 0 && strstr(t, needle))
            n++;
        l = nl ? nl + 1 : NULL;
    }
    return n;
}

/* The dot output: one cluster per graph, a node per stream node, vertex,
 * data set, execution vertex and partition, an edge for each link. */
static void dot_structure(void **state)
{
    (void)state;
    fj_job_t *job = fj_job_new("d\"q");
    assert_fl_ok(fj_job_set_parallelism(job, 2));
    assert_fl_ok(fj_job_source_text(job, "src", "/in"));
    assert_fl_ok(fj_job_sink_text(job, "out", "/out"));
    assert_fl_ok(fj_job_set_op_parallelism(job, "out", 3));
    plan_t p = plan_of(job);
    char *dot = printed(&p, true);
    assert_int_equal(0, strncmp(dot, "digraph \"d\\\"q\" {\n", 17));
    assert_int_equal(1, count(dot, "subgraph cluster_stream", "{"));
    assert_int_equal(1, count(dot, "subgraph cluster_job", "{"));
    assert_int_equal(1, count(dot, "subgraph cluster_exec", "{"));
    assert_int_equal(2, count(dot, "s", "[label=\"S"));
    assert_int_equal(1, count(dot, "s1 -> s2", "REBALANCE"));
    assert_int_equal(2, count(dot, "v", "parallelism"));
    assert_int_equal(1, count(dot, "d0 [shape=ellipse", "data set"));
    assert_int_equal(1, count(dot, "v0 -> d0", ";"));
    assert_int_equal(1, count(dot, "d0 -> v1", "REBALANCE"));
    assert_int_equal(5, count(dot, "e", "attempt 0 CREATED"));
    assert_int_equal(2, count(dot, "p", "shape=ellipse"));
    /* Each of the 2 partitions feeds all 3 sink subtasks. */
    assert_int_equal(6, count(dot, "p", "-> e"));
#ifdef FLING_DOT
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -Tsvg -o /dev/null", FLING_DOT);
    FILE *f = popen(cmd, "w");
    assert_non_null(f);
    fputs(dot, f);
    int st = pclose(f);
    assert_true(WIFEXITED(st));
    assert_int_equal(0, WEXITSTATUS(st));
#endif
    free(dot);
    plan_free(&p);
    fj_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(grep_example),
        FL_TEST(sequence_example),
        FL_TEST(builder_matches_file),
        FL_TEST(yaml_example),
        FL_TEST(json_round_trip),
        FL_TEST(chaining),
        FL_TEST(inputs_in_any_order),
        FL_TEST(builder_arguments),
        FL_TEST(ids),
        FL_TEST(dot_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
