/*
 * job.c - the job description and its builder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/job_int.h"
#include "job/util.h"

fj_job_t *fj_job_new(const char *name)
{
    if (!name || !*name)
        return NULL;
    fj_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->name = strdup(name);
    if (!job->name) {
        free(job);
        return NULL;
    }
    job->parallelism = 1;
    return job;
}

static void op_fini(fj_op_t *op)
{
    free(op->id);
    free(op->type);
    free(op->input);
    for (size_t i = 0; i < op->n_params; i++) {
        free((char *)op->params[i].key);
        free((char *)op->params[i].value);
    }
    free(op->params);
}

void fj_job_free(fj_job_t *job)
{
    if (!job)
        return;
    for (size_t i = 0; i < job->n_ops; i++)
        op_fini(&job->ops[i]);
    free(job->ops);
    for (size_t i = 0; i < job->n_params; i++) {
        free(job->params[i].name);
        free(job->params[i].def);
        free(job->params[i].value);
    }
    free(job->params);
    free(job->library);
    free(job->file);
    free(job->name);
    free(job);
}

int fj_job_set_parallelism(fj_job_t *job, int parallelism)
{
    if (!job)
        return FL_EINVAL;
    job->parallelism = parallelism;
    job->parallelism_line = 0;
    return FL_OK;
}

/* *slot = copy of s (NULL allowed when null_ok). */
static int replace(char **slot, const char *s)
{
    char *c = NULL;
    if (s && !(c = strdup(s)))
        return FL_ENOMEM;
    free(*slot);
    *slot = c;
    return FL_OK;
}

int fj_job_set_library(fj_job_t *job, const char *path)
{
    if (!job || !path || !*path)
        return FL_EINVAL;
    return replace(&job->library, path);
}

/* Grows *arr (of *cap elements of size sz) to hold n + 1. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return FL_OK;
    size_t nc = *cap ? *cap * 2 : 4;
    void *a = realloc(*arr, nc * sz);
    if (!a)
        return FL_ENOMEM;
    *arr = a;
    *cap = nc;
    return FL_OK;
}

fj_jparam_t *fj__param_find(const fj_job_t *job, const char *name, size_t n)
{
    for (size_t i = 0; i < job->n_params; i++)
        if (strlen(job->params[i].name) == n &&
            memcmp(job->params[i].name, name, n) == 0)
            return &job->params[i];
    return NULL;
}

int fj_job_declare_param(fj_job_t *job, const char *name, const char *def)
{
    if (!job || !name || !*name)
        return FL_EINVAL;
    fj_jparam_t *p = fj__param_find(job, name, strlen(name));
    if (p)
        return replace(&p->def, def);
    if (grow((void **)&job->params, &job->cap_params, job->n_params,
             sizeof *job->params) != FL_OK)
        return FL_ENOMEM;
    p = &job->params[job->n_params];
    memset(p, 0, sizeof *p);
    bool oom = false;
    p->name = fj_strdup(name, &oom);
    p->def = fj_strdup(def, &oom);
    if (oom) {
        free(p->name);
        free(p->def);
        return FL_ENOMEM;
    }
    job->n_params++;
    return FL_OK;
}

int fj_job_set_arg(fj_job_t *job, const char *name, const char *value,
                   char *err, size_t errlen)
{
    if (!job || !name || !value)
        return FL_EINVAL;
    fj_jparam_t *p = fj__param_find(job, name, strlen(name));
    if (p)
        return replace(&p->value, value);
    fj_buf_t names = {0};
    for (size_t i = 0; i < job->n_params; i++)
        fj_buf_add(&names, "%s%s", i ? ", " : "", job->params[i].name);
    if (names.oom) {
        free(names.s);
        return FL_ENOMEM;
    }
    const char *cands[64];
    size_t n = job->n_params < 64 ? job->n_params : 64;
    for (size_t i = 0; i < n; i++)
        cands[i] = job->params[i].name;
    const char *near = fj_nearest(name, cands, n);
    if (near)
        fj_say(err, errlen,
               "Job '%s' has no parameter '%s'; did you mean '%s'?", job->name,
               name, near);
    else if (job->n_params)
        fj_say(err, errlen,
               "Job '%s' has no parameter '%s'; its parameters are %s.",
               job->name, name, names.s);
    else
        fj_say(err, errlen, "Job '%s' has no parameter '%s'; it takes none.",
               job->name, name);
    free(names.s);
    return FL_ENOENT;
}

int fj_job_add_op(fj_job_t *job, const char *id, const char *type,
                  const char *input)
{
    if (!job || !id || !*id || !type || !*type || (input && !*input))
        return FL_EINVAL;
    if (grow((void **)&job->ops, &job->cap_ops, job->n_ops, sizeof *job->ops) !=
        FL_OK)
        return FL_ENOMEM;
    fj_op_t *op = &job->ops[job->n_ops];
    memset(op, 0, sizeof *op);
    bool oom = false;
    op->id = fj_strdup(id, &oom);
    op->type = fj_strdup(type, &oom);
    op->input = fj_strdup(input, &oom);
    if (oom) {
        op_fini(op);
        return FL_ENOMEM;
    }
    job->n_ops++;
    return FL_OK;
}

static fj_op_t *op_find(fj_job_t *job, const char *id)
{
    for (size_t i = job->n_ops; i-- > 0;)
        if (strcmp(job->ops[i].id, id) == 0)
            return &job->ops[i];
    return NULL;
}

int fj__op_set_param(fj_op_t *op, const char *key, const char *value)
{
    for (size_t i = 0; i < op->n_params; i++)
        if (strcmp(op->params[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v)
                return FL_ENOMEM;
            free((char *)op->params[i].value);
            op->params[i].value = v;
            return FL_OK;
        }
    if (grow((void **)&op->params, &op->cap_params, op->n_params,
             sizeof *op->params) != FL_OK)
        return FL_ENOMEM;
    bool oom = false;
    char *k = fj_strdup(key, &oom), *v = fj_strdup(value, &oom);
    if (oom) {
        free(k);
        free(v);
        return FL_ENOMEM;
    }
    op->params[op->n_params].key = k;
    op->params[op->n_params].value = v;
    op->n_params++;
    return FL_OK;
}

int fj_job_set_op_param(fj_job_t *job, const char *id, const char *key,
                        const char *value)
{
    if (!job || !id || !key || !*key || !value)
        return FL_EINVAL;
    fj_op_t *op = op_find(job, id);
    if (!op)
        return FL_ENOENT;
    return fj__op_set_param(op, key, value);
}

int fj_job_set_op_parallelism(fj_job_t *job, const char *id, int parallelism)
{
    if (!job || !id)
        return FL_EINVAL;
    fj_op_t *op = op_find(job, id);
    if (!op)
        return FL_ENOENT;
    op->parallelism = parallelism;
    op->has_parallelism = true;
    return FL_OK;
}

/* Adds an operator with its input the previous one and up to two params;
 * removes it again if a param cannot be set. */
