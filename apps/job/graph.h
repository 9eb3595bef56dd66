/*
 * apps/job/graph.h - the three graphs of a job, as Flink has them:
 *
 *   StreamGraph     one node per operator, params substituted; edges
 *                   FORWARD between equal parallelism, else REBALANCE.
 *   JobGraph        operators on FORWARD edges chained into one JobVertex
 *                   ("Source: lines -> Filter: match -> Sink: out"); the
 *                   edges left become intermediate data sets and job edges.
 *   ExecutionGraph  each JobVertex expanded to its parallelism: execution
 *                   vertices "name (i/n)", intermediate result partitions,
 *                   one execution attempt each (number 0, state CREATED).
 *
 * The structs are read-only views for printing and scheduling. Each graph
 * borrows the one it was built from: free the ExecutionGraph before its
 * JobGraph, the JobGraph before its StreamGraph. Not thread-safe; nothing
 * blocks. Functions return fl_err codes unless they say otherwise.
 */
#ifndef FLING_APPS_JOB_GRAPH_H
#define FLING_APPS_JOB_GRAPH_H

#include <stdint.h>
#include <stdio.h>

#include "job/job.h"
#include "job/ops.h"
#include "job/spec.h"

/* A 128-bit id (job, vertex, data set), printed as 32 hex digits like
 * Flink's JobID and JobVertexID. */
typedef struct fj_id {
    uint8_t b[16];
} fj_id_t;

/* fj_id_format writes id as 32 lowercase hex digits and a NUL into out. */
void fj_id_format(const fj_id_t *id, char out[33]);

/* fj_id_parse reads 32 hex digits (either case) into *id; FL_EINVAL for
 * anything else. */
int fj_id_parse(const char *hex, fj_id_t *id);

/* fj_id_random fills *id from the system's random source (getrandom);
 * FL_ESYSTEM if it fails. May block at boot until entropy is ready. */
int fj_id_random(fj_id_t *id);

typedef enum fj_partitioning { FJ_FORWARD, FJ_REBALANCE } fj_partitioning_t;

/* fj_partitioning_name returns "FORWARD" or "REBALANCE" (static). */
const char *fj_partitioning_name(fj_partitioning_t p);

/* ---- StreamGraph ----------------------------------------------------- */

typedef struct fj_stream_node {
    int id;          /* 1, 2, ... in topological order (inputs first) */
    fj_op_spec_t op; /* params with job parameters substituted */
    char *name;      /* "Filter: match" */
    fj_op_kind_t kind;
    int parallelism;
    int input; /* the id of its input node, 0 for a source */
} fj_stream_node_t;

typedef struct fj_stream_edge {
    int source, target; /* node ids */
    fj_partitioning_t partitioning;
} fj_stream_edge_t;

typedef struct fj_stream_graph {
    char *job_name;
    char *library; /* substituted, or NULL */
    fj_stream_node_t *nodes;
    size_t n_nodes;
    fj_stream_edge_t *edges;
    size_t n_edges;
} fj_stream_graph_t;

/* fj_stream_graph_build checks job (fj_job_check), substitutes its job
 * parameters (values from fj_job_set_arg, else the defaults) and builds
 * its StreamGraph into *out (caller frees with fj_stream_graph_free).
 * FL_EINVAL with the reason in err for a broken rule, a parameter without
 * a value, or a param that must be a number and is not; FL_ENOMEM. The
 * graph copies what it needs: job may be freed after. */
int fj_stream_graph_build(const fj_job_t *job, fj_stream_graph_t **out,
                          char *err, size_t errlen);

/* fj_stream_graph_free frees sg; NULL is a no-op. */
void fj_stream_graph_free(fj_stream_graph_t *sg);

/* ---- JobGraph -------------------------------------------------------- */

typedef struct fj_job_vertex {
    fj_id_t id; /* a hash of the job's name and the chain */
    char *name; /* "Source: lines -> Sink: out" */
    int parallelism;
    fj_op_spec_t *chain; /* the chained operators, in flow order */
    size_t chain_len;
    const fj_stream_node_t **nodes; /* the same, as stream nodes */
} fj_job_vertex_t;

/* An intermediate data set: what one vertex produces for another. */
typedef struct fj_data_set {
    fj_id_t id;
    size_t producer; /* vertex index */
} fj_data_set_t;

typedef struct fj_job_edge {
    size_t data_set; /* index */
    size_t target;   /* vertex index */
    fj_partitioning_t partitioning;
} fj_job_edge_t;

