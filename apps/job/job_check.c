/*
 * job_check.c - the rules of a job (fj_job_check) and the substitution of
 * job parameters in values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/job_int.h"
#include "job/ops.h"
#include "job/util.h"

#define WHERE 512

static const fj_op_type_t *type_of(const fj_op_t *op)
{
    return fj_op_type_find(op->type);
}

long fj__op_input(const fj_job_t *job, size_t i)
{
    const fj_op_t *op = &job->ops[i];
    const fj_op_type_t *t = type_of(op);
    if (t && t->kind == FJ_OP_SOURCE)
        return -1;
    if (!op->input)
        return i == 0 ? -1 : (long)i - 1;
    for (size_t k = 0; k < job->n_ops; k++)
        if (strcmp(job->ops[k].id, op->input) == 0)
            return (long)k;
    return -2;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* "Operator 'x' (f:1) param 'path'" or "The library of job 'x'". */
static void who(const fj_job_t *job, const fj_op_t *op, const char *key,
                char *buf, size_t len)
{
    char w[WHERE];
    if (op)
        snprintf(buf, len, "Operator '%s'%s param '%s'", op->id,
                 fj__op_where(job, op, w, sizeof w), key);
    else
        snprintf(buf, len, "The library of job '%s'", job->name);
}

char *fj__substitute(const fj_job_t *job, const fj_op_t *op, const char *key,
                     const char *text, bool check_only, int *rc, char *err,
                     size_t errlen)
{
    fj_buf_t out = {0};
    char w[WHERE + 128];
    *rc = FL_OK;
    for (const char *p = text; *p;) {
        if (p[0] != '$' || (p[1] != '$' && p[1] != '{')) {
            const char *q = strchr(p + 1, '$');
            size_t n = q ? (size_t)(q - p) : strlen(p);
            fj_buf_addn(&out, p, n);
            p += n;
            continue;
        }
        if (p[1] == '$') {
            fj_buf_addn(&out, "$", 1);
            p += 2;
            continue;
        }
        const char *name = p + 2, *e = name;
        while (name_char(*e))
            e++;
        if (e == name || *e != '}') {
            who(job, op, key, w, sizeof w);
            fj_say(err, errlen,
                   "%s has a '${' that is no parameter; write '${name}' "
                   "(letters, digits, '_', '.', '-'), or '$$' for a '$'.",
                   w);
            *rc = FL_EINVAL;
            break;
        }
        size_t n = (size_t)(e - name);
        fj_jparam_t *jp = fj__param_find(job, name, n);
        if (!jp) {
            const char *cands[64];
            size_t nc = job->n_params < 64 ? job->n_params : 64;
            for (size_t i = 0; i < nc; i++)
                cands[i] = job->params[i].name;
            char *nm = strndup(name, n);
            const char *near = nm ? fj_nearest(nm, cands, nc) : NULL;
            char ow[WHERE];
            if (op)
                snprintf(w, sizeof w, "Operator '%s'%s", op->id,
                         fj__op_where(job, op, ow, sizeof ow));
            else
                snprintf(w, sizeof w, "The library of job '%s'", job->name);
            if (near)
                fj_say(err, errlen,
                       "%s uses '${%.*s}', which is not a parameter of job "
                       "'%s'; did you mean '%s'?",
                       w, (int)n, name, job->name, near);
            else
                fj_say(err, errlen,
                       "%s uses '${%.*s}', which is not a parameter of job "
                       "'%s'; declare it under 'params'.",
                       w, (int)n, name, job->name);
            free(nm);
            *rc = FL_EINVAL;
            break;
        }
        if (!check_only) {
            const char *v = jp->value ? jp->value : jp->def;
            if (!v) {
                if (op)
                    snprintf(w, sizeof w, "operator '%s'", op->id);
                else
                    snprintf(w, sizeof w, "the job's library");
                fj_say(err, errlen,
                       "Job '%s' needs a value for parameter '%s', used by "
                       "%s: give it with --%s VALUE.",
                       job->name, jp->name, w, jp->name);
                *rc = FL_EINVAL;
                break;
            }
            fj_buf_add(&out, "%s", v);
        }
        p = e + 1;
    }
    if (*rc == FL_OK && out.oom)
        *rc = FL_ENOMEM;
    if (*rc != FL_OK || check_only) {
        free(out.s);
        return NULL;
    }
    if (!out.s) {
        out.s = strdup("");
        if (!out.s)
            *rc = FL_ENOMEM;
    }
    return out.s;
}

