/*
 * apps/client/client.h - the subcommands of the `fling` client. Each is a
 * main of its own: it takes the arguments after its name (argv[0] is the
 * subcommand's name) and returns the process's exit status: 0 success, 1
 * failure (a bad job file, ...), 2 a usage error. Each writes its errors to
 * stderr as "fling SUBCOMMAND: message". Called once, from main; may block.
 */
#ifndef FLING_APPS_CLIENT_CLIENT_H
#define FLING_APPS_CLIENT_CLIENT_H

/* Exit statuses. */
#define FC_EXIT_OK 0
#define FC_EXIT_FAIL 1
#define FC_EXIT_USAGE 2

/* fling plan JOBFILE [--dot] [-p N] [--KEY VALUE ...] (plan.c). */
int fc_plan_main(int argc, char **argv);

/* fling run [-m HOST:PORT] [-p N] [-d] JOBFILE [--KEY VALUE ...]
 * (run.c): submits a job and follows it until it ends. */
int fc_run_main(int argc, char **argv);

/* fling list [-m HOST:PORT] (list.c): the JobManager's jobs. */
int fc_list_main(int argc, char **argv);

/* fling cancel [-m HOST:PORT] JOBID (cancel.c): cancels a job. */
int fc_cancel_main(int argc, char **argv);

/* The usage lines of each subcommand, to f. */
#include <stdio.h>
void fc_plan_usage(FILE *f);
void fc_run_usage(FILE *f);
void fc_list_usage(FILE *f);
void fc_cancel_usage(FILE *f);

#endif
