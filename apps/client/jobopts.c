/*
 * jobopts.c - the job options `fling plan` and `fling run` share: -p N,
 * --KEY VALUE and the job file, and loading the job with them.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "jobopts.h"

/* Writes "fling CMD: <fmt ...>" and the subcommand's usage to stderr;
 * FC_EXIT_USAGE. */
static int usage_error(const fc_job_opts_t *o, const char *fmt, ...)
    FL_PRINTF(2, 3);

static int usage_error(const fc_job_opts_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fling %s: ", o->cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    o->usage(stderr);
    return FC_EXIT_USAGE;
}

static int out_of_memory(const fc_job_opts_t *o)
{
    fprintf(stderr, "fling %s: out of memory.\n", o->cmd);
    return FC_EXIT_FAIL;
}

int fc_job_opts_init(fc_job_opts_t *o, int argc)
{
    o->args = calloc((size_t)argc + 1, sizeof *o->args);
    return o->args ? FC_EXIT_OK : out_of_memory(o);
}

void fc_job_opts_free(fc_job_opts_t *o)
{
    for (size_t i = 0; o->args && i < o->n_args; i++) {
        free(o->args[i].key);
        free(o->args[i].value);
    }
    free(o->args);
    o->args = NULL;
    o->n_args = 0;
}

/* The value of key v (malloc'd): --input and --output absolute when o
 * asks so, others copied. NULL when out of memory. */
static char *arg_value(const fc_job_opts_t *o, const char *key, const char *v)
{
    bool path = strcmp(key, "input") == 0 || strcmp(key, "output") == 0;
    if (!o->abs_paths || !path || v[0] == '/' || v[0] == '\0')
        return strdup(v);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return strdup(v);
    char *abs = NULL;
    if (asprintf(&abs, "%s/%s", cwd, v) < 0)
        return NULL;
    return abs;
}

/* Takes argv[*i] as -p N, --KEY VALUE or the job file; the exit status. */
static int take(fc_job_opts_t *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strncmp(a, "-p", 2) == 0) {
        const char *v = a[2] ? a + 2 : (*i + 1 < argc ? argv[++*i] : NULL);
        if (!v)
            return usage_error(o, "-p needs a number.");
        char *end;
        errno = 0;
        long p = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno || p < 1 ||
            p > FJ_PARALLELISM_MAX)
            return usage_error(o,
                               "-p needs a whole number from 1 to %d, "
                               "not '%s'.",
                               FJ_PARALLELISM_MAX, v);
        o->parallelism = (int)p;
    } else if (strncmp(a, "--", 2) == 0 && a[2]) {
        const char *eq = strchr(a + 2, '=');
        size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const char *v = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
        if (!v || klen == 0)
            return usage_error(o, "%s needs a value.", a);
        fc_job_arg_t *g = &o->args[o->n_args++];
        g->key = strndup(a + 2, klen);
        g->value = g->key ? arg_value(o, g->key, v) : NULL;
        if (!g->key || !g->value)
            return out_of_memory(o);
    } else if (a[0] == '-' && a[1]) {
        return usage_error(o, "unknown option '%s'.", a);
    } else if (o->file) {
        return usage_error(o, "one job file at a time; '%s' is a second.", a);
    } else {
        o->file = a;
    }
    return FC_EXIT_OK;
}

int fc_job_opts_parse(fc_job_opts_t *o, int argc, char **argv,
                      fc_own_opts_fn own, void *ctx)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int status = own ? own(ctx, argc, argv, &i) : 0;
        if (status == 1)
            continue;
        if (status != 0)
            return status;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->usage(stdout);
            return -1;
        }
        status = take(o, argc, argv, &i);
        if (status != FC_EXIT_OK)
            return status;
    }
    if (!o->file)
        return usage_error(o, "%s", "which job file? Give its path.");
    return FC_EXIT_OK;
}

int fc_job_opts_load(const fc_job_opts_t *o, fj_job_t **job)
{
    char err[1024];
    if (fj_job_load(o->file, job, err, sizeof err) != FL_OK) {
        fprintf(stderr, "fling %s: %s\n", o->cmd, err);
        return FC_EXIT_FAIL;
    }
    for (size_t i = 0; i < o->n_args; i++) {
        int rc = fj_job_set_arg(*job, o->args[i].key, o->args[i].value, err,
                                sizeof err);
        if (rc == FL_ENOENT)
            return usage_error(o, "%s", err);
        if (rc != FL_OK)
            return out_of_memory(o);
    }
    if (o->parallelism && fj_job_set_parallelism(*job, o->parallelism) != FL_OK)
        return FC_EXIT_FAIL;
    return FC_EXIT_OK;
}
