/*
 * job_parse.c - job files: JSON or YAML (JSON is YAML's flow style) read
 * with libyaml's event parser into a small tree, then walked into a job.
 * Any error frees everything: nothing half-built comes out.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "job/job_int.h"
#include "job/util.h"

/* The deepest nesting a job file needs is 4 (job, operators, operator,
 * params); anything deeper is refused before it costs stack. */
#define DEPTH_MAX 8

enum { N_SCALAR, N_MAP, N_SEQ };

typedef struct node {
    int type;
    unsigned line, col;
    char *str; /* a scalar's bytes, NUL-terminated */
    size_t len;
    bool null;          /* a plain "", "~" or "null" */
    struct node **kids; /* a map: key, value, key, value ... */
    size_t n, cap;
} node_t;

typedef struct parse {
    yaml_parser_t parser;
    const char *name;
    char *err;
    size_t errlen;
    int rc;
} parse_t;

static void node_free(node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

static int fail(parse_t *p, int rc, unsigned line, unsigned col,
                const char *fmt, ...) FL_PRINTF(5, 6);

static int fail(parse_t *p, int rc, unsigned line, unsigned col,
                const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fj_say(p->err, p->errlen, "Job file '%s' line %u, column %u: %s", p->name,
           line, col, what);
    p->rc = rc;
    return rc;
}

static int oom(parse_t *p)
{
    fj_say(p->err, p->errlen, "Out of memory while reading job file '%s'.",
           p->name);
    p->rc = FL_ENOMEM;
    return FL_ENOMEM;
}

static int next(parse_t *p, yaml_event_t *ev)
{
    if (yaml_parser_parse(&p->parser, ev))
        return FL_OK;
    if (p->parser.error == YAML_MEMORY_ERROR)
        return oom(p);
    const yaml_mark_t *m = &p->parser.problem_mark;
    const char *ctx = p->parser.context;
    fj_say(p->err, p->errlen,
           "Job file '%s' does not parse at line %zu, column %zu: %s%s%s%s.",
           p->name, m->line + 1, m->column + 1,
           p->parser.problem ? p->parser.problem : "unknown error",
           ctx ? " (" : "", ctx ? ctx : "", ctx ? ")" : "");
    p->rc = FL_EINVAL;
    return FL_EINVAL;
}

static int add_kid(parse_t *p, node_t *n, node_t *kid)
{
    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 8;
        node_t **k = realloc(n->kids, cap * sizeof *k);
        if (!k) {
            node_free(kid);
            return oom(p);
        }
        n->kids = k;
        n->cap = cap;
    }
    n->kids[n->n++] = kid;
    return FL_OK;
}

/* Reads the node that ev starts (ev is consumed) into *out. */
static int read_node(parse_t *p, yaml_event_t *ev, int depth, node_t **out)
{
    *out = NULL;
    unsigned line = (unsigned)ev->start_mark.line + 1;
    unsigned col = (unsigned)ev->start_mark.column + 1;
    yaml_event_type_t t = ev->type;
    if (t == YAML_ALIAS_EVENT) {
        yaml_event_delete(ev);
        return fail(p, FL_EINVAL, line, col,
                    "an alias; a job file writes each value out.");
    }
    if (t != YAML_SCALAR_EVENT && t != YAML_MAPPING_START_EVENT &&
        t != YAML_SEQUENCE_START_EVENT) {
        yaml_event_delete(ev);
        return fail(p, FL_EINVAL, line, col, "an unexpected node.");
    }
    if (depth > DEPTH_MAX) {
        yaml_event_delete(ev);
        return fail(p, FL_EINVAL, line, col,
                    "nested deeper than a job file goes (%d levels).",
                    DEPTH_MAX);
    }
    node_t *n = calloc(1, sizeof *n);
    if (!n) {
        yaml_event_delete(ev);
        return oom(p);
    }
    n->line = line;
    n->col = col;
    if (t == YAML_SCALAR_EVENT) {
        n->type = N_SCALAR;
        n->len = ev->data.scalar.length;
        n->str = malloc(n->len + 1);
        if (!n->str) {
            yaml_event_delete(ev);
            node_free(n);
            return oom(p);
        }
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        n->null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                  (n->len == 0 || strcmp(n->str, "~") == 0 ||
                   strcmp(n->str, "null") == 0 || strcmp(n->str, "Null") == 0 ||
                   strcmp(n->str, "NULL") == 0);
        yaml_event_delete(ev);
        *out = n;
        return FL_OK;
    }
    n->type = t == YAML_MAPPING_START_EVENT ? N_MAP : N_SEQ;
    yaml_event_type_t end = t == YAML_MAPPING_START_EVENT
                                ? YAML_MAPPING_END_EVENT
                                : YAML_SEQUENCE_END_EVENT;
    yaml_event_delete(ev);
    for (;;) {
        yaml_event_t kev;
        if (next(p, &kev) != FL_OK) {
            node_free(n);
            return p->rc;
        }
        if (kev.type == end) {
            yaml_event_delete(&kev);
            break;
        }
        node_t *kid;
        if (read_node(p, &kev, depth + 1, &kid) != FL_OK ||
            add_kid(p, n, kid) != FL_OK) {
            node_free(n);
            return p->rc;
        }
    }
    *out = n;
    return FL_OK;
}

