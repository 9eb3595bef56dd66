/*
 * cancel.c - `fling cancel [-m HOST:PORT] JOBID`: asks the JobManager to
 * cancel a job, as Flink's `flink cancel` does, and returns once the
 * Dispatcher has taken the request (the job then goes through CANCELLING
 * to CANCELED; `fling list` shows it).
 */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "conn.h"

void fc_cancel_usage(FILE *f)
{
    fprintf(f, "usage: fling cancel [-m HOST:PORT] JOBID\n");
    fc_where_usage(f);
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "fling cancel: %s '%s'.\n", what, arg);
    fc_cancel_usage(stderr);
    return FC_EXIT_USAGE;
}

int fc_cancel_main(int argc, char **argv)
{
    fc_quiet_logs();
    fc_where_t w;
    if (fc_where_init(&w, "cancel", fc_cancel_usage, argc) != FC_EXIT_OK) {
        fc_where_free(&w);
        return FC_EXIT_FAIL;
    }
    const char *job_id = NULL;
    int status = FC_EXIT_OK;
    for (int i = 1; i < argc && status == FC_EXIT_OK; i++) {
        const char *a = argv[i];
        int took = fc_where_take(&w, argc, argv, &i);
        if (took < 0) {
            fc_cancel_usage(stderr);
            status = FC_EXIT_USAGE;
        } else if (took > 0) {
            continue;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fc_cancel_usage(stdout);
            fc_where_free(&w);
            return FC_EXIT_OK;
        } else if (a[0] == '-' && a[1]) {
            status = usage_error("unknown option", a);
        } else if (job_id != NULL) {
            status = usage_error("one job at a time; a second job id", a);
        } else {
            job_id = a;
        }
    }
    if (status == FC_EXIT_OK && job_id == NULL) {
        fprintf(stderr, "fling cancel: which job? Give its JobID (fling list "
                        "shows them).\n");
        fc_cancel_usage(stderr);
        status = FC_EXIT_USAGE;
    }
    fc_conn_t c;
    memset(&c, 0, sizeof c);
    if (status == FC_EXIT_OK)
        status = fc_connect(&w, &c);
    if (status == FC_EXIT_OK) {
        printf("Cancelling job %s.\n", job_id);
        fflush(stdout);
        Fling__Cluster__JobIdRequest req = FLING__CLUSTER__JOB_ID_REQUEST__INIT;
        req.job_id = (char *)job_id;
        char what[128];
        snprintf(what, sizeof what, "cancelling job %s", job_id);
        Fling__Cluster__CancelJobReply *r =
            (Fling__Cluster__CancelJobReply *)fc_call(&c, "CancelJob",
                                                      &req.base, what);
        if (r == NULL) {
            status = FC_EXIT_FAIL;
        } else if (r->state == FLING__CLUSTER__JOB_STATUS__STATE__CANCELLING ||
                   r->state == FLING__CLUSTER__JOB_STATUS__STATE__CANCELED) {
            printf("Cancelled job %s.\n", job_id);
        } else {
            fprintf(stderr, "fling cancel: job %s has already ended: %s.\n",
                    job_id, fc_job_state_name(r->state));
            status = FC_EXIT_FAIL;
        }
        if (r != NULL)
            protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    fc_close(&c);
    fc_where_free(&w);
    return status;
}