/* The type's rules for op: a known type, parallelism, its params. */
static int check_op(const fj_job_t *job, const fj_op_t *op, char *err,
                    size_t errlen)
{
    char w[WHERE];
    fj__op_where(job, op, w, sizeof w);
    const fj_op_type_t *t = type_of(op);
    if (!t) {
        const char *near = fj_op_type_nearest(op->type);
        if (near) {
            fj_say(err, errlen,
                   "Operator '%s'%s has an unknown type '%s'; did you mean "
                   "'%s'?",
                   op->id, w, op->type, near);
        } else {
            fj_buf_t names = {0};
            size_t n;
            const fj_op_type_t *all = fj_op_types(&n);
            for (size_t i = 0; i < n; i++)
                fj_buf_add(&names, "%s%s", i ? ", " : "", all[i].name);
            fj_say(err, errlen,
                   "Operator '%s'%s has an unknown type '%s'; the known "
                   "types are %s.",
                   op->id, w, op->type, names.s ? names.s : "");
            free(names.s);
        }
        return FL_EINVAL;
    }
    if (op->has_parallelism &&
        (op->parallelism < 1 || op->parallelism > FJ_PARALLELISM_MAX)) {
        fj_say(err, errlen,
               "Operator '%s'%s has parallelism %d; it must be at least 1 "
               "and at most %d.",
               op->id, w, op->parallelism, FJ_PARALLELISM_MAX);
        return FL_EINVAL;
    }
    for (size_t i = 0; i < op->n_params; i++) {
        const char *key = op->params[i].key;
        bool known = false;
        const char *cands[8];
        for (size_t k = 0; k < t->n_params && k < 8; k++) {
            cands[k] = t->params[k].key;
            known = known || strcmp(key, cands[k]) == 0;
        }
        if (known)
            continue;
        const char *near = fj_nearest(key, cands, t->n_params);
        if (near)
            fj_say(err, errlen,
                   "Operator '%s'%s has an unknown param '%s' for type '%s'; "
                   "did you mean '%s'?",
                   op->id, w, key, t->name, near);
        else
            fj_say(err, errlen,
                   "Operator '%s'%s has an unknown param '%s'; type '%s' "
                   "takes %s%s%s.",
                   op->id, w, key, t->name, t->params[0].key,
                   t->n_params > 1 ? " and " : "",
                   t->n_params > 1 ? t->params[1].key : "");
        return FL_EINVAL;
    }
    for (size_t k = 0; k < t->n_params; k++)
        if (!fj_spec_param(
                &(fj_op_spec_t){op->id, op->type, op->params, op->n_params},
                t->params[k].key)) {
            fj_say(err, errlen,
                   "Operator '%s'%s of type '%s' needs the param '%s'.", op->id,
                   w, t->name, t->params[k].key);
            return FL_EINVAL;
        }
    for (size_t i = 0; i < op->n_params; i++) {
        int rc;
        fj__substitute(job, op, op->params[i].key, op->params[i].value, true,
                       &rc, err, errlen);
        if (rc != FL_OK)
            return rc;
    }
    return FL_OK;
}