/* The one document of the stream, or NULL for an empty stream. */
static int read_doc(parse_t *p, node_t **root)
{
    *root = NULL;
    for (;;) {
        yaml_event_t ev;
        if (next(p, &ev) != FL_OK)
            return p->rc;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            if (ev.type == YAML_DOCUMENT_START_EVENT && *root) {
                unsigned line = (unsigned)ev.start_mark.line + 1;
                unsigned col = (unsigned)ev.start_mark.column + 1;
                yaml_event_delete(&ev);
                return fail(p, FL_EINVAL, line, col,
                            "a second document; a job file holds one job.");
            }
            yaml_event_delete(&ev);
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return FL_OK;
        default:
            if (read_node(p, &ev, 1, root) != FL_OK)
                return p->rc;
            break;
        }
    }
}

/* ---- the walk ----------------------------------------------------------- */

static const char *const job_keys[] = {"name", "parallelism", "library",
                                       "params", "operators"};
static const char *const op_keys[] = {"id", "type", "input", "parallelism",
                                      "params"};

#define N_OF(a) (sizeof a / sizeof a[0])

/* Checks that map m has only keys of keys[], each once, and that each key
 * is a non-null scalar. where: "the job", "an operator". */
static int check_keys(parse_t *p, const node_t *m, const char *const *keys,
                      size_t n, const char *where)
{
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        const node_t *k = m->kids[i];
        if (k->type != N_SCALAR)
            return fail(p, FL_EINVAL, k->line, k->col,
                        "a key of %s must be a string.", where);
        bool known = false;
        for (size_t j = 0; j < n; j++)
            known = known || strcmp(k->str, keys[j]) == 0;
        if (!known) {
            const char *near = fj_nearest(k->str, keys, n);
            if (near)
                return fail(p, FL_EINVAL, k->line, k->col,
                            "unknown key '%s' in %s; did you mean '%s'?",
                            k->str, where, near);
            return fail(p, FL_EINVAL, k->line, k->col,
                        "unknown key '%s' in %s; docs/jobs.md lists the "
                        "keys.",
                        k->str, where);
        }
        for (size_t j = 0; j < i; j += 2)
            if (strcmp(m->kids[j]->str, k->str) == 0)
                return fail(p, FL_EINVAL, k->line, k->col,
                            "key '%s' is given twice in %s.", k->str, where);
    }
    return FL_OK;
}

static const node_t *get(const node_t *m, const char *key)
{
    for (size_t i = 0; i + 1 < m->n; i += 2)
        if (strcmp(m->kids[i]->str, key) == 0)
            return m->kids[i + 1];
    return NULL;
}

/* A string value: a scalar, not null, non-empty, no NUL byte. */
static int string_of(parse_t *p, const node_t *v, const char *key,
                     bool empty_ok, const char **out)
{
    if (v->type != N_SCALAR || v->null)
        return fail(p, FL_EINVAL, v->line, v->col, "'%s' must be a string.",
                    key);
    if (strlen(v->str) != v->len)
        return fail(p, FL_EINVAL, v->line, v->col,
                    "the value of '%s' holds a NUL byte.", key);
    if (!empty_ok && v->len == 0)
        return fail(p, FL_EINVAL, v->line, v->col, "'%s' must not be empty.",
                    key);
    *out = v->str;
    return FL_OK;
}

