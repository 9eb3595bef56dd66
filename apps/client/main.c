/*
 * main.c - the `fling` client: finds the subcommand and runs it.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"

typedef struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *what;
} command_t;

static const command_t commands[] = {
    {"run", fc_run_main, "submit a job to the JobManager and follow it"},
    {"list", fc_list_main, "list the JobManager's jobs"},
    {"cancel", fc_cancel_main, "cancel a job"},
    {"plan", fc_plan_main,
     "print a job's StreamGraph, JobGraph and ExecutionGraph"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: fling COMMAND [ARGS...]\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s%s\n", commands[i].name, commands[i].what);
    fprintf(f, "Run 'fling COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return FC_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return FC_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "fling: unknown command '%s'.\n", argv[1]);
    usage(stderr);
    return FC_EXIT_USAGE;
}