static int add2(fj_job_t *job, const char *id, const char *type, const char *k1,
                const char *v1, const char *k2, const char *v2)
{
    if (!job || !id || !v1 || (k2 && !v2))
        return FL_EINVAL;
    int rc = fj_job_add_op(job, id, type, NULL);
    if (rc != FL_OK)
        return rc;
    fj_op_t *op = &job->ops[job->n_ops - 1];
    rc = fj__op_set_param(op, k1, v1);
    if (rc == FL_OK && k2)
        rc = fj__op_set_param(op, k2, v2);
    if (rc != FL_OK) {
        op_fini(op);
        job->n_ops--;
    }
    return rc;
}

int fj_job_source_text(fj_job_t *job, const char *id, const char *path)
{
    return add2(job, id, "source.text", "path", path, NULL, NULL);
}

int fj_job_source_sequence(fj_job_t *job, const char *id, const char *from,
                           const char *to)
{
    return add2(job, id, "source.sequence", "from", from, "to", to);
}

int fj_job_map(fj_job_t *job, const char *id, const char *function)
{
    return add2(job, id, "map", "function", function, NULL, NULL);
}

int fj_job_flatmap(fj_job_t *job, const char *id, const char *function)
{
    return add2(job, id, "flatmap", "function", function, NULL, NULL);
}

int fj_job_filter(fj_job_t *job, const char *id, const char *function)
{
    return add2(job, id, "filter", "function", function, NULL, NULL);
}

int fj_job_filter_contains(fj_job_t *job, const char *id, const char *pattern)
{
    return add2(job, id, "filter.contains", "pattern", pattern, NULL, NULL);
}

int fj_job_sink_text(fj_job_t *job, const char *id, const char *path)
{
    return add2(job, id, "sink.text", "path", path, NULL, NULL);
}

const char *fj_job_name(const fj_job_t *job)
{
    return job ? job->name : NULL;
}

const char *fj_job_library(const fj_job_t *job)
{
    return job ? job->library : NULL;
}

const char *fj__op_where(const fj_job_t *job, const fj_op_t *op, char *buf,
                         size_t len)
{
    if (job->file && op && op->line)
        snprintf(buf, len, " (%s:%u)", job->file, op->line);
    else
        snprintf(buf, len, "%s", "");
    return buf;
}
