/*
 * fling-taskmanager - a TaskManager process of a fling cluster.
 *
 *   fling-taskmanager [-c CONFIG] [-D key=value]... [--log FILE]
 *
 * One RPC service on taskmanager.host and taskmanager.rpc.port (default 0:
 * any free port; the first line of stdout is the bound address) with the
 * TaskExecutor endpoint "taskexecutor", which finds the ResourceManager
 * (standalone: jobmanager.rpc.address:jobmanager.rpc.port; zookeeper: its
 * leader), registers and heartbeats. SIGINT or SIGTERM: it tells the
 * ResourceManager it leaves and exits 0. Not registered within
 * taskmanager.registration.timeout, or refused (a configuration that
 * conflicts with the JobManager's): exits 1 with the reason in the log
 * and on stderr. A cancelled task (the stop's too) that has not ended
 * within task.cancellation.timeout: exits 1 at once, the same way
 * (tasks.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fling/cluster.h>
#include <fling/rpc.h>

#include "process.h"
#include "taskexecutor.h"

int main(int argc, char **argv)
{
    fa_process_t proc;
    int rc = fa_process_init(&proc, "fling-taskmanager", argc, argv);
    if (rc != FL_OK)
        return rc == FL_ECANCELED ? 0 : 1;
    fl_ha_opts_t ha;
    char why[512], rm_address[512];
    rc = fl_cluster_ha_opts(proc.cfg, &ha, why, sizeof why);
    if (rc == FL_OK && ha.mode == FL_HA_NONE) {
        rc = fl_cluster_jobmanager_address(proc.cfg, "resourcemanager_*",
                                           rm_address, sizeof rm_address, why,
                                           sizeof why);
        ha.standalone_address = rm_address;
    }
    if (rc != FL_OK) {
        fprintf(stderr, "fling-taskmanager: %s\n", why);
        fa_process_fini(&proc);
        return 1;
    }
    const char *host = "localhost", *port = "0";
    fl_config_get_string(proc.cfg, FL_CONFIG_TASKMANAGER_HOST, &host);
    fl_config_get_string(proc.cfg, FL_CONFIG_TASKMANAGER_RPC_PORT, &port);
    fl_rpc_service_t *svc = NULL;
    if (fa_process_service(&proc, host, port, &svc) != FL_OK) {
        fa_process_fini(&proc);
        return 1;
    }
    tm_te_t *te = NULL;
    rc = tm_te_start(svc, &proc, &ha, &te, why, sizeof why);
    int status = 1;
    if (rc != FL_OK) {
        fprintf(stderr, "fling-taskmanager: %s\n", why);
    } else {
        status = fa_process_wait(&proc);
    }
    if (te != NULL) {
        fl_future_t *f = tm_te_close(te);
        fl_future_wait(f, FL_INFINITE);
        fl_future_release(f);
    }
    fl_rpc_service_shutdown(svc);
    fl_log(FL_LOG_INFO, "fling-taskmanager stopped");
    tm_te_free(te);
    fl_rpc_service_free(svc);
    /* The reason last, where a user looks first. */
    if (status != 0 && proc.reason[0] != '\0')
        fprintf(stderr, "fling-taskmanager: %s\n", proc.reason);
    fa_process_fini(&proc);
    return status;
}