typedef struct fj_job_graph {
    fj_id_t job_id;
    const fj_stream_graph_t *sg;
    fj_job_vertex_t *vertices;
    size_t n_vertices;
    fj_data_set_t *data_sets;
    size_t n_data_sets;
    fj_job_edge_t *edges;
    size_t n_edges;
} fj_job_graph_t;

/* fj_job_graph_build chains sg into a JobGraph (*out; caller frees with
 * fj_job_graph_free, before sg) with the job id *job_id, or a random one
 * if job_id is NULL. An edge is chained when it is FORWARD and its source
 * has no other output (the task runner runs a chain, not a tree). */
int fj_job_graph_build(const fj_stream_graph_t *sg, const fj_id_t *job_id,
                       fj_job_graph_t **out);

/* fj_job_graph_free frees jg; NULL is a no-op. */
void fj_job_graph_free(fj_job_graph_t *jg);

/* fj_job_check_runnable returns FL_OK when every vertex runs alone (this
 * version's tasks exchange no records), else FL_ENOTSUP with the first
 * job edge that needs an exchange said in err. */
int fj_job_check_runnable(const fj_job_graph_t *jg, char *err, size_t errlen);

/* ---- ExecutionGraph -------------------------------------------------- */

/* Flink's ExecutionState, in its order. */
typedef enum fj_exec_state {
    FJ_CREATED,
    FJ_SCHEDULED,
    FJ_DEPLOYING,
    FJ_INITIALIZING,
    FJ_RUNNING,
    FJ_FINISHED,
    FJ_CANCELING,
    FJ_CANCELED,
    FJ_FAILED
} fj_exec_state_t;

/* fj_exec_state_name returns "CREATED", "RUNNING", ... (static). */
const char *fj_exec_state_name(fj_exec_state_t s);

typedef struct fj_exec_vertex {
    char *name;        /* "Source: lines -> Sink: out (2/4)" */
    size_t job_vertex; /* index in the JobGraph */
    int subtask;       /* 0-based */
    int parallelism;
    int attempt; /* the current Execution's attempt number */
    fj_exec_state_t state;
} fj_exec_vertex_t;

/* One partition of an intermediate result: produced by one subtask. */
typedef struct fj_result_partition {
    size_t data_set; /* index in the JobGraph: the IntermediateResult */
    int index;       /* the producer's subtask */
    size_t producer; /* execution vertex index */
} fj_result_partition_t;

typedef struct fj_exec_graph {
    const fj_job_graph_t *jg;
    fj_exec_vertex_t *vertices; /* vertex by vertex, subtask by subtask */
    size_t n_vertices;
    fj_result_partition_t *partitions;
    size_t n_partitions;
} fj_exec_graph_t;

/* fj_exec_graph_build expands jg into *out (caller frees with
 * fj_exec_graph_free, before jg). */
int fj_exec_graph_build(const fj_job_graph_t *jg, fj_exec_graph_t **out);

/* fj_exec_graph_free frees eg; NULL is a no-op. */
void fj_exec_graph_free(fj_exec_graph_t *eg);

/* What the task runner needs to run execution vertex i: its chain (in
 * flow order, borrowed from the graphs), its subtask index, its
 * parallelism and the job's user library (or NULL). */
typedef struct fj_task_spec {
    const char *name;
    const fj_op_spec_t *chain;
    size_t chain_len;
    int subtask;
    int parallelism;
    const char *library;
} fj_task_spec_t;

/* fj_exec_graph_task fills *out for execution vertex i; FL_EINVAL when i
 * is out of range. The pointers live as long as the graphs. */
int fj_exec_graph_task(const fj_exec_graph_t *eg, size_t i,
                       fj_task_spec_t *out);

/* ---- printing -------------------------------------------------------- */

/* Each prints its graph as text to f (formats in docs/jobs.md); FL_ESYSTEM
 * if writing fails. */
int fj_stream_graph_print(const fj_stream_graph_t *sg, FILE *f);
int fj_job_graph_print(const fj_job_graph_t *jg, FILE *f);
int fj_exec_graph_print(const fj_exec_graph_t *eg, FILE *f);

/* fj_plan_print_dot prints the three graphs as one Graphviz digraph, a
 * cluster each, to f; FL_ESYSTEM if writing fails. */
int fj_plan_print_dot(const fj_exec_graph_t *eg, FILE *f);

#endif
