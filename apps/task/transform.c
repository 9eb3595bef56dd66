/*
 * apps/task/transform.c - the operators between a source and a sink:
 * filter.contains (a fixed string, as grep -F matches it) and map,
 * flatmap, filter with a user function (of the job's user library, or
 * built in: builtin.c).
 */
/* memmem: _GNU_SOURCE, from the build. */
#include <stdlib.h>
#include <string.h>

#include <fling/common.h>

#include "task_int.h"

/* ---- filter.contains -------------------------------------------------- */

typedef struct contains {
    const char *pattern;
    size_t len;
} contains_t;

static int contains_push(fj_op_t *op, const char *data, size_t len)
{
    contains_t *c = op->impl;
    op->stats->in++;
    if (c->len > 0 && !memmem(data, len, c->pattern, c->len))
        return FL_OK;
    op->stats->out++;
    return op->next->push(op->next, data, len);
}

static int free_impl(fj_op_t *op, int ok)
{
    free(op->impl);
    op->impl = NULL;
    return FL_OK;
}

int fj_filter_contains_setup(fj_op_t *op)
{
    const char *pattern = fj_op_param(op, "pattern");
    if (!pattern)
        return FL_EINVAL;
    /* grep -F reads a pattern with newlines as several patterns; a record
     * never holds one, so such a pattern is a mistake, said as one. */
    if (strchr(pattern, '\n'))
        return fj_op_fail(op, FL_EINVAL,
                          "has a 'pattern' with a newline; a record is one "
                          "line, so give a pattern of one line");
    contains_t *c = malloc(sizeof(*c));
    if (!c)
        return fj_op_fail(op, FL_ENOMEM, "is out of memory");
    c->pattern = pattern;
    c->len = strlen(pattern);
    op->impl = c;
    op->push = contains_push;
    op->finish = free_impl;
    return FL_OK;
}

/* ---- map, flatmap, filter with a user function ------------------------ */

enum { UDF_MAP, UDF_FLATMAP, UDF_FILTER };

#define UDF_ERRLEN 512

typedef struct udf_op {
    int kind;
    fl_udf_map_fn map;
    fl_udf_flatmap_fn flatmap;
    fl_udf_filter_fn filter;
    fl_udf_close_fn close;
    fl_udf_context_t ctx;
    int rc; /* the code a later operator stopped the chain with */
    fl_udf_param_t params[];
} udf_op_t;

/* The user function returned r (not 0): the chain stops with the code of
 * the later operator that stopped it, or fails with the function's own
 * message. */
static int udf_failed(fj_op_t *op, udf_op_t *u, int r)
{
    if (u->rc != FL_OK)
        return u->rc;
    if (u->ctx.err[0] == '\0')
        return fj_op_fail(op, FL_EINVAL,
                          "failed in function '%s' on subtask %u: it "
                          "returned %d without a message",
                          u->ctx.function, (unsigned)u->ctx.subtask, r);
    return fj_op_fail(op, FL_EINVAL,
                      "failed in function '%s' on subtask %u: %s",
                      u->ctx.function, (unsigned)u->ctx.subtask, u->ctx.err);
}

/* A function gave len bytes at NULL: a bug of the function, said as one
 * rather than a crash in a later operator. */
static int hollow(fj_op_t *op, udf_op_t *u, size_t len)
{
    return fj_op_fail(op, FL_EINVAL,
                      "failed in function '%s' on subtask %u: it gave a "
                      "record of %zu bytes at NULL",
                      u->ctx.function, (unsigned)u->ctx.subtask, len);
}

/* The collector of a flatmap: the operator itself (first member). */
static int udf_emit(fl_udf_collector_t *self, const void *data, size_t len)
{
    fj_op_t *op = (fj_op_t *)self;
    udf_op_t *u = op->impl;
    if (u->rc != FL_OK)
        return u->rc; /* the chain stopped: emit nothing more */
    if (!data && len > 0) {
        u->rc = hollow(op, u, len);
        return u->rc;
    }
    op->stats->out++;
    u->rc = op->next->push(op->next, data, len);
    return u->rc;
}

static int udf_push(fj_op_t *op, const char *data, size_t len)
{
    udf_op_t *u = op->impl;
    fl_udf_record_t in = {data, len};
    op->stats->in++;
    int r;
    switch (u->kind) {
    case UDF_MAP: {
        fl_udf_record_t out = {NULL, 0};
        r = u->map(&u->ctx, &in, &out);
        if (r != FL_UDF_OK)
            return udf_failed(op, u, r);
        if (!out.data && out.len > 0)
            return hollow(op, u, out.len);
        op->stats->out++;
        return op->next->push(op->next, out.data, out.len);
    }
    case UDF_FLATMAP:
        r = u->flatmap(&u->ctx, &in, &op->collector);
        if (r != FL_UDF_OK || u->rc != FL_OK)
            return udf_failed(op, u, r);
        return FL_OK;
    default: {
        int keep = 0;
        r = u->filter(&u->ctx, &in, &keep);
        if (r != FL_UDF_OK)
            return udf_failed(op, u, r);
        if (!keep)
            return FL_OK;
        op->stats->out++;
        return op->next->push(op->next, data, len);
    }
    }
}

