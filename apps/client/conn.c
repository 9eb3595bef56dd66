/*
 * conn.c - the options that say where the JobManager is, and the
 * connection to its Dispatcher (conn.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fling/cluster.h>
#include <fling/common.h>
#include <fling/future.h>

#include "client.h"
#include "cluster_types.pb-c.h"
#include "conn.h"

/* Between two questions for a Dispatcher while none leads yet. */
#define LEADER_RETRY_MS 50
/* How long a connect may take past its deadline (see connect_to). */
#define CONNECT_MARGIN_MS 2000

static void drop_log(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    (void)rec;
}

void fc_quiet_logs(void)
{
    if (getenv("FLING_LOG") == NULL)
        fl_log_set_handler(drop_log, NULL);
}

void fc_where_usage(FILE *f)
{
    fprintf(f, "  -m HOST:PORT the JobManager (default: jobmanager.rpc.address"
               ":jobmanager.rpc.port)\n"
               "  -c CONFIG    the cluster's configuration file\n"
               "  -D KEY=VALUE a configuration value over the file's\n");
}

int fc_where_init(fc_where_t *w, const char *cmd, void (*usage)(FILE *f),
                  int argc)
{
    *w = (fc_where_t){.cmd = cmd, .usage = usage};
    w->defines = calloc((size_t)argc + 1, sizeof *w->defines);
    if (w->defines != NULL)
        return FC_EXIT_OK;
    fprintf(stderr, "fling %s: out of memory.\n", cmd);
    return FC_EXIT_FAIL;
}

void fc_where_free(fc_where_t *w)
{
    free(w->defines);
    w->defines = NULL;
}

int fc_where_take(fc_where_t *w, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (a[0] != '-' || (a[1] != 'm' && a[1] != 'c' && a[1] != 'D'))
        return 0;
    const char *v = a[2] ? a + 2 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (v == NULL) {
        fprintf(stderr, "fling %s: -%c needs a %s after it.\n", w->cmd, a[1],
                a[1] == 'm' ? "HOST:PORT"
                            : (a[1] == 'c' ? "file name" : "KEY=VALUE"));
        return -1;
    }
    if (a[1] == 'm')
        w->jm = v;
    else if (a[1] == 'c')
        w->conf = v;
    else
        w->defines[w->n_defines++] = v;
    return 1;
}

/* The configuration of -c and -D into c->cfg; FC_EXIT_OK or FAIL. */
static int load_config(const fc_where_t *w, fc_conn_t *c)
{
    char err[1024];
    c->cfg = fl_config_alloc();
    if (c->cfg == NULL) {
        fprintf(stderr, "fling %s: out of memory.\n", w->cmd);
        return FC_EXIT_FAIL;
    }
    int rc = FL_OK;
    if (w->conf != NULL)
        rc = fl_config_load_file(c->cfg, w->conf, err, sizeof err);
    if (rc == FL_OK)
        rc = fl_config_apply_overrides(c->cfg, w->defines, w->n_defines, err,
                                       sizeof err);
    if (rc == FL_OK)
        rc = fl_config_validate(c->cfg, err, sizeof err);
    if (rc != FL_OK) {
        fprintf(stderr, "fling %s: %s\n", w->cmd, err);
        return FC_EXIT_FAIL;
    }
    return FC_EXIT_OK;
}