static int int_of(parse_t *p, const node_t *v, const char *key, int *out)
{
    if (v->type == N_SCALAR && !v->null && v->len > 0 &&
        strlen(v->str) == v->len) {
        char *end;
        errno = 0;
        long x = strtol(v->str, &end, 10);
        if (*end == '\0' && errno == 0 && x >= -1000000000L &&
            x <= 1000000000L) {
            *out = (int)x;
            return FL_OK;
        }
    }
    return fail(p, FL_EINVAL, v->line, v->col,
                "'%s' must be a whole number, not '%s'.", key,
                v->type == N_SCALAR && strlen(v->str) == v->len ? v->str
                : v->type == N_SCALAR                           ? "..."
                : v->type == N_MAP                              ? "a map"
                                                                : "a list");
}

static int walk_op(parse_t *p, fj_job_t *job, const node_t *m)
{
    if (m->type != N_MAP)
        return fail(p, FL_EINVAL, m->line, m->col,
                    "an operator must be a map with 'id' and 'type'.");
    if (check_keys(p, m, op_keys, N_OF(op_keys), "an operator") != FL_OK)
        return p->rc;
    const node_t *id = get(m, "id"), *type = get(m, "type");
    if (!id || !type)
        return fail(p, FL_EINVAL, m->line, m->col, "the operator has no '%s'.",
                    id ? "type" : "id");
    const char *ids, *types, *inputs = NULL;
    if (string_of(p, id, "id", false, &ids) != FL_OK ||
        string_of(p, type, "type", false, &types) != FL_OK)
        return p->rc;
    const node_t *in = get(m, "input");
    if (in && string_of(p, in, "input", false, &inputs) != FL_OK)
        return p->rc;
    int rc = fj_job_add_op(job, ids, types, inputs);
    if (rc != FL_OK)
        return rc == FL_ENOMEM ? oom(p) : rc;
    fj_op_t *op = &job->ops[job->n_ops - 1];
    op->line = m->line;
    const node_t *par = get(m, "parallelism");
    if (par) {
        if (int_of(p, par, "parallelism", &op->parallelism) != FL_OK)
            return p->rc;
        op->has_parallelism = true;
    }
    const node_t *params = get(m, "params");
    if (!params)
        return FL_OK;
    if (params->type != N_MAP)
        return fail(p, FL_EINVAL, params->line, params->col,
                    "'params' of operator '%s' must be a map of names to "
                    "values.",
                    ids);
    for (size_t i = 0; i + 1 < params->n; i += 2) {
        const node_t *k = params->kids[i];
        const char *ks, *vs;
        if (string_of(p, k, "a param name", false, &ks) != FL_OK)
            return p->rc;
        for (size_t j = 0; j < i; j += 2)
            if (strcmp(params->kids[j]->str, ks) == 0)
                return fail(p, FL_EINVAL, k->line, k->col,
                            "param '%s' is given twice in operator '%s'.", ks,
                            ids);
        if (string_of(p, params->kids[i + 1], ks, true, &vs) != FL_OK)
            return p->rc;
        if (fj__op_set_param(op, ks, vs) != FL_OK)
            return oom(p);
    }
    return FL_OK;
}