static int udf_finish(fj_op_t *op, int ok)
{
    udf_op_t *u = op->impl;
    if (u->close)
        u->close(&u->ctx);
    free(u->ctx.err);
    free(u);
    op->impl = NULL;
    return FL_OK;
}

/* Finds function name for op: in the user library first, then among the
 * built-in functions. Sets u's function and close, or fails op. */
static int resolve(fj_op_t *op, udf_op_t *u, const char *name,
                   fl_udf_open_fn *open_fn)
{
    fj_udf_lib_t *lib = op->run->lib;
    *open_fn = NULL;
    void *fn = lib ? fj_udf_lib_sym(lib, name) : NULL;
    if (fn) {
        char sym[256];
        if (u->kind == UDF_MAP)
            u->map = (fl_udf_map_fn)fn;
        else if (u->kind == UDF_FLATMAP)
            u->flatmap = (fl_udf_flatmap_fn)fn;
        else
            u->filter = (fl_udf_filter_fn)fn;
        if ((size_t)snprintf(sym, sizeof(sym), "%s_open", name) < sizeof(sym))
            *open_fn = (fl_udf_open_fn)fj_udf_lib_sym(lib, sym);
        if ((size_t)snprintf(sym, sizeof(sym), "%s_close", name) < sizeof(sym))
            u->close = (fl_udf_close_fn)fj_udf_lib_sym(lib, sym);
        return FL_OK;
    }
    const fj_builtin_t *b = fj_builtin_find(name);
    if (b) {
        static const char *const kinds[] = {"map", "flatmap", "filter"};
        int bk = b->map ? UDF_MAP : (b->flatmap ? UDF_FLATMAP : UDF_FILTER);
        if (bk != u->kind)
            return fj_op_fail(op, FL_EINVAL,
                              "names the built-in function '%s', which is a "
                              "%s, not a %s",
                              name, kinds[bk], kinds[u->kind]);
        u->map = b->map;
        u->flatmap = b->flatmap;
        u->filter = b->filter;
        u->close = b->close;
        return FL_OK;
    }
    if (lib)
        return fj_op_fail(op, FL_ENOENT,
                          "names the function '%s', which the user library "
                          "%s does not export and which is not built in",
                          name, fj_udf_lib_path(lib));
    return fj_op_fail(op, FL_ENOENT,
                      "names the function '%s', which is not built in, and "
                      "the job names no user library",
                      name);
}

int fj_udf_op_setup(fj_op_t *op)
{
    const char *name = fj_op_param(op, "function");
    if (!name)
        return FL_EINVAL;
    const fj_op_spec_t *spec = op->spec;
    udf_op_t *u = calloc(1, sizeof(*u) + spec->n_params * sizeof(u->params[0]));
    char *uerr = malloc(UDF_ERRLEN);
    if (!u || !uerr) {
        free(u);
        free(uerr);
        return fj_op_fail(op, FL_ENOMEM, "is out of memory");
    }
    uerr[0] = '\0';
    u->kind =
        strcmp(spec->type, "map") == 0
            ? UDF_MAP
            : (strcmp(spec->type, "flatmap") == 0 ? UDF_FLATMAP : UDF_FILTER);
    fl_udf_open_fn open_fn = NULL;
    int rc = resolve(op, u, name, &open_fn);
    if (rc != FL_OK) {
        free(uerr);
        free(u);
        return rc;
    }
    for (size_t i = 0; i < spec->n_params; i++) {
        u->params[i].key = spec->params[i].key;
        u->params[i].value = spec->params[i].value;
    }
    const fj_task_t *t = op->run->task;
    u->ctx.op_id = spec->id;
    u->ctx.function = name;
    u->ctx.params = u->params;
    u->ctx.n_params = spec->n_params;
    u->ctx.subtask = t->subtask;
    u->ctx.parallelism = t->parallelism;
    u->ctx.attempt = t->attempt;
    u->ctx.err = uerr;
    u->ctx.errlen = UDF_ERRLEN;
    op->impl = u;
    op->collector.emit = udf_emit;
    if (open_fn) {
        int r = open_fn(&u->ctx);
        if (r != FL_UDF_OK) {
            rc = u->ctx.err[0]
                     ? fj_op_fail(op, FL_EINVAL,
                                  "failed to open function '%s' on subtask "
                                  "%u: %s",
                                  name, (unsigned)t->subtask, u->ctx.err)
                     : fj_op_fail(op, FL_EINVAL,
                                  "failed to open function '%s' on subtask "
                                  "%u: it returned %d without a message",
                                  name, (unsigned)t->subtask, r);
            free(uerr);
            free(u);
            op->impl = NULL;
            return rc;
        }
    }
    op->push = udf_push;
    op->finish = udf_finish;
    return FL_OK;
}
