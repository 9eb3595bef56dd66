/*
 * graph_dot.c - the three graphs as one Graphviz digraph, a cluster each.
 */
#include <stdio.h>

#include "job/graph.h"

/* Writes s inside a dot string: quotes, backslashes and line breaks
 * escaped, other control bytes dropped. */
static void put(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c >= 0x20)
            fputc(c, f);
    }
}

static void stream(const fj_stream_graph_t *sg, FILE *f)
{
    fputs("  subgraph cluster_stream {\n    label=\"StreamGraph\";\n", f);
    for (size_t i = 0; i < sg->n_nodes; i++) {
        const fj_stream_node_t *n = &sg->nodes[i];
        fprintf(f, "    s%d [label=\"", n->id);
        put(f, n->name);
        fprintf(f, "\\nparallelism %d\"];\n", n->parallelism);
    }
    for (size_t i = 0; i < sg->n_edges; i++)
        fprintf(f, "    s%d -> s%d [label=\"%s\"];\n", sg->edges[i].source,
                sg->edges[i].target,
                fj_partitioning_name(sg->edges[i].partitioning));
    fputs("  }\n", f);
}

static void job(const fj_job_graph_t *jg, FILE *f)
{
    char id[33];
    fputs("  subgraph cluster_job {\n    label=\"JobGraph\";\n", f);
    for (size_t i = 0; i < jg->n_vertices; i++) {
        const fj_job_vertex_t *v = &jg->vertices[i];
        fj_id_format(&v->id, id);
        fprintf(f, "    v%zu [label=\"", i);
        put(f, v->name);
        fprintf(f, "\\nparallelism %d\\n%s\"];\n", v->parallelism, id);
    }
    for (size_t i = 0; i < jg->n_data_sets; i++) {
        fj_id_format(&jg->data_sets[i].id, id);
        fprintf(f,
                "    d%zu [shape=ellipse, label=\"data set\\n%s\"];\n"
                "    v%zu -> d%zu;\n",
                i, id, jg->data_sets[i].producer, i);
    }
    for (size_t i = 0; i < jg->n_edges; i++)
        fprintf(f, "    d%zu -> v%zu [label=\"%s\"];\n", jg->edges[i].data_set,
                jg->edges[i].target,
                fj_partitioning_name(jg->edges[i].partitioning));
    fputs("  }\n", f);
}

static void exec(const fj_exec_graph_t *eg, FILE *f)
{
    const fj_job_graph_t *jg = eg->jg;
    fputs("  subgraph cluster_exec {\n    label=\"ExecutionGraph\";\n", f);
    for (size_t i = 0; i < eg->n_vertices; i++) {
        const fj_exec_vertex_t *v = &eg->vertices[i];
        fprintf(f, "    e%zu [label=\"", i);
        put(f, v->name);
        fprintf(f, "\\nattempt %d %s\"];\n", v->attempt,
                fj_exec_state_name(v->state));
    }
    for (size_t i = 0; i < eg->n_partitions; i++) {
        const fj_result_partition_t *p = &eg->partitions[i];
        fprintf(f,
                "    p%zu [shape=ellipse, label=\"partition %d\"];\n"
                "    e%zu -> p%zu;\n",
                i, p->index, p->producer, i);
        /* Consumers: every subtask over REBALANCE (all to all), the
         * subtask of the same index over FORWARD (pointwise). */
        for (size_t k = 0; k < jg->n_edges; k++) {
            const fj_job_edge_t *e = &jg->edges[k];
            if (e->data_set != p->data_set)
                continue;
            for (size_t c = 0; c < eg->n_vertices; c++) {
                const fj_exec_vertex_t *cv = &eg->vertices[c];
                if (cv->job_vertex != e->target ||
                    (e->partitioning == FJ_FORWARD && cv->subtask != p->index))
                    continue;
                fprintf(f, "    p%zu -> e%zu;\n", i, c);
            }
        }
    }
    fputs("  }\n", f);
}

int fj_plan_print_dot(const fj_exec_graph_t *eg, FILE *f)
{
    if (!eg || !f)
        return FL_EINVAL;
    fputs("digraph \"", f);
    put(f, eg->jg->sg->job_name);
    fputs("\" {\n  node [shape=box];\n", f);
    stream(eg->jg->sg, f);
    job(eg->jg, f);
    exec(eg, f);
    fputs("}\n", f);
    return ferror(f) ? FL_ESYSTEM : FL_OK;
}