static int walk_job(parse_t *p, const node_t *root, fj_job_t **out)
{
    *out = NULL;
    if (!root || root->type != N_MAP)
        return fail(p, FL_EINVAL, root ? root->line : 1, root ? root->col : 1,
                    "a job file is a map with 'name' and 'operators'.");
    if (check_keys(p, root, job_keys, N_OF(job_keys), "the job") != FL_OK)
        return p->rc;
    const node_t *name = get(root, "name"), *ops = get(root, "operators");
    if (!name || !ops) {
        fj_say(p->err, p->errlen, "Job file '%s' has no '%s'; %s.", p->name,
               name ? "operators" : "name",
               name ? "list the job's operators under it"
                    : "give the job a name");
        return p->rc = FL_EINVAL;
    }
    const char *names;
    if (string_of(p, name, "name", false, &names) != FL_OK)
        return p->rc;
    fj_job_t *job = fj_job_new(names);
    if (!job)
        return oom(p);
    job->file = strdup(p->name);
    if (!job->file) {
        fj_job_free(job);
        return oom(p);
    }
    int rc = FL_OK;
    const node_t *v;
    if ((v = get(root, "parallelism"))) {
        rc = int_of(p, v, "parallelism", &job->parallelism);
        job->parallelism_line = v->line;
    }
    const char *lib;
    if (rc == FL_OK && (v = get(root, "library"))) {
        rc = string_of(p, v, "library", false, &lib);
        if (rc == FL_OK && fj_job_set_library(job, lib) != FL_OK)
            rc = oom(p);
    }
    if (rc == FL_OK && (v = get(root, "params"))) {
        if (v->type != N_MAP)
            rc = fail(p, FL_EINVAL, v->line, v->col,
                      "'params' must be a map of parameter names to their "
                      "defaults (null for none).");
        for (size_t i = 0; rc == FL_OK && i + 1 < v->n; i += 2) {
            const node_t *k = v->kids[i], *d = v->kids[i + 1];
            const char *ks, *ds = NULL;
            rc = string_of(p, k, "a parameter name", false, &ks);
            for (size_t j = 0; rc == FL_OK && j < i; j += 2)
                if (strcmp(v->kids[j]->str, ks) == 0)
                    rc = fail(p, FL_EINVAL, k->line, k->col,
                              "parameter '%s' is declared twice.", ks);
            if (rc == FL_OK && !(d->type == N_SCALAR && d->null))
                rc = string_of(p, d, ks, true, &ds);
            if (rc == FL_OK) {
                if (fj_job_declare_param(job, ks, ds) != FL_OK)
                    rc = oom(p);
                else
                    job->params[job->n_params - 1].line = k->line;
            }
        }
    }
    if (rc == FL_OK && ops->type != N_SEQ)
        rc = fail(p, FL_EINVAL, ops->line, ops->col,
                  "'operators' must be a list of operators.");
    for (size_t i = 0; rc == FL_OK && i < ops->n; i++)
        rc = walk_op(p, job, ops->kids[i]);
    if (rc != FL_OK) {
        fj_job_free(job);
        return rc;
    }
    *out = job;
    return FL_OK;
}

int fj_job_parse(const char *text, size_t len, const char *name, fj_job_t **out,
                 char *err, size_t errlen)
{
    if (!out)
        return FL_EINVAL;
    *out = NULL;
    if (!text && len > 0)
        return FL_EINVAL;
    parse_t p = {.name = name ? name : "<string>",
                 .err = err,
                 .errlen = errlen,
                 .rc = FL_OK};
    if (!yaml_parser_initialize(&p.parser))
        return oom(&p);
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)text, len);
    node_t *root = NULL;
    int rc = read_doc(&p, &root);
    yaml_parser_delete(&p.parser);
    fj_job_t *job = NULL;
    if (rc == FL_OK)
        rc = walk_job(&p, root, &job);
    node_free(root);
    if (rc == FL_OK)
        rc = fj_job_check(job, err, errlen);
    if (rc != FL_OK) {
        fj_job_free(job);
        return rc;
    }
    *out = job;
    return FL_OK;
}

int fj_job_load(const char *path, fj_job_t **out, char *err, size_t errlen)
{
    if (!path || !out)
        return FL_EINVAL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        fj_say(err, errlen, "Cannot read job file '%s': %s.", path,
               strerror(e));
        return e == ENOENT ? FL_ENOENT : FL_ESYSTEM;
    }
    fj_buf_t b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        fj_buf_addn(&b, chunk, got);
    int bad = ferror(f);
    fclose(f);
    if (b.oom) {
        free(b.s);
        fj_say(err, errlen, "Out of memory while reading job file '%s'.", path);
        return FL_ENOMEM;
    }
    if (bad) {
        free(b.s);
        fj_say(err, errlen, "Cannot read job file '%s': read error.", path);
        return FL_ESYSTEM;
    }
    int rc = fj_job_parse(b.s ? b.s : "", b.len, path, out, err, errlen);
    free(b.s);
    return rc;
}