/* Inputs: each names an operator, sources have none, sinks feed none. */
static int check_inputs(const fj_job_t *job, char *err, size_t errlen)
{
    char w[WHERE];
    for (size_t i = 0; i < job->n_ops; i++) {
        const fj_op_t *op = &job->ops[i];
        const fj_op_type_t *t = type_of(op);
        fj__op_where(job, op, w, sizeof w);
        if (t->kind == FJ_OP_SOURCE) {
            if (op->input) {
                fj_say(err, errlen,
                       "Source '%s'%s has an input ('%s'); a source reads no "
                       "other operator, so remove its 'input'.",
                       op->id, w, op->input);
                return FL_EINVAL;
            }
            continue;
        }
        long in = fj__op_input(job, i);
        if (in == -1) {
            fj_say(err, errlen,
                   "Operator '%s'%s has no input: it comes first and is not "
                   "a source; put a source before it.",
                   op->id, w);
            return FL_EINVAL;
        }
        if (in == -2) {
            const char *cands[256];
            size_t n = job->n_ops < 256 ? job->n_ops : 256;
            for (size_t k = 0; k < n; k++)
                cands[k] = job->ops[k].id;
            const char *near = fj_nearest(op->input, cands, n);
            if (near)
                fj_say(err, errlen,
                       "Operator '%s'%s takes its input from '%s', which is "
                       "no operator of job '%s'; did you mean '%s'?",
                       op->id, w, op->input, job->name, near);
            else
                fj_say(err, errlen,
                       "Operator '%s'%s takes its input from '%s', which is "
                       "no operator of job '%s'.",
                       op->id, w, op->input, job->name);
            return FL_EINVAL;
        }
        const fj_op_t *src = &job->ops[in];
        if (type_of(src)->kind == FJ_OP_SINK) {
            char sw[WHERE];
            fj_say(err, errlen,
                   "Sink '%s'%s feeds operator '%s'; a sink ends a flow, so "
                   "give '%s' another input.",
                   src->id, fj__op_where(job, src, sw, sizeof sw), op->id,
                   op->id);
            return FL_EINVAL;
        }
    }
    return FL_OK;
}

/* A cycle of inputs: each operator has one input, so walking inputs from
 * any operator either reaches a source or loops. */
static int check_cycles(const fj_job_t *job, const long *in, char *err,
                        size_t errlen)
{
    size_t n = job->n_ops;
    for (size_t i = 0; i < n; i++) {
        long at = (long)i;
        size_t steps = 0;
        while (at >= 0 && steps <= n) {
            at = in[at];
            steps++;
        }
        if (at < 0)
            continue;
        /* at is on the cycle; start from its member that comes first. */
        long first = at;
        for (long c = in[at]; c != at; c = in[c])
            if (c < first)
                first = c;
        /* Inputs run against the flow: collect them, print reversed. */
        long members[64];
        size_t k = 0;
        long c = first;
        do {
            if (k < 64)
                members[k++] = c;
            c = in[c];
        } while (c != first);
        fj_buf_t b = {0};
        fj_buf_add(&b, "'%s'", job->ops[first].id);
        for (size_t m = k; m-- > 1;)
            fj_buf_add(&b, " -> '%s'", job->ops[members[m]].id);
        fj_buf_add(&b, " -> '%s'", job->ops[first].id);
        char w[WHERE];
        fj_say(err, errlen,
               "Operators %s form a cycle%s; inputs must lead back to a "
               "source.",
               b.s ? b.s : "",
               fj__op_where(job, &job->ops[first], w, sizeof w));
        free(b.s);
        return FL_EINVAL;
    }
    return FL_OK;
}

long *fj__op_inputs(const fj_job_t *job)
{
    long *in = malloc((job->n_ops ? job->n_ops : 1) * sizeof *in);
    if (in)
        for (size_t i = 0; i < job->n_ops; i++)
            in[i] = fj__op_input(job, i);
    return in;
}

