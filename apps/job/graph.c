/*
 * graph.c - ids, the StreamGraph (a job with its parameters substituted)
 * and the JobGraph (operator chaining).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "job/graph.h"
#include "job/job_int.h"
#include "job/util.h"

void fj_id_format(const fj_id_t *id, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[id->b[i] >> 4];
        out[2 * i + 1] = hex[id->b[i] & 15];
    }
    out[32] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fj_id_parse(const char *hex, fj_id_t *id)
{
    if (!hex || !id || strlen(hex) != 32)
        return FL_EINVAL;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return FL_EINVAL;
        id->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return FL_OK;
}

int fj_id_random(fj_id_t *id)
{
    size_t got = 0;
    while (got < sizeof id->b) {
        ssize_t n = getrandom(id->b + got, sizeof id->b - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FL_ESYSTEM;
        got += (size_t)n;
    }
    return FL_OK;
}

const char *fj_partitioning_name(fj_partitioning_t p)
{
    return p == FJ_FORWARD ? "FORWARD" : "REBALANCE";
}

/* ---- StreamGraph --------------------------------------------------------
 */

void fj_stream_graph_free(fj_stream_graph_t *sg)
{
    if (!sg)
        return;
    for (size_t i = 0; i < sg->n_nodes; i++) {
        fj_stream_node_t *n = &sg->nodes[i];
        free((char *)n->op.id);
        free((char *)n->op.type);
        for (size_t k = 0; k < n->op.n_params; k++) {
            free((char *)n->op.params[k].key);
            free((char *)n->op.params[k].value);
        }
        free((fj_param_t *)n->op.params);
        free(n->name);
    }
    free(sg->nodes);
    free(sg->edges);
    free(sg->library);
    free(sg->job_name);
    free(sg);
}

