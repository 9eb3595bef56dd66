/*
 * graph_print.c - the three graphs as text (docs/jobs.md shows the
 * format).
 */
#include <stdio.h>

#include "job/graph.h"

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static int done(FILE *f)
{
    return ferror(f) ? FL_ESYSTEM : FL_OK;
}

int fj_stream_graph_print(const fj_stream_graph_t *sg, FILE *f)
{
    if (!sg || !f)
        return FL_EINVAL;
    fprintf(f, "StreamGraph of job '%s': %zu %s, %zu %s\n", sg->job_name,
            sg->n_nodes, plural(sg->n_nodes, "node", "nodes"), sg->n_edges,
            plural(sg->n_edges, "edge", "edges"));
    if (sg->library)
        fprintf(f, "  library %s\n", sg->library);
    for (size_t i = 0; i < sg->n_nodes; i++) {
        const fj_stream_node_t *n = &sg->nodes[i];
        fprintf(f, "  node %d \"%s\" %s, parallelism %d", n->id, n->name,
                n->op.type, n->parallelism);
        for (size_t k = 0; k < n->op.n_params; k++)
            fprintf(f, ", %s=%s", n->op.params[k].key, n->op.params[k].value);
        fputc('\n', f);
    }
    for (size_t i = 0; i < sg->n_edges; i++)
        fprintf(f, "  edge %d -> %d %s\n", sg->edges[i].source,
                sg->edges[i].target,
                fj_partitioning_name(sg->edges[i].partitioning));
    return done(f);
}

int fj_job_graph_print(const fj_job_graph_t *jg, FILE *f)
{
    if (!jg || !f)
        return FL_EINVAL;
    char id[33], other[33];
    fj_id_format(&jg->job_id, id);
    fprintf(f, "JobGraph of job '%s' (%s): %zu %s, %zu %s, %zu %s\n",
            jg->sg->job_name, id, jg->n_vertices,
            plural(jg->n_vertices, "vertex", "vertices"), jg->n_data_sets,
            plural(jg->n_data_sets, "data set", "data sets"), jg->n_edges,
            plural(jg->n_edges, "job edge", "job edges"));
    for (size_t i = 0; i < jg->n_vertices; i++) {
        const fj_job_vertex_t *v = &jg->vertices[i];
        fj_id_format(&v->id, id);
        fprintf(f, "  vertex %s \"%s\", parallelism %d, %s", id, v->name,
                v->parallelism, plural(v->chain_len, "node", "nodes"));
        for (size_t k = 0; k < v->chain_len; k++)
            fprintf(f, "%s %d", k ? "," : "", v->nodes[k]->id);
        fputc('\n', f);
    }
    for (size_t i = 0; i < jg->n_data_sets; i++) {
        fj_id_format(&jg->data_sets[i].id, id);
        fj_id_format(&jg->vertices[jg->data_sets[i].producer].id, other);
        fprintf(f, "  data set %s produced by vertex %s\n", id, other);
    }
    for (size_t i = 0; i < jg->n_edges; i++) {
        const fj_job_edge_t *e = &jg->edges[i];
        fj_id_format(&jg->data_sets[e->data_set].id, id);
        fj_id_format(&jg->vertices[e->target].id, other);
        fprintf(f, "  job edge data set %s -> vertex %s %s\n", id, other,
                fj_partitioning_name(e->partitioning));
    }
    return done(f);
}

int fj_exec_graph_print(const fj_exec_graph_t *eg, FILE *f)
{
    if (!eg || !f)
        return FL_EINVAL;
    const fj_job_graph_t *jg = eg->jg;
    char id[33];
    fj_id_format(&jg->job_id, id);
    fprintf(f, "ExecutionGraph of job '%s' (%s): %zu %s, %zu %s\n",
            jg->sg->job_name, id, eg->n_vertices,
            plural(eg->n_vertices, "execution vertex", "execution vertices"),
            eg->n_partitions,
            plural(eg->n_partitions, "result partition", "result partitions"));
    for (size_t i = 0; i < eg->n_vertices; i++) {
        const fj_exec_vertex_t *v = &eg->vertices[i];
        fprintf(f, "  \"%s\" subtask %d, attempt %d %s\n", v->name, v->subtask,
                v->attempt, fj_exec_state_name(v->state));
    }
    for (size_t i = 0; i < eg->n_partitions; i++) {
        const fj_result_partition_t *p = &eg->partitions[i];
        fj_id_format(&jg->data_sets[p->data_set].id, id);
        fprintf(f, "  partition %s#%d produced by \"%s\"\n", id, p->index,
                eg->vertices[p->producer].name);
    }
    return done(f);
}