/* Every flow ends in a sink: an operator nobody reads is a mistake. */
static int check_read(const fj_job_t *job, const long *in, char *err,
                      size_t errlen)
{
    bool *read = calloc(job->n_ops, sizeof *read);
    if (!read) {
        fj_say(err, errlen, "Out of memory while checking job '%s'.",
               job->name);
        return FL_ENOMEM;
    }
    for (size_t k = 0; k < job->n_ops; k++)
        if (in[k] >= 0)
            read[in[k]] = true;
    int rc = FL_OK;
    for (size_t i = 0; i < job->n_ops && rc == FL_OK; i++) {
        if (read[i] || type_of(&job->ops[i])->kind == FJ_OP_SINK)
            continue;
        char w[WHERE];
        fj_say(err, errlen,
               "Operator '%s'%s leads nowhere: no operator takes its "
               "output; end the flow with a sink.",
               job->ops[i].id, fj__op_where(job, &job->ops[i], w, sizeof w));
        rc = FL_EINVAL;
    }
    free(read);
    return rc;
}

int fj_job_check(const fj_job_t *job, char *err, size_t errlen)
{
    if (!job) {
        fj_say(err, errlen, "fj_job_check needs a job.");
        return FL_EINVAL;
    }
    if (job->n_ops == 0) {
        fj_say(err, errlen,
               "Job '%s' has no operators; add a source and a "
               "sink.",
               job->name);
        return FL_EINVAL;
    }
    if (job->n_ops > FJ_OPERATORS_MAX) {
        fj_say(err, errlen,
               "Job '%s' has %zu operators; it may have at most %d.", job->name,
               job->n_ops, FJ_OPERATORS_MAX);
        return FL_EINVAL;
    }
    if (job->parallelism < 1 || job->parallelism > FJ_PARALLELISM_MAX) {
        if (job->file && job->parallelism_line)
            fj_say(err, errlen,
                   "Job '%s' (%s:%u) has parallelism %d; it must be at least "
                   "1 and at most %d.",
                   job->name, job->file, job->parallelism_line,
                   job->parallelism, FJ_PARALLELISM_MAX);
        else
            fj_say(err, errlen,
                   "Job '%s' has parallelism %d; it must be at least 1 and "
                   "at most %d.",
                   job->name, job->parallelism, FJ_PARALLELISM_MAX);
        return FL_EINVAL;
    }
    for (size_t i = 0; i < job->n_params; i++) {
        const fj_jparam_t *jp = &job->params[i];
        const char *c = jp->name;
        while (name_char(*c))
            c++;
        if (*c == '\0' && jp->name[0] != '-')
            continue;
        char w[WHERE] = "";
        if (job->file && jp->line)
            snprintf(w, sizeof w, " (%s:%u)", job->file, jp->line);
        fj_say(err, errlen,
               "Job parameter '%s'%s has a name '${...}' cannot use; name "
               "it with letters, digits, '_', '.' and '-', not starting "
               "with '-'.",
               jp->name, w);
        return FL_EINVAL;
    }
    if (job->library) {
        int rc;
        fj__substitute(job, NULL, "library", job->library, true, &rc, err,
                       errlen);
        if (rc != FL_OK)
            return rc;
    }
    for (size_t i = 0; i < job->n_ops; i++) {
        int rc = check_op(job, &job->ops[i], err, errlen);
        if (rc != FL_OK)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(job->ops[k].id, job->ops[i].id) == 0) {
                char w[WHERE];
                fj__op_where(job, &job->ops[i], w, sizeof w);
                if (job->file && job->ops[k].line)
                    fj_say(err, errlen,
                           "Operator id '%s'%s is used twice, first at %s:%u; "
                           "give each operator its own id.",
                           job->ops[i].id, w, job->file, job->ops[k].line);
                else
                    fj_say(err, errlen,
                           "Operator id '%s' is used twice; give each "
                           "operator its own id.",
                           job->ops[i].id);
                return FL_EINVAL;
            }
    }
    int rc = check_inputs(job, err, errlen);
    if (rc != FL_OK)
        return rc;
    long *in = fj__op_inputs(job);
    if (!in) {
        fj_say(err, errlen, "Out of memory while checking job '%s'.",
               job->name);
        return FL_ENOMEM;
    }
    rc = check_cycles(job, in, err, errlen);
    if (rc == FL_OK)
        rc = check_read(job, in, err, errlen);
    free(in);
    return rc;
}
