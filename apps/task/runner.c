/*
 * apps/task/runner.c - fj_task_run: checks the chain, sets its operators
 * up in order, runs the source, and finishes every operator (the sink
 * last of all renames its part file, or removes it).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <fling/common.h>

#include "task_int.h"

#define DEFAULT_REPORT_EVERY 65536

typedef int (*setup_fn)(fj_op_t *op);

/* The operator types, and where each may stand in a chain. */
static const struct {
    const char *type;
    fj_op_kind_t kind;
    setup_fn setup;
} op_types[] = {
    {"source.text", FJ_OP_SOURCE, fj_source_text_setup},
    {"source.sequence", FJ_OP_SOURCE, fj_source_sequence_setup},
    {"filter.contains", FJ_OP_TRANSFORM, fj_filter_contains_setup},
    {"map", FJ_OP_TRANSFORM, fj_udf_op_setup},
    {"flatmap", FJ_OP_TRANSFORM, fj_udf_op_setup},
    {"filter", FJ_OP_TRANSFORM, fj_udf_op_setup},
    {"sink.text", FJ_OP_SINK, fj_sink_text_setup},
};

#define N_OP_TYPES (sizeof(op_types) / sizeof(op_types[0]))

static void vwrite_err(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vwrite_err(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
}

int fj_run_fail(fj_run_t *run, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite_err(run->err, run->errlen, fmt, ap);
    va_end(ap);
    return code;
}

int fj_op_fail(fj_op_t *op, int code, const char *fmt, ...)
{
    fj_run_t *run = op->run;
    if (!run->err || run->errlen == 0)
        return code;
    int n = snprintf(run->err, run->errlen, "Operator '%s' (%s) ", op->spec->id,
                     op->spec->type);
    if (n >= 0 && (size_t)n < run->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vwrite_err(run->err + n, run->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *fj_op_param(fj_op_t *op, const char *key)
{
    const char *v = fj_spec_param(op->spec, key);
    if (!v)
        fj_op_fail(op, FL_EINVAL, "has no parameter '%s'; add it to the job",
                   key);
    return v;
}

static void report(fj_run_t *run)
{
    const fj_task_t *t = run->task;
    if (t->progress)
        t->progress(t->progress_arg, &run->stats);
}

/* Relaxed: the flag carries no data; pairs with the canceller's store,
 * seen at the latest one record later. */
static int canceled(fj_run_t *run)
{
    const atomic_bool *c = run->task->cancel;
    return c && atomic_load_explicit(c, memory_order_relaxed);
}

static int cancel_fail(fj_run_t *run, const fj_op_t *src)
{
    const fj_task_t *t = run->task;
    return fj_run_fail(run, FL_ECANCELED,
                       "Subtask %u of %u (attempt %u) was canceled after "
                       "%llu records of operator '%s'",
                       (unsigned)t->subtask, (unsigned)t->parallelism,
                       (unsigned)t->attempt,
                       (unsigned long long)src->stats->out, src->spec->id);
}

int fj_source_emit(fj_op_t *src, const char *data, size_t len)
{
    fj_run_t *run = src->run;
    if (canceled(run))
        return cancel_fail(run, src);
    src->stats->in++;
    src->stats->out++;
    if (src->stats->out == run->next_report) {
        run->next_report += run->report_every;
        report(run);
    }
    return src->next->push(src->next, data, len);
}

static int find_type(const fj_op_spec_t *spec)
{
    for (size_t i = 0; i < N_OP_TYPES; i++)
        if (strcmp(op_types[i].type, spec->type) == 0)
            return (int)i;
    return -1;
}

static const char *kind_name(fj_op_kind_t k)
{
    return k == FJ_OP_SOURCE ? "a source"
                             : (k == FJ_OP_SINK ? "a sink" : "a transform");
}

/* Checks the chain's shape and the types of its operators before any of
 * them is set up, so that a bad chain touches no file. */
static int check_chain(fj_run_t *run, int *types)
{
    const fj_task_t *t = run->task;
    if (t->n_ops < 2 || !t->chain)
        return fj_run_fail(run, FL_EINVAL,
                           "A task needs a chain of a source and a sink at "
                           "least, and this one has %zu operators",
                           t->chain ? t->n_ops : (size_t)0);
    if (t->n_ops > FJ_TASK_MAX_OPS)
        return fj_run_fail(run, FL_EINVAL,
                           "A chain of %zu operators is longer than the %d "
                           "a task runs; split the job",
                           t->n_ops, FJ_TASK_MAX_OPS);
    if (t->parallelism < 1 || t->subtask >= t->parallelism)
        return fj_run_fail(run, FL_EINVAL,
                           "Subtask %u does not exist with parallelism %u",
                           (unsigned)t->subtask, (unsigned)t->parallelism);
    for (size_t i = 0; i < t->n_ops; i++) {
        const fj_op_spec_t *s = &t->chain[i];
        if (!s->id || !s->type || (s->n_params > 0 && !s->params))
            return fj_run_fail(run, FL_EINVAL,
                               "Operator %zu of the chain has no id, type "
                               "or params; the job model must give them",
                               i + 1);
        for (size_t p = 0; p < s->n_params; p++)
            if (!s->params[p].key || !s->params[p].value)
                return fj_run_fail(run, FL_EINVAL,
                                   "Operator '%s' has a parameter without a "
                                   "key or a value (number %zu)",
                                   s->id, p + 1);
        int ty = find_type(s);
        if (ty < 0)
            return fj_run_fail(
                run, FL_EINVAL,
                "Operator '%s' has the unknown type '%s'; the types are "
                "source.text, source.sequence, filter.contains, map, "
                "flatmap, filter, sink.text",
                s->id, s->type);
        fj_op_kind_t want =
            i == 0 ? FJ_OP_SOURCE
                   : (i + 1 == t->n_ops ? FJ_OP_SINK : FJ_OP_TRANSFORM);
        if (op_types[ty].kind != want)
            return fj_run_fail(run, FL_EINVAL,
                               "Operator '%s' (%s) is %s and cannot stand at "
                               "place %zu of a chain of %zu, which needs %s",
                               s->id, s->type, kind_name(op_types[ty].kind),
                               i + 1, t->n_ops, kind_name(want));
        types[i] = ty;
    }
    return FL_OK;
}

int fj_task_run(const fj_task_t *task, fj_task_stats_t *stats, char *err,
                size_t errlen)
{
    fj_run_t run;
    memset(&run, 0, sizeof(run));
    run.task = task;
    run.err = err;
    run.errlen = errlen;
    if (err && errlen > 0)
        err[0] = '\0';
    run.report_every =
        task->progress_every ? task->progress_every : DEFAULT_REPORT_EVERY;
    run.next_report = run.report_every;

    fj_op_t ops[FJ_TASK_MAX_OPS];
    int types[FJ_TASK_MAX_OPS];
    size_t n_set = 0;
    int rc = check_chain(&run, types);
    if (rc != FL_OK)
        goto out;
    run.stats.n_ops = task->n_ops;
    if (task->library) {
        rc = fj_udf_lib_open(task->library, &run.lib, err, errlen);
        if (rc != FL_OK)
            goto out;
    }
    memset(ops, 0, sizeof(ops));
    for (size_t i = 0; i < task->n_ops; i++) {
        fj_op_t *op = &ops[i];
        op->spec = &task->chain[i];
        op->run = &run;
        op->stats = &run.stats.ops[i];
        op->next = i + 1 < task->n_ops ? &ops[i + 1] : NULL;
    }
    /* The sink first: an output folder that cannot be written fails the
     * task before the source reads anything. */
    for (size_t k = 0; k < task->n_ops; k++) {
        size_t i = (k + task->n_ops - 1) % task->n_ops;
        rc = op_types[types[i]].setup(&ops[i]);
        if (rc != FL_OK)
            break;
        n_set++;
    }
    if (rc == FL_OK)
        rc = ops[0].produce(&ops[0]);
    /* A cancel after the last record still wins over the rename. */
    if (rc == FL_OK && canceled(&run))
        rc = cancel_fail(&run, &ops[0]);
    /* Finish the others first (user functions' close), the sink last: it
     * renames its part file only once the rest ended well. */
    for (size_t k = n_set; k-- > 0;) {
        size_t i = (k + task->n_ops - 1) % task->n_ops;
        if (i == task->n_ops - 1)
            continue;
        if (ops[i].finish)
            ops[i].finish(&ops[i], rc == FL_OK);
    }
    if (n_set > 0) {
        fj_op_t *sink = &ops[task->n_ops - 1];
        int frc = sink->finish ? sink->finish(sink, rc == FL_OK) : FL_OK;
        if (rc == FL_OK)
            rc = frc;
    }
    if (rc == FL_OK)
        report(&run);
out:
    fj_udf_lib_close(run.lib);
    if (stats)
        *stats = run.stats;
    return rc;
}
