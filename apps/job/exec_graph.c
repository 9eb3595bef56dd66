/*
 * exec_graph.c - the ExecutionGraph: each JobVertex expanded to its
 * parallelism, and what a task needs to run one execution vertex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/graph.h"
#include "job/util.h"

const char *fj_exec_state_name(fj_exec_state_t s)
{
    static const char *const names[] = {
        "CREATED",  "SCHEDULED", "DEPLOYING", "INITIALIZING", "RUNNING",
        "FINISHED", "CANCELING", "CANCELED",  "FAILED"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "UNKNOWN";
}

int fj_job_check_runnable(const fj_job_graph_t *jg, char *err, size_t errlen)
{
    if (!jg)
        return FL_EINVAL;
    if (jg->n_edges == 0)
        return FL_OK;
    const fj_job_edge_t *e = &jg->edges[0];
    const fj_job_vertex_t *src =
        &jg->vertices[jg->data_sets[e->data_set].producer];
    const fj_job_vertex_t *dst = &jg->vertices[e->target];
    fj_say(err, errlen,
           "Job '%s' cannot run yet: the edge from '%s' (parallelism %d) to "
           "'%s' (parallelism %d) needs a %s exchange, and tasks exchange no "
           "records in this version; give its operators one parallelism and "
           "one flow.",
           jg->sg->job_name, src->name, src->parallelism, dst->name,
           dst->parallelism, fj_partitioning_name(e->partitioning));
    return FL_ENOTSUP;
}

void fj_exec_graph_free(fj_exec_graph_t *eg)
{
    if (!eg)
        return;
    for (size_t i = 0; i < eg->n_vertices; i++)
        free(eg->vertices[i].name);
    free(eg->vertices);
    free(eg->partitions);
    free(eg);
}

int fj_exec_graph_build(const fj_job_graph_t *jg, fj_exec_graph_t **out)
{
    if (!jg || !out)
        return FL_EINVAL;
    *out = NULL;
    size_t total = 0, parts = 0;
    for (size_t i = 0; i < jg->n_vertices; i++)
        total += (size_t)jg->vertices[i].parallelism;
    for (size_t d = 0; d < jg->n_data_sets; d++)
        parts += (size_t)jg->vertices[jg->data_sets[d].producer].parallelism;
    fj_exec_graph_t *eg = calloc(1, sizeof *eg);
    if (!eg)
        return FL_ENOMEM;
    eg->jg = jg;
    eg->vertices = calloc(total ? total : 1, sizeof *eg->vertices);
    eg->partitions = calloc(parts ? parts : 1, sizeof *eg->partitions);
    if (!eg->vertices || !eg->partitions) {
        fj_exec_graph_free(eg);
        return FL_ENOMEM;
    }
    size_t *first = calloc(jg->n_vertices + 1, sizeof *first);
    if (!first) {
        fj_exec_graph_free(eg);
        return FL_ENOMEM;
    }
    for (size_t i = 0; i < jg->n_vertices; i++) {
        const fj_job_vertex_t *v = &jg->vertices[i];
        first[i] = eg->n_vertices;
        for (int s = 0; s < v->parallelism; s++) {
            fj_exec_vertex_t *ev = &eg->vertices[eg->n_vertices++];
            fj_buf_t name = {0};
            fj_buf_add(&name, "%s (%d/%d)", v->name, s + 1, v->parallelism);
            if (name.oom) {
                free(first);
                fj_exec_graph_free(eg);
                return FL_ENOMEM;
            }
            ev->name = name.s;
            ev->job_vertex = i;
            ev->subtask = s;
            ev->parallelism = v->parallelism;
            ev->attempt = 0;
            ev->state = FJ_CREATED;
        }
    }
    for (size_t d = 0; d < jg->n_data_sets; d++) {
        size_t p = jg->data_sets[d].producer;
        for (int s = 0; s < jg->vertices[p].parallelism; s++) {
            fj_result_partition_t *rp = &eg->partitions[eg->n_partitions++];
            rp->data_set = d;
            rp->index = s;
            rp->producer = first[p] + (size_t)s;
        }
    }
    free(first);
    *out = eg;
    return FL_OK;
}

int fj_exec_graph_task(const fj_exec_graph_t *eg, size_t i, fj_task_spec_t *out)
{
    if (!eg || !out || i >= eg->n_vertices)
        return FL_EINVAL;
    const fj_exec_vertex_t *ev = &eg->vertices[i];
    const fj_job_vertex_t *v = &eg->jg->vertices[ev->job_vertex];
    out->name = ev->name;
    out->chain = v->chain;
    out->chain_len = v->chain_len;
    out->subtask = ev->subtask;
    out->parallelism = ev->parallelism;
    out->library = eg->jg->sg->library;
    return FL_OK;
}
