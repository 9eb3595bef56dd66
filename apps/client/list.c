/*
 * list.c - `fling list [-m HOST:PORT]`: the JobManager's jobs, as Flink's
 * `flink list -a` prints them: the running ones (every state that is not
 * terminal), then the terminated ones, one line each:
 *   05.12.2026 02:50:01 : <job id> : <name> (<state>)
 * with the start time in local time.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "conn.h"

#define RULE_RUNNING                                                           \
    "------------------ Running/Restarting Jobs -------------------"
#define RULE_DONE                                                              \
    "---------------------- Terminated Jobs -----------------------"
#define RULE_END                                                               \
    "--------------------------------------------------------------"

void fc_list_usage(FILE *f)
{
    fprintf(f, "usage: fling list [-m HOST:PORT]\n");
    fc_where_usage(f);
}

static bool terminal(int state)
{
    return state == FLING__CLUSTER__JOB_STATUS__STATE__FINISHED ||
           state == FLING__CLUSTER__JOB_STATUS__STATE__FAILED ||
           state == FLING__CLUSTER__JOB_STATUS__STATE__CANCELED;
}

/* Older first, as Flink sorts them. */
static int by_start(const void *a, const void *b)
{
    const Fling__Cluster__JobSummary *x =
        *(Fling__Cluster__JobSummary *const *)a;
    const Fling__Cluster__JobSummary *y =
        *(Fling__Cluster__JobSummary *const *)b;
    if (x->start_time_ms != y->start_time_ms)
        return x->start_time_ms < y->start_time_ms ? -1 : 1;
    return strcmp(x->job_id, y->job_id);
}

static void print_jobs(Fling__Cluster__JobSummary **jobs, size_t n, bool done,
                       const char *rule, const char *none)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (terminal(jobs[i]->state) != done)
            continue;
        if (count++ == 0)
            printf("%s\n", rule);
        time_t t = (time_t)(jobs[i]->start_time_ms / 1000);
        struct tm tm;
        char when[32] = "";
        if (localtime_r(&t, &tm) != NULL)
            strftime(when, sizeof when, "%d.%m.%Y %H:%M:%S", &tm);
        printf("%s : %s : %s (%s)\n", when, jobs[i]->job_id, jobs[i]->name,
               fc_job_state_name(jobs[i]->state));
    }
    if (count > 0)
        printf("%s\n", RULE_END);
    else
        printf("%s\n", none);
}

int fc_list_main(int argc, char **argv)
{
    fc_quiet_logs();
    fc_where_t w;
    if (fc_where_init(&w, "list", fc_list_usage, argc) != FC_EXIT_OK) {
        fc_where_free(&w);
        return FC_EXIT_FAIL;
    }
    int status = FC_EXIT_OK;
    for (int i = 1; i < argc && status == FC_EXIT_OK; i++) {
        int took = fc_where_take(&w, argc, argv, &i);
        if (took > 0)
            continue;
        if (took == 0 &&
            (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
            fc_list_usage(stdout);
            fc_where_free(&w);
            return FC_EXIT_OK;
        }
        if (took == 0)
            fprintf(stderr, "fling list: unknown argument '%s'.\n", argv[i]);
        fc_list_usage(stderr);
        status = FC_EXIT_USAGE;
    }
    fc_conn_t c;
    if (status == FC_EXIT_OK)
        status = fc_connect(&w, &c);
    else
        memset(&c, 0, sizeof c);
    Fling__Cluster__JobList *list = NULL;
    if (status == FC_EXIT_OK) {
        Fling__Cluster__Ack req = FLING__CLUSTER__ACK__INIT;
        list = (Fling__Cluster__JobList *)fc_call(&c, "ListJobs", &req.base,
                                                  "listing the jobs");
        if (list == NULL)
            status = FC_EXIT_FAIL;
    }
    if (list != NULL) {
        if (list->n_jobs > 1) /* jobs is NULL when there are none */
            qsort(list->jobs, list->n_jobs, sizeof *list->jobs, by_start);
        print_jobs(list->jobs, list->n_jobs, false, RULE_RUNNING,
                   "No running jobs.");
        print_jobs(list->jobs, list->n_jobs, true, RULE_DONE,
                   "No terminated jobs.");
        fflush(stdout);
        protobuf_c_message_free_unpacked(&list->base, NULL);
    }
    fc_close(&c);
    fc_where_free(&w);
    return status;
}
