/*
 * apps/jobmanager/rm_int.h - the ResourceManager's state, shared by
 * resourcemanager.c (the endpoint, TaskExecutors, heartbeats) and
 * slot_manager.c (JobMasters, their requirements, slot requests). All of
 * it lives on the endpoint's main thread.
 */
#ifndef FLING_APPS_JOBMANAGER_RM_INT_H
#define FLING_APPS_JOBMANAGER_RM_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "resourcemanager.h"
#include "resourcemanager.pb-c.h"

/* A registered TaskExecutor. */
typedef struct worker {
    char *resource_id;
    char *session_id;
    char *instance_id;
    char *address;
    fl_rpc_gateway_t *gw; /* unfenced TaskExecutorGateway */
    uint32_t nslots;
    int free_slots; /* -1 until the first report */
    /* Per slot, the allocation the slot manager gave it or a report
     * showed, and the job ("" free); pending while the RequestSlot of
     * alloc is in flight (Flink's PENDING slot); after its reply, a
     * report showing the slot free is ignored until granted_until (a
     * monotonic ms; 0: no longer), as it may predate the request. Its
     * owner is the token of the JobMaster registration the allocation
     * was requested for (owned false: none this ResourceManager knows,
     * as for an allocation of an earlier JobMaster a report shows); only
     * an allocation owned by its job's current registration counts
     * toward that job's slots: nslots entries. */
    struct {
        char alloc[33];
        char job[33];
        bool pending;
        bool owned;
        uint8_t owner[16];
        int64_t granted_until;
    } * alloc;
} worker_t;

struct jm_rm {
    fl_rpc_service_t *svc;
    const fl_config_t *cfg;
    fl_fencing_token_t token;
    fl_rpc_endpoint_t *ep;
    fl_heartbeat_manager_t *hb;
    worker_t **workers;
    size_t n, cap;
    char cause[256]; /* told to the TaskExecutors on stop */
    /* Method indices of the TaskExecutorGateway. */
    int m_heartbeat, m_disconnect, m_request_slot;
    /* The registered JobMasters (slot_manager.c). */
    struct rm_job *jobs;
    bool stopping;          /* no slot requests once set */
    int64_t retry_due_ms;   /* a backed-off rm__allocate is armed for then */
    int64_t grant_grace_ms; /* 2 x heartbeat.interval */
    char id[64];
};

char *rm__dup(const char *s);
worker_t *rm__find(const jm_rm_t *rm, const char *resource_id);

/* rm__allocate asks TaskExecutors for free slots for every job that needs
 * more than it has (requestSlot); a TaskExecutor whose first slot report
 * has not come yet is not asked (its slots may be allocated already), nor
 * one whose slot of the job came back free within the hold-off
 * (slot_manager.c): rm__allocate then runs again when it ends. */
void rm__allocate(jm_rm_t *rm);

/* rm__slot_reported takes slot i of w's table as the TaskExecutor's
 * report shows it: allocated (alloc, job) or free (alloc ""), with the
 * jobs' allocated counts. A slot whose RequestSlot is in flight, or was
 * granted less than grant_grace_ms ago and not shown held since, stays
 * allocated when the report shows it free (the report may predate the
 * request). Returns true when the report lowered a job's allocated count
 * (it freed a slot, or showed one taken by another allocation): the
 * caller runs rm__allocate then. */
bool rm__slot_reported(jm_rm_t *rm, worker_t *w, uint32_t i, const char *alloc,
                       const char *job);

/* rm__slots_gone forgets the allocations of w (being dropped) and the
 * jobs' hold-offs for its resource id, and asks for slots elsewhere. */
void rm__slots_gone(jm_rm_t *rm, worker_t *w);

/* rm__jobs_free frees the job table. */
void rm__jobs_free(jm_rm_t *rm);

/* rm__job_lost drops the JobMaster whose heartbeat id is target (its
 * heartbeat timed out or found it unreachable, how says which); false
 * when target is none of the JobMasters. */
bool rm__job_lost(jm_rm_t *rm, const char *target, const char *how);

/* The JobMaster handlers of the ResourceManagerGateway. */
void rm_register_job_master(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__JobMasterRegistration *req,
    Fling__Cluster__JobMasterRegistrationReply_Closure closure, void *call);
void rm_declare_required_resources(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__ResourceRequirements *req,
    Fling__Cluster__Ack_Closure closure, void *call);
void rm_notify_slot_available(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__SlotAvailable *req,
    Fling__Cluster__Ack_Closure closure, void *call);
void rm_heartbeat_from_job_manager(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call);
void rm_disconnect_job_manager(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__DisconnectJobManagerRequest *req,
    Fling__Cluster__Ack_Closure closure, void *call);

#endif