static bool whole_number(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Fills node (id already set) from op, substituting its params. */
static int make_node(const fj_job_t *job, const fj_op_t *op,
                     fj_stream_node_t *node, char *err, size_t errlen)
{
    const fj_op_type_t *t = fj_op_type_find(op->type);
    bool oom = false;
    node->kind = t->kind;
    node->parallelism =
        op->has_parallelism ? op->parallelism : job->parallelism;
    node->op.id = fj_strdup(op->id, &oom);
    node->op.type = fj_strdup(op->type, &oom);
    fj_buf_t name = {0};
    fj_buf_add(&name, "%s: %s", t->display, op->id);
    node->name = name.s;
    fj_param_t *params =
        calloc(op->n_params ? op->n_params : 1, sizeof *params);
    node->op.params = params;
    if (oom || name.oom || !params) {
        fj_say(err, errlen, "Out of memory while planning job '%s'.",
               job->name);
        return FL_ENOMEM;
    }
    for (size_t k = 0; k < op->n_params; k++) {
        int rc;
        params[k].key = fj_strdup(op->params[k].key, &oom);
        params[k].value =
            fj__substitute(job, op, op->params[k].key, op->params[k].value,
                           false, &rc, err, errlen);
        node->op.n_params = k + 1;
        if (rc == FL_ENOMEM || oom) {
            fj_say(err, errlen, "Out of memory while planning job '%s'.",
                   job->name);
            return FL_ENOMEM;
        }
        if (rc != FL_OK)
            return rc;
    }
    for (size_t k = 0; k < t->n_params; k++) {
        if (t->params[k].kind != FJ_PARAM_INT)
            continue;
        const char *v = fj_spec_param(&node->op, t->params[k].key);
        if (!whole_number(v)) {
            char w[512];
            fj_say(err, errlen,
                   "Operator '%s'%s param '%s' must be a whole number, not "
                   "'%s'.",
                   op->id, fj__op_where(job, op, w, sizeof w), t->params[k].key,
                   v);
            return FL_EINVAL;
        }
    }
    return FL_OK;
}

int fj_stream_graph_build(const fj_job_t *job, fj_stream_graph_t **out,
                          char *err, size_t errlen)
{
    if (!out)
        return FL_EINVAL;
    *out = NULL;
    int rc = fj_job_check(job, err, errlen);
    if (rc != FL_OK)
        return rc;
    size_t n = job->n_ops;
    fj_stream_graph_t *sg = calloc(1, sizeof *sg);
    int *node_of = calloc(n, sizeof *node_of); /* op index -> node id */
    long *inputs = fj__op_inputs(job);
    if (sg) {
        sg->job_name = strdup(job->name);
        sg->nodes = calloc(n, sizeof *sg->nodes);
        sg->edges = calloc(n, sizeof *sg->edges);
    }
    if (!sg || !node_of || !inputs || !sg->job_name || !sg->nodes ||
        !sg->edges) {
        fj_say(err, errlen, "Out of memory while planning job '%s'.",
               job->name);
        rc = FL_ENOMEM;
        goto done;
    }
    if (job->library) {
        sg->library = fj__substitute(job, NULL, "library", job->library, false,
                                     &rc, err, errlen);
        if (rc != FL_OK)
            goto done;
    }
    /* Inputs first, file order among the ready: the check ruled out
     * cycles, so each round places at least one operator. */
    while (sg->n_nodes < n) {
        for (size_t i = 0; i < n; i++) {
            if (node_of[i])
                continue;
            long in = inputs[i];
            if (in >= 0 && !node_of[in])
                continue;
            fj_stream_node_t *node = &sg->nodes[sg->n_nodes++];
            node->id = (int)sg->n_nodes;
            node->input = in >= 0 ? node_of[in] : 0;
            node_of[i] = node->id;
            rc = make_node(job, &job->ops[i], node, err, errlen);
            if (rc != FL_OK)
                goto done;
        }
    }
    for (size_t i = 0; i < sg->n_nodes; i++) {
        const fj_stream_node_t *node = &sg->nodes[i];
        if (!node->input)
            continue;
        fj_stream_edge_t *e = &sg->edges[sg->n_edges++];
        e->source = node->input;
        e->target = node->id;
        e->partitioning =
            sg->nodes[node->input - 1].parallelism == node->parallelism
                ? FJ_FORWARD
                : FJ_REBALANCE;
    }
    size_t subtasks = 0;
    for (size_t i = 0; i < sg->n_nodes; i++)
        subtasks += (size_t)sg->nodes[i].parallelism;
    if (subtasks > FJ_SUBTASKS_MAX) {
        fj_say(err, errlen,
               "Job '%s' has %zu subtasks in all (the sum of its operators' "
               "parallelism); it may have at most %d.",
               job->name, subtasks, FJ_SUBTASKS_MAX);
        rc = FL_EINVAL;
    }
done:
    free(inputs);
    free(node_of);
    if (rc != FL_OK) {
        fj_stream_graph_free(sg);
        return rc;
    }
    *out = sg;
    return FL_OK;
}

/* ---- JobGraph -----------------------------------------------------------
 */

void fj_job_graph_free(fj_job_graph_t *jg)
{
    if (!jg)
        return;
    for (size_t i = 0; i < jg->n_vertices; i++) {
        free(jg->vertices[i].name);
        free(jg->vertices[i].chain);
        free(jg->vertices[i].nodes);
    }
    free(jg->vertices);
    free(jg->data_sets);
    free(jg->edges);
    free(jg);
}

/* The number of edges leaving node id. */
static size_t out_degree(const fj_stream_graph_t *sg, int id)
{
    size_t d = 0;
    for (size_t i = 0; i < sg->n_edges; i++)
        d += sg->edges[i].source == id;
    return d;
}

/* The edge that enters node id, or NULL for a source. */
static const fj_stream_edge_t *in_edge(const fj_stream_graph_t *sg, int id)
{
    for (size_t i = 0; i < sg->n_edges; i++)
        if (sg->edges[i].target == id)
            return &sg->edges[i];
    return NULL;
}

static bool chainable(const fj_stream_graph_t *sg, const fj_stream_edge_t *e)
{
    return e && e->partitioning == FJ_FORWARD && out_degree(sg, e->source) == 1;
}

/* Makes the vertex whose chain starts at node head. */
static int make_vertex(const fj_stream_graph_t *sg, int head,
                       fj_job_vertex_t *v, int *vertex_of)
{
    size_t len = 0;
    for (int at = head;;) {
        len++;
        const fj_stream_edge_t *next = NULL;
        for (size_t i = 0; i < sg->n_edges; i++)
            if (sg->edges[i].source == at)
                next = &sg->edges[i];
        if (!chainable(sg, next))
            break;
        at = next->target;
    }
    v->chain = calloc(len, sizeof *v->chain);
    v->nodes = calloc(len, sizeof *v->nodes);
    const char **parts = calloc(len + 1, sizeof *parts);
    fj_buf_t name = {0};
    if (!v->chain || !v->nodes || !parts) {
        free(parts);
        return FL_ENOMEM;
    }
    parts[0] = sg->job_name;
    int at = head;
    for (size_t k = 0; k < len; k++) {
        const fj_stream_node_t *node = &sg->nodes[at - 1];
        v->chain[k] = node->op;
        v->nodes[k] = node;
        parts[k + 1] = node->op.id;
        vertex_of[at - 1] = 1;
        fj_buf_add(&name, "%s%s", k ? " -> " : "", node->name);
        for (size_t i = 0; i < sg->n_edges; i++)
            if (sg->edges[i].source == at) {
                at = sg->edges[i].target;
                break;
            }
    }
    v->chain_len = len;
    v->parallelism = sg->nodes[head - 1].parallelism;
    v->name = name.s;
    fj_id_hash(v->id.b, parts, len + 1);
    free(parts);
    return name.oom ? FL_ENOMEM : FL_OK;
}

/* The index of the vertex whose chain holds node id. */
static size_t vertex_holding(const fj_job_graph_t *jg, int id)
{
    for (size_t i = 0; i < jg->n_vertices; i++)
        for (size_t k = 0; k < jg->vertices[i].chain_len; k++)
            if (jg->vertices[i].nodes[k]->id == id)
                return i;
    return 0;
}

int fj_job_graph_build(const fj_stream_graph_t *sg, const fj_id_t *job_id,
                       fj_job_graph_t **out)
{
    if (!sg || !out)
        return FL_EINVAL;
    *out = NULL;
    fj_job_graph_t *jg = calloc(1, sizeof *jg);
    int *placed = calloc(sg->n_nodes ? sg->n_nodes : 1, sizeof *placed);
    int rc = FL_OK;
    if (jg) {
        jg->sg = sg;
        jg->vertices = calloc(sg->n_nodes + 1, sizeof *jg->vertices);
        jg->data_sets = calloc(sg->n_edges + 1, sizeof *jg->data_sets);
        jg->edges = calloc(sg->n_edges + 1, sizeof *jg->edges);
    }
    if (!jg || !placed || !jg->vertices || !jg->data_sets || !jg->edges) {
        rc = FL_ENOMEM;
        goto done;
    }
    if (job_id)
        jg->job_id = *job_id;
    else if ((rc = fj_id_random(&jg->job_id)) != FL_OK)
        goto done;
    /* A node heads a vertex unless its input edge chains. */
    for (size_t i = 0; i < sg->n_nodes; i++) {
        int id = sg->nodes[i].id;
        if (chainable(sg, in_edge(sg, id)))
            continue;
        rc = make_vertex(sg, id, &jg->vertices[jg->n_vertices++], placed);
        if (rc != FL_OK)
            goto done;
    }
    /* Each edge not chained: a data set of its source's vertex, read by
     * its target's vertex over a job edge. */
    for (size_t i = 0; i < sg->n_edges; i++) {
        const fj_stream_edge_t *e = &sg->edges[i];
        if (chainable(sg, e))
            continue;
        fj_data_set_t *ds = &jg->data_sets[jg->n_data_sets];
        ds->producer = vertex_holding(jg, e->source);
        char src[16], dst[16];
        snprintf(src, sizeof src, "%d", e->source);
        snprintf(dst, sizeof dst, "%d", e->target);
        const char *parts[] = {sg->job_name, "data set", src, dst};
        fj_id_hash(ds->id.b, parts, 4);
        fj_job_edge_t *je = &jg->edges[jg->n_edges++];
        je->data_set = jg->n_data_sets++;
        je->target = vertex_holding(jg, e->target);
        je->partitioning = e->partitioning;
    }
done:
    free(placed);
    if (rc != FL_OK) {
        fj_job_graph_free(jg);
        return rc;
    }
    *out = jg;
    return FL_OK;
}
