/*
 * job_client.h - a client of the DispatcherGateway for the job tests of
 * tests/apps/cluster/: finds the Dispatcher through the JobManager's
 * ProcessGateway, submits a job file with its arguments, asks a job's
 * status. Every call is synchronous and bounded (5 s).
 */
#ifndef JOB_CLIENT_H
#define JOB_CLIENT_H

#include "cluster_types.pb-c.h"
#include "dispatcher.pb-c.h"
#include "fl_test.h"
#include "job/job.h"

typedef struct jc {
    fl_rpc_service_t *svc;
    fl_rpc_gateway_t *gw; /* fenced DispatcherGateway */
    char address[256];
} jc_t;

/* Connects to the Dispatcher of the JobManager at host:port. */
static inline void jc_open_at(jc_t *c, const char *host, int port)
{
    assert_fl_ok(fl_rpc_service_alloc(NULL, &c->svc));
    char address[128];
    snprintf(address, sizeof address, "fling.tcp://%s:%d/jobmanager", host,
             port);
    fl_rpc_gateway_t *pg = fl_test_connect(
        c->svc, address, &fling__cluster__process_gateway__descriptor, NULL);
    Fling__Cluster__Ack req = FLING__CLUSTER__ACK__INIT;
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(pg, 0, &req.base, 5000, &reply));
    Fling__Cluster__ProcessInfo *info = (Fling__Cluster__ProcessInfo *)reply;
    char want[128];
    snprintf(want, sizeof want, "fling.tcp://%s:%d/dispatcher_1", host, port);
    assert_string_equal(want, info->dispatcher_address);
    assert_int_equal(16, info->dispatcher_token.len);
    fl_fencing_token_t tok;
    memcpy(tok.bytes, info->dispatcher_token.data, 16);
    snprintf(c->address, sizeof c->address, "%s", info->dispatcher_address);
    c->gw =
        fl_test_connect(c->svc, c->address,
                        &fling__cluster__dispatcher_gateway__descriptor, &tok);
    protobuf_c_message_free_unpacked(reply, NULL);
    fl_rpc_gateway_free(pg);
}

/* Connects to the Dispatcher of the JobManager at 127.0.0.1:port. */
static inline void jc_open(jc_t *c, int port)
{
    jc_open_at(c, "127.0.0.1", port);
}

static inline void jc_close(jc_t *c)
{
    fl_rpc_gateway_free(c->gw);
    fl_rpc_service_free(c->svc);
}

/*
 * jc_submit loads the job file at path, applies args (name, value pairs,
 * NULL-terminated) and submits it with parallelism (0: the job's) and
 * job_dir. Returns the call's code; the job id goes to id (FL_OK) or the
 * refusal's message to id.
 */
static inline int jc_submit(jc_t *c, const char *path, const char *const *args,
                            unsigned parallelism, const char *job_dir, char *id,
                            size_t cap)
{
    fj_job_t *job = NULL;
    char err[1024];
    assert_fl_ok(fj_job_load(path, &job, err, sizeof err));
    for (size_t i = 0; args[i] != NULL; i += 2)
        assert_fl_ok(
            fj_job_set_arg(job, args[i], args[i + 1], err, sizeof err));
    char *json = NULL;
    size_t len = 0;
    assert_fl_ok(fj_job_to_json(job, &json, &len));
    fj_job_free(job);
    Fling__Cluster__SubmitJobRequest req =
        FLING__CLUSTER__SUBMIT_JOB_REQUEST__INIT;
    req.job_json = json;
    req.parallelism = parallelism;
    req.job_dir = (char *)job_dir;
    ProtobufCMessage *reply = NULL;
    int rc = fl_rpc_call_sync(
        c->gw,
        (unsigned)fl_rpc_method_index(
            &fling__cluster__dispatcher_gateway__descriptor, "SubmitJob"),
        &req.base, 5000, &reply);
    free(json);
    if (rc == FL_OK) {
        snprintf(id, cap, "%s",
                 ((Fling__Cluster__SubmitJobReply *)reply)->job_id);
        protobuf_c_message_free_unpacked(reply, NULL);
    } else {
        snprintf(id, cap, "%s", fl_rpc_last_message());
    }
    return rc;
}

/* The job's status (caller frees with protobuf_c_message_free_unpacked). */
static inline Fling__Cluster__JobStatusReply *jc_status(jc_t *c, const char *id)
{
    Fling__Cluster__JobIdRequest req = FLING__CLUSTER__JOB_ID_REQUEST__INIT;
    req.job_id = (char *)id;
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(
        fl_rpc_call_sync(c->gw,
                         (unsigned)fl_rpc_method_index(
                             &fling__cluster__dispatcher_gateway__descriptor,
                             "RequestJobStatus"),
                         &req.base, 5000, &reply));
    return (Fling__Cluster__JobStatusReply *)reply;
}

/* Cancels the job; returns the state the reply gives. */
static inline int jc_cancel(jc_t *c, const char *id)
{
    Fling__Cluster__JobIdRequest req = FLING__CLUSTER__JOB_ID_REQUEST__INIT;
    req.job_id = (char *)id;
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(
        c->gw,
        (unsigned)fl_rpc_method_index(
            &fling__cluster__dispatcher_gateway__descriptor, "CancelJob"),
        &req.base, 5000, &reply));
    int s = ((Fling__Cluster__CancelJobReply *)reply)->state;
    protobuf_c_message_free_unpacked(reply, NULL);
    return s;
}

#endif