/* The JobManager's "host:port" into c->hostport; FC_EXIT_OK or USAGE. */
static int find_jobmanager(const fc_where_t *w, fc_conn_t *c)
{
    if (w->jm == NULL) {
        const char *host = "localhost";
        int64_t port = 6123;
        fl_config_get_string(c->cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, &host);
        fl_config_get_int(c->cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, &port);
        if (port == 0) {
            fprintf(stderr,
                    "fling %s: jobmanager.rpc.port is 0 (any port), so the "
                    "client cannot know it; give the JobManager's address "
                    "with -m HOST:PORT.\n",
                    w->cmd);
            w->usage(stderr);
            return FC_EXIT_USAGE;
        }
        snprintf(c->hostport, sizeof c->hostport, "%s:%lld", host,
                 (long long)port);
        return FC_EXIT_OK;
    }
    const char *colon = strrchr(w->jm, ':');
    char *end = NULL;
    long port = 0;
    if (colon != NULL && colon != w->jm) {
        errno = 0;
        port = strtol(colon + 1, &end, 10);
    }
    if (colon == NULL || colon == w->jm || end == colon + 1 || *end != '\0' ||
        errno != 0 || port < 1 || port > 65535 ||
        strlen(w->jm) >= sizeof c->hostport) {
        fprintf(stderr,
                "fling %s: -m needs HOST:PORT with a port from 1 to 65535, "
                "not '%s'.\n",
                w->cmd, w->jm);
        w->usage(stderr);
        return FC_EXIT_USAGE;
    }
    snprintf(c->hostport, sizeof c->hostport, "%s", w->jm);
    return FC_EXIT_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects to address with token (NULL: unfenced), waiting until
 * deadline; the gateway, or NULL with why in err and the code in *code. */
static fl_rpc_gateway_t *connect_to(fc_conn_t *c, const char *address,
                                    const ProtobufCServiceDescriptor *desc,
                                    const fl_fencing_token_t *token,
                                    int64_t deadline, char *err, size_t len,
                                    int *code)
{
    fl_future_t *f = NULL;
    int rc = fl_rpc_connect(c->svc, address, desc, token, &f);
    *code = rc;
    if (rc != FL_OK) {
        snprintf(err, len, "%s", fl_rpc_last_message());
        return NULL;
    }
    /* The service's handshake timeout ends a silent peer at the deadline
     * with its own message; the margin lets it say so. */
    int64_t left = deadline - now_ms() + CONNECT_MARGIN_MS;
    rc = fl_future_wait(f, left > 0 ? left : 0);
    fl_rpc_gateway_t *gw = NULL;
    *code = rc;
    if (rc == FL_OK)
        gw = fl_future_take_value(f);
    else if (!fl_future_done(f))
        snprintf(err, len, "no answer within %lld ms",
                 (long long)c->timeout_ms);
    else
        snprintf(err, len, "%s", fl_future_message(f));
    fl_future_release(f);
    return gw;
}

/* Asks the JobManager's process endpoint for the leading Dispatcher
 * (retrying while none leads), then connects to it with its token, all
 * within c->timeout_ms. FL_OK, or an error after saying why. */
static int find_dispatcher(fc_conn_t *c)
{
    char addr[400], err[1024] = "";
    int code = FL_OK;
    int64_t deadline = now_ms() + c->timeout_ms;
    snprintf(addr, sizeof addr, "%s%s/jobmanager",
             fl_cluster_rpc_scheme(c->cfg), c->hostport);
    fl_rpc_gateway_t *pg =
        connect_to(c, addr, &fling__cluster__process_gateway__descriptor, NULL,
                   deadline, err, sizeof err, &code);
    Fling__Cluster__ProcessInfo *info = NULL;
    unsigned describe = (unsigned)fl_rpc_method_index(
        &fling__cluster__process_gateway__descriptor, "Describe");
    while (pg != NULL) {
        Fling__Cluster__Ack req = FLING__CLUSTER__ACK__INIT;
        int64_t left = deadline - now_ms();
        int rc = left > 0 ? fl_rpc_call_sync(pg, describe, &req.base, left,
                                             (ProtobufCMessage **)&info)
                          : FL_ETIMEDOUT;
        if (rc != FL_OK) {
            snprintf(err, sizeof err, "%s",
                     left > 0 ? fl_rpc_last_message()
                              : "no Dispatcher leads there yet");
            break;
        }
        if (info->dispatcher_address[0] != '\0' &&
            info->dispatcher_token.len == sizeof(fl_fencing_token_t))
            break;
        protobuf_c_message_free_unpacked(&info->base, NULL);
        info = NULL;
        struct timespec ts = {0, LEADER_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    fl_rpc_gateway_free(pg);
    if (info != NULL) {
        fl_fencing_token_t token;
        memcpy(&token, info->dispatcher_token.data, sizeof token);
        c->gw = connect_to(c, info->dispatcher_address,
                           &fling__cluster__dispatcher_gateway__descriptor,
                           &token, deadline, err, sizeof err, &code);
        protobuf_c_message_free_unpacked(&info->base, NULL);
    }
    if (c->gw != NULL)
        return FL_OK;
    /* A TLS failure is no matter of the address: say what to check. */
    if (code == FL_ETLS)
        fprintf(stderr,
                "fling %s: cannot reach the JobManager at %s: %s. Check that "
                "the client's security.ssl.* settings match the "
                "JobManager's (docs/guide.md, \"Turning TLS on\").\n",
                c->cmd, c->hostport, err);
    else
        fprintf(stderr,
                "fling %s: cannot reach the JobManager at %s: %s. Check that "
                "it runs, and give its address with -m HOST:PORT.\n",
                c->cmd, c->hostport, err);
    return FL_ECONNECT;
}

int fc_connect(const fc_where_t *w, fc_conn_t *c)
{
    memset(c, 0, sizeof *c);
    c->cmd = w->cmd;
    int status = load_config(w, c);
    if (status == FC_EXIT_OK)
        status = find_jobmanager(w, c);
    if (status != FC_EXIT_OK)
        return status;
    c->timeout_ms = FL_RPC_DEFAULT_TIMEOUT_MS;
    fl_config_get_duration_ms(c->cfg, FL_CONFIG_RPC_ASK_TIMEOUT,
                              &c->timeout_ms);
    uint64_t frame = 0;
    fl_config_get_size(c->cfg, FL_CONFIG_RPC_FRAMESIZE, &frame);
    fl_rpc_service_opts_t so = {
        .workers = 1,
        .default_timeout_ms = c->timeout_ms,
        .max_frame_size = (uint32_t)frame,
        .name = "fling-client",
    };
    /* With security.ssl.internal.enabled the client dials with TLS and
     * presents the configuration's certificate, as every process does. */
    char why[1024];
    fl_cluster_tls_t tls;
    int rc = fl_cluster_tls_init(&tls, c->cfg, why, sizeof why);
    if (rc == FL_OK) {
        fl_cluster_tls_apply(&tls, &so);
        rc = fl_rpc_service_alloc(&so, &c->svc);
        if (rc != FL_OK)
            fl_cluster_tls_message(fl_rpc_last_message(), why, sizeof why);
    }
    fl_cluster_tls_fini(&tls);
    if (rc != FL_OK) {
        fprintf(stderr, "fling %s: could not start the RPC client: %s\n",
                w->cmd, why);
        return FC_EXIT_FAIL;
    }
    rc = find_dispatcher(c);
    if (rc == FL_OK)
        return FC_EXIT_OK;
    return FC_EXIT_FAIL;
}

void fc_close(fc_conn_t *c)
{
    fl_rpc_gateway_free(c->gw);
    c->gw = NULL;
    if (c->svc != NULL) {
        fl_rpc_service_shutdown(c->svc);
        fl_rpc_service_free(c->svc);
        c->svc = NULL;
    }
    fl_config_free(c->cfg);
    c->cfg = NULL;
}

/* Codes that say the JobManager was not reached (not its own answer). */
static bool transport_error(int rc)
{
    return rc == FL_EUNREACHABLE || rc == FL_ETIMEDOUT || rc == FL_ECONNECT ||
           rc == FL_EHANDSHAKE || rc == FL_EFENCING || rc == FL_ENOTSTARTED ||
           rc == FL_ENOMETHOD || rc == FL_EDECODE || rc == FL_EMSGSIZE ||
           rc == FL_ELIMIT || rc == FL_ENOREPLY;
}

bool fc_call_transient(int rc)
{
    return rc == FL_EUNREACHABLE || rc == FL_ETIMEDOUT || rc == FL_ECONNECT ||
           rc == FL_EHANDSHAKE || rc == FL_ENOTSTARTED || rc == FL_ENOREPLY ||
           rc == FL_ELIMIT;
}

int fc_call_try(fc_conn_t *c, const char *method, const ProtobufCMessage *req,
                const char *what, ProtobufCMessage **reply, char *err,
                size_t errlen)
{
    *reply = NULL;
    int m = fl_rpc_method_index(&fling__cluster__dispatcher_gateway__descriptor,
                                method);
    if (m < 0) {
        snprintf(err, errlen, "fling %s: %s failed: %s", c->cmd, what,
                 fl_rpc_last_message());
        return FL_ENOMETHOD;
    }
    int rc = fl_rpc_call_sync(c->gw, (unsigned)m, req, c->timeout_ms, reply);
    if (rc == FL_OK)
        return FL_OK;
    const char *msg = fl_rpc_last_message();
    if (msg == NULL || msg[0] == '\0')
        msg = fl_strerror(rc);
    if (transport_error(rc))
        snprintf(err, errlen, "fling %s: %s failed: %s", c->cmd, what, msg);
    else
        snprintf(err, errlen, "fling %s: %s", c->cmd, msg);
    return rc;
}

ProtobufCMessage *fc_call(fc_conn_t *c, const char *method,
                          const ProtobufCMessage *req, const char *what)
{
    ProtobufCMessage *reply;
    char err[1024];
    if (fc_call_try(c, method, req, what, &reply, err, sizeof err) == FL_OK)
        return reply;
    fprintf(stderr, "%s\n", err);
    return NULL;
}

static const char *enum_name(const ProtobufCEnumDescriptor *d, int v)
{
    static char unknown[32];
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    if (e != NULL)
        return e->name;
    snprintf(unknown, sizeof unknown, "UNKNOWN(%d)", v);
    return unknown;
}

const char *fc_job_state_name(int state)
{
    return enum_name(&fling__cluster__job_status__state__descriptor, state);
}

const char *fc_exec_state_name(int state)
{
    return enum_name(&fling__cluster__execution_state__state__descriptor,
                     state);
}
