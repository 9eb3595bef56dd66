/*
 * apps/client/jobopts.h - what `fling plan` and `fling run` share: the
 * job file, -p N and the --KEY VALUE job arguments on the command line,
 * and loading the job with them. Each function writes its failure to
 * stderr as "fling SUBCOMMAND: message" itself (a usage error followed by
 * the subcommand's usage); the caller only returns the status. One thread
 * (the client's main).
 */
#ifndef FLING_APPS_CLIENT_JOBOPTS_H
#define FLING_APPS_CLIENT_JOBOPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <fling/common.h>

#include "job/job.h"

/* One --KEY VALUE. */
typedef struct fc_job_arg {
    char *key;   /* owned */
    char *value; /* owned */
} fc_job_arg_t;

/* The job options of one subcommand. */
typedef struct fc_job_opts {
    const char *cmd;        /* "plan", for messages; a literal */
    void (*usage)(FILE *f); /* the subcommand's usage, after a usage error */
    bool abs_paths;         /* make --input and --output absolute */
    const char *file;       /* the job file (argv's), or NULL */
    int parallelism;        /* -p N; 0: the job's */
    fc_job_arg_t *args;
    size_t n_args;
} fc_job_opts_t;

/* fc_job_opts_init makes room in o for argc arguments. FC_EXIT_OK, or
 * FC_EXIT_FAIL after saying "out of memory". Free with fc_job_opts_free
 * either way. */
int fc_job_opts_init(fc_job_opts_t *o, int argc);

/* fc_job_opts_free frees the arguments of o (not o). */
void fc_job_opts_free(fc_job_opts_t *o);

/*
 * A subcommand's own options: takes argv[*i] (advancing *i past a value in
 * the next argument) and returns 1, or 0 when argv[*i] is none of its
 * options, or FC_EXIT_USAGE after a usage error written to stderr.
 */
typedef int (*fc_own_opts_fn)(void *ctx, int argc, char **argv, int *i);

/*
 * fc_job_opts_parse reads argv[1..argc-1]: own's options first (own may be
 * NULL), then -h/--help, -p N, --KEY VALUE (or --KEY=VALUE) and the job
 * file. Returns FC_EXIT_OK, -1 after printing the usage to stdout for
 * --help, or FC_EXIT_USAGE (an unknown option, a bad -p, a missing value,
 * no job file or a second one) or FC_EXIT_FAIL (out of memory) after
 * saying why.
 */
int fc_job_opts_parse(fc_job_opts_t *o, int argc, char **argv,
                      fc_own_opts_fn own, void *ctx);

/*
 * fc_job_opts_load loads o->file and gives it the arguments and -p. Returns
 * FC_EXIT_OK with *job (caller frees with fj_job_free), FC_EXIT_USAGE for
 * an argument the job does not take, or FC_EXIT_FAIL (a bad job file, out
 * of memory) after saying why; *job may be set on failure too (free it).
 */
int fc_job_opts_load(const fc_job_opts_t *o, fj_job_t **job);

#endif
