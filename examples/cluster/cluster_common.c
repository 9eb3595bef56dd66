/*
 * cluster_common.c - the command line, the configuration, the log and the
 * wait for a stop signal of the cluster example's programs.
 */
#include "cluster_common.h"

#include "cluster.pb-c.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int cx_stop_signals[2] = {SIGINT, SIGTERM};

static void usage(const char *prog, bool allow_host)
{
    fprintf(stderr,
            "usage: %s [-c FILE] [-D key=value ...] [--name NAME]%s "
            "[--print-config]\n",
            prog, allow_host ? " [--host HOST]" : "");
}

fl_config_t *cx_setup(const char *prog, int argc, char **argv, bool allow_host,
                      cx_args_t *args)
{
    memset(args, 0, sizeof *args);
    if (getenv("FLING_LOG") == NULL)
        fl_log_set_level(FL_LOG_INFO);
    fl_config_t *cfg = fl_config_alloc();
    if (cfg == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return NULL;
    }
    /* The file first, so that -D wins over it. */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-c") == 0)
            args->config = argv[i + 1];
    char err[512];
    if (args->config != NULL &&
        fl_config_load_file(cfg, args->config, err, sizeof err) != FL_OK)
        goto fail;
    if (fl_config_apply_args(cfg, &argc, argv, err, sizeof err) != FL_OK ||
        fl_config_validate(cfg, err, sizeof err) != FL_OK)
        goto fail;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "-c") == 0 && has_value) {
            i++;
        } else if (strcmp(a, "--name") == 0 && has_value) {
            args->name = argv[++i];
        } else if (allow_host && strcmp(a, "--host") == 0 && has_value) {
            args->host = argv[++i];
        } else if (strcmp(a, "--print-config") == 0) {
            args->print_config = true;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", prog, a);
            usage(prog, allow_host);
            fl_config_free(cfg);
            return NULL;
        }
    }
    if (args->print_config)
        fl_config_print(cfg, stdout);
    return cfg;
fail:
    fprintf(stderr, "%s: %s\n", prog, err);
    fl_config_free(cfg);
    return NULL;
}

/* Blocks until a stop signal, or until ep has ended by itself; then
 * unblocks the signals, so a second one ends a hanging shutdown. Returns
 * 0 after a signal, 1 otherwise. */
static int wait_for_stop(const char *prog, fl_rpc_endpoint_t *ep)
{
    fl_future_t *term = fl_rpc_endpoint_termination(ep);
    int status = 0;
    for (;;) {
        int sig = 0;
        int rc = fl_signals_wait(cx_stop_signals, 2, 100, &sig);
        if (rc == FL_OK) {
            fl_log(FL_LOG_INFO, "%s received, stopping",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (rc != FL_ETIMEDOUT) {
            fprintf(stderr, "%s: fl_signals_wait: %s\n", prog, fl_err_name(rc));
            status = 1;
            break;
        }
        /* The endpoint can end by itself only when its start failed. */
        if (term != NULL && fl_future_done(term)) {
            fprintf(stderr, "%s: %s\n", prog,
                    fl_future_error(term) != FL_OK ? fl_future_message(term)
                                                   : "stopped");
            status = 1;
            break;
        }
    }
    fl_future_release(term);
    (void)fl_signals_unblock(cx_stop_signals, 2);
    return status;
}

int cx_serve(const char *prog, const fl_rpc_service_opts_t *so,
             const fl_rpc_endpoint_opts_t *eo)
{
    fl_rpc_service_t *svc = NULL;
    if (fl_rpc_service_alloc(so, &svc) != FL_OK) {
        fprintf(stderr, "%s: %s\n", prog, fl_rpc_last_message());
        return 1;
    }
    fl_rpc_endpoint_t *ep = NULL;
    int rc = fl_rpc_endpoint_create(svc, eo, &ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(ep);
    int status = 1;
    if (rc != FL_OK)
        fprintf(stderr, "%s: %s\n", prog, fl_rpc_last_message());
    else
        status = wait_for_stop(prog, ep);
    /* Closes the endpoint (its on_stop lets go of what it holds) and
     * joins fling's threads. */
    if (fl_rpc_service_shutdown(svc) != FL_OK)
        status = 1;
    fl_rpc_endpoint_free(ep);
    fl_rpc_service_free(svc);
    return status;
}

void cx_heartbeat_pack(const fl_heartbeat_msg_t *msg, Clusterex__Heartbeat *out,
                       Clusterex__Timing *tm)
{
    clusterex__heartbeat__init(out);
    out->origin = (char *)msg->origin;
    out->payload.data = (uint8_t *)msg->payload;
    out->payload.len = msg->payload_len;
    if (msg->timing != NULL) {
        clusterex__timing__init(tm);
        tm->interval_ms = msg->timing->interval_ms;
        tm->timeout_ms = msg->timing->timeout_ms;
        out->timing = tm;
    }
}

void cx_heartbeat_unpack(const Clusterex__Heartbeat *in,
                         fl_heartbeat_msg_t *out, fl_heartbeat_timing_t *timing)
{
    memset(out, 0, sizeof *out);
    out->origin = in->origin;
    out->payload = in->payload.data;
    out->payload_len = in->payload.len;
    if (in->timing != NULL) {
        timing->interval_ms = in->timing->interval_ms;
        timing->timeout_ms = in->timing->timeout_ms;
        out->timing = timing;
    }
}

const char *cx_hex(const fl_fencing_token_t *token, char *buf)
{
    return fl_fencing_token_hex(token, buf);
}

char *cx_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}
