/*
 * slot_manager.c - the ResourceManager's JobMasters and slot manager
 * (rm_int.h; contract section 4 steps 10-13, 19-21): a JobMaster registers
 * and declares how many slots its job needs; the slot manager gives it
 * free slots of the registered TaskExecutors (requestSlot with the
 * JobMaster's address and token), takes them back when a TaskExecutor
 * says a slot is available again or is lost, and asks again.
 *
 * Slot states (Flink's DefaultSlotTracker): free, pending (our RequestSlot
 * is in flight) and allocated. The TaskExecutors' slot reports win over
 * the table, but for a pending slot shown free, or one granted less than
 * 2 x heartbeat.interval ago and not shown held since: that report may
 * predate the request (it comes on the TaskExecutor's connection, the
 * reply on ours). A report showing a slot taken by another allocation
 * lowers its job's count, and the job is offered slots again. A slot of a
 * job that comes back free while the job still needs slots (its JobMaster
 * declined it, the request failed, a report shows it free) holds the
 * requests to that TaskExecutor for that job off: BACKOFF_MIN_MS, doubled
 * at each such slot up to BACKOFF_MAX_MS, reset once a report shows a
 * slot of the job held there, the job declares its needs again, or the
 * TaskExecutor is dropped. Flink has no key for it, hence constants.
 *
 * An allocation's owner is the JobMaster registration (its token) the
 * ResourceManager requested it for, and only allocations owned by the
 * job's current registration count toward its slots: those it requested
 * (the table's, or one of the last REQUESTED_MAX a report shows). A
 * report showing a slot held by an allocation of the job this
 * ResourceManager did not request for it (an earlier JobMaster's, as
 * after a leadership change), and the allocations of an earlier JobMaster
 * when one with another token registers, occupy their slots until a
 * report shows them free but count for no one: the recovered job is
 * given other slots at once.
 *
 * Its log lines (component app, level info):
 *   Registered JobMaster of job <id> at <address>
 *   JobMaster of job <id> at <address> replaces the one at <address>; the
 *     slots of the earlier one no longer count for the job
 *   Requested slot <i> of TaskManager <id> for job <id> (allocation <a>)
 *   Slot <i> of TaskManager <id> is available again
 *   Slot <i> of TaskManager <id> is allocated to job <id> (allocation <a>)
 *     as its report shows
 *   Slot <i> of TaskManager <id> is free as its report shows (allocation
 *     <a> of job <id> is forgotten)
 *   Slot <i> of TaskManager <id> came back free while job <id> needs
 *     slots; asking that TaskManager for the job again in <n> ms
 *   JobMaster of job <id> disconnected: <state>: <cause>
 * and at debug: Slot request <a> to TaskManager <id> for job <id> succeeded
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heartbeat_rpc.h"
#include "jobmaster.pb-c.h"
#include "process.h"
#include "rm_int.h"
#include "taskexecutor.pb-c.h"

enum {
    BACKOFF_MIN_MS = 100,
    BACKOFF_MAX_MS = 10000,
    REQUESTED_MAX = 64 /* the allocations a registration remembers */
};

/* The requests of a job to one TaskExecutor held off. */
typedef struct backoff {
    struct backoff *next;
    int64_t delay_ms; /* the next hold-off */
    int64_t until_ms; /* no request before (monotonic clock) */
    char resource_id[];
} backoff_t;

typedef struct rm_job {
    struct rm_job *next;
    char job_id[33];
    char *address;
    uint8_t token[16];
    uint32_t required;
    uint32_t allocated;
    char hb_id[64];       /* the JobMaster's heartbeat id */
    fl_rpc_gateway_t *gw; /* fenced JobMasterGateway, once connected */
    uint64_t gen;
    backoff_t *backoffs;
    /* The last REQUESTED_MAX allocations requested for this registration
     * (a ring; nrequested counts them all): a report showing one of them
     * in a slot the table has otherwise counts it as the job's. */
    char requested[REQUESTED_MAX][33];
    size_t nrequested;
} rm_job_t;

static uint64_t next_gen = 1;

static rm_job_t *job_find(const jm_rm_t *rm, const char *job_id)
{
    for (rm_job_t *j = rm->jobs; j != NULL; j = j->next)
        if (strcmp(j->job_id, job_id) == 0)
            return j;
    return NULL;
}

/* j declared its needs again (as after a loss), or is removed: no
 * hold-off left. */
static void backoffs_clear(rm_job_t *j)
{
    while (j->backoffs != NULL) {
        backoff_t *b = j->backoffs;
        j->backoffs = b->next;
        free(b);
    }
}

static void job_remove(jm_rm_t *rm, rm_job_t *job)
{
    for (rm_job_t **p = &rm->jobs; *p != NULL; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            if (rm->hb != NULL && job->gw != NULL)
                fl_heartbeat_unmonitor(rm->hb, job->hb_id);
            fl_rpc_gateway_free(job->gw);
            backoffs_clear(job);
            free(job->address);
            free(job);
            return;
        }
}

/* ---- heartbeats with the JobMasters (sender) ------------------------------
 */

/* A JobMaster for its heartbeats and connect back: its job, and the
 * generation of the job's entry (a JobMaster removed and registered again
 * is another one). */
typedef struct jm_target {
    jm_rm_t *rm;
    uint64_t gen;
    char job_id[33];
} jm_target_t;

static rm_job_t *target_job(const jm_target_t *t)
{
    rm_job_t *j = job_find(t->rm, t->job_id);
    return j != NULL && j->gen == t->gen ? j : NULL;
}

static fl_future_t *send_jm_heartbeat(void *arg, const fl_heartbeat_msg_t *msg)
{
    jm_target_t *t = arg;
    rm_job_t *j = target_job(t);
    if (j == NULL || j->gw == NULL)
        return NULL;
    return fg_heartbeat_send(
        j->gw,
        (unsigned)fl_rpc_method_index(
            &fling__cluster__job_master_gateway__descriptor,
            "HeartbeatFromResourceManager"),
        msg);
}

bool rm__job_lost(jm_rm_t *rm, const char *target, const char *how)
{
    for (rm_job_t *j = rm->jobs; j != NULL; j = j->next)
        if (strcmp(j->hb_id, target) == 0) {
            fl_log(FL_LOG_INFO, "JobMaster of job %s lost: %s", j->job_id, how);
            job_remove(rm, j);
            return true;
        }
    return false;
}

/* The connect back to a JobMaster: its heartbeats start (arg: a
 * jm_target_t, handed over when this runs). */
static void jm_connected_body(fl_future_t *f, void *arg)
{
    jm_target_t *t = arg;
    rm_job_t *j = target_job(t);
    if (j == NULL)
        return;
    if (fl_future_error(f) != FL_OK) {
        fl_log(FL_LOG_WARN,
               "Could not connect back to the JobMaster of job %s at %s: %s",
               j->job_id, j->address, fl_future_message(f));
        return;
    }
    j->gw = fl_future_take_value(f);
    jm_target_t *h = malloc(sizeof *h);
    if (h != NULL) {
        *h = *t;
        fl_heartbeat_monitor(t->rm->hb, j->hb_id, send_jm_heartbeat, h, free);
    }
}

static void jm_connected(fl_future_t *f, void *arg)
{
    jm_connected_body(f, arg);
    free(arg);
}

void rm_heartbeat_from_job_manager(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__Heartbeat *req, Fling__Cluster__Ack_Closure closure,
    void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    fg_heartbeat_answer(rm->hb, false, req, closure, call);
}

void rm__jobs_free(jm_rm_t *rm)
{
    while (rm->jobs != NULL)
        job_remove(rm, rm->jobs);
}

/* ---- the slot table ------------------------------------------------------
 */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* j's hold-off for the TaskExecutor resource_id; make: add one if none
 * (NULL when out of memory). */
static backoff_t *backoff_find(rm_job_t *j, const char *resource_id, bool make)
{
    for (backoff_t *b = j->backoffs; b != NULL; b = b->next)
        if (strcmp(b->resource_id, resource_id) == 0)
            return b;
    if (!make)
        return NULL;
    size_t n = strlen(resource_id) + 1;
    backoff_t *b = malloc(sizeof *b + n);
    if (b == NULL)
        return NULL;
    b->delay_ms = BACKOFF_MIN_MS;
    b->until_ms = 0;
    memcpy(b->resource_id, resource_id, n);
    b->next = j->backoffs;
    j->backoffs = b;
    return b;
}

/* A slot of j on resource_id held, or that TaskExecutor gone: the next
 * hold-off there is the shortest again. */
static void backoff_reset(rm_job_t *j, const char *resource_id)
{
    for (backoff_t **p = &j->backoffs; *p != NULL; p = &(*p)->next)
        if (strcmp((*p)->resource_id, resource_id) == 0) {
            backoff_t *b = *p;
            *p = b->next;
            free(b);
            return;
        }
}

/* Whether slot i of w counts toward j's slots: it holds an allocation of
 * j's job owned by j's registration (its token). */
static bool slot_counts(const rm_job_t *j, const worker_t *w, uint32_t i)
{
    return strcmp(w->alloc[i].job, j->job_id) == 0 && w->alloc[i].owned &&
           memcmp(w->alloc[i].owner, j->token, sizeof j->token) == 0;
}

/* j's allocated count from the table (a registration that is new). */
static void job_recount(const jm_rm_t *rm, rm_job_t *j)
{
    j->allocated = 0;
    for (size_t k = 0; k < rm->n; k++)
        for (uint32_t i = 0; i < rm->workers[k]->nslots; i++)
            j->allocated += slot_counts(j, rm->workers[k], i);
}

static bool requested_has(const rm_job_t *j, const char *alloc)
{
    size_t n = j->nrequested < REQUESTED_MAX ? j->nrequested : REQUESTED_MAX;
    for (size_t k = 0; k < n; k++)
        if (strcmp(j->requested[k], alloc) == 0)
            return true;
    return false;
}

/* Frees slot i of w in the table and in its job's count; returns the
 * job whose count it lowered, NULL when the slot counted for none (its
 * job not registered, or its allocation owned by no current
 * registration). */
static rm_job_t *slot_clear(jm_rm_t *rm, worker_t *w, uint32_t i)
{
    rm_job_t *j = job_find(rm, w->alloc[i].job);
    if (j != NULL && !slot_counts(j, w, i))
        j = NULL;
    if (j != NULL && j->allocated > 0)
        j->allocated--;
    w->alloc[i].alloc[0] = '\0';
    w->alloc[i].job[0] = '\0';
    w->alloc[i].pending = false;
    w->alloc[i].owned = false;
    w->alloc[i].granted_until = 0;
    return j;
}

static void retry_at(jm_rm_t *rm, int64_t due);

/* Slot i of w came back free (slot_clear): when its job still needs
 * slots, that TaskExecutor is not asked for the job again before the
 * hold-off, and rm__allocate runs again then. */
static void slot_freed(jm_rm_t *rm, worker_t *w, uint32_t i)
{
    rm_job_t *j = slot_clear(rm, w, i);
    if (j == NULL || j->allocated >= j->required)
        return;
    backoff_t *b = backoff_find(j, w->resource_id, true);
    if (b == NULL) /* out of memory: asked again at once */
        return;
    b->until_ms = now_ms() + b->delay_ms;
    fl_log(FL_LOG_INFO,
           "Slot %u of TaskManager %s came back free while job %s needs "
           "slots; asking that TaskManager for the job again in %lld ms",
           (unsigned)i, w->resource_id, j->job_id, (long long)b->delay_ms);
    b->delay_ms =
        b->delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->delay_ms * 2;
    retry_at(rm, b->until_ms);
}

/* Takes slot i of w as allocation alloc of job in the table; when alloc
 * was requested for the job's current registration, that registration
 * owns it and it counts toward the job's slots; else it is owned by
 * none (an earlier JobMaster's) and only occupies the slot. */
static void slot_take(jm_rm_t *rm, worker_t *w, uint32_t i, const char *alloc,
                      const char *job)
{
    snprintf(w->alloc[i].alloc, sizeof w->alloc[i].alloc, "%s", alloc);
    snprintf(w->alloc[i].job, sizeof w->alloc[i].job, "%s", job);
    w->alloc[i].pending = false;
    w->alloc[i].granted_until = 0;
    rm_job_t *j = job_find(rm, job);
    w->alloc[i].owned = j != NULL && requested_has(j, alloc);
    if (w->alloc[i].owned) {
        memcpy(w->alloc[i].owner, j->token, sizeof j->token);
        j->allocated++;
    }
}

/* A requestSlot's outcome: it is no longer in flight; a granted one stays
 * protected from older reports for grant_grace_ms; a refused or failed
 * request frees the slot in the table (and holds the next requests to
 * that TaskExecutor for the job off), and the jobs are offered slots
 * again (also when a report took the slot meanwhile). */
typedef struct slot_req {
    jm_rm_t *rm;
    char resource_id[256];
    uint32_t index;
    char alloc[33];
    char job[33];
} slot_req_t;

static void slot_requested_body(fl_future_t *f, void *arg)
{
    slot_req_t *r = arg;
    worker_t *w = rm__find(r->rm, r->resource_id);
    bool ours = w != NULL && r->index < w->nslots &&
                strcmp(w->alloc[r->index].alloc, r->alloc) == 0;
    if (ours)
        w->alloc[r->index].pending = false;
    if (fl_future_error(f) == FL_OK) {
        if (ours)
            w->alloc[r->index].granted_until = now_ms() + r->rm->grant_grace_ms;
        fl_log(FL_LOG_DEBUG,
               "Slot request %s to TaskManager %s for job %s succeeded",
               r->alloc, r->resource_id, r->job);
        return;
    }
    fl_log(FL_LOG_WARN,
           "Slot request %s to TaskManager %s for job %s failed: %s", r->alloc,
           r->resource_id, r->job, fl_future_message(f));
    if (ours)
        slot_freed(r->rm, w, r->index);
    rm__allocate(r->rm);
}

/* fl_rpc_on_complete hands arg over to the callback when it runs. */
static void slot_requested(fl_future_t *f, void *arg)
{
    slot_requested_body(f, arg);
    free(arg);
}

static void request_slot(jm_rm_t *rm, rm_job_t *j, worker_t *w, uint32_t i)
{
    char alloc[33];
    fa_random_hex(alloc, 16);
    memcpy(j->requested[j->nrequested++ % REQUESTED_MAX], alloc, sizeof alloc);
    slot_take(rm, w, i, alloc, j->job_id);
    w->alloc[i].pending = true;
    Fling__Cluster__SlotRequest req = FLING__CLUSTER__SLOT_REQUEST__INIT;
    req.slot_index = i;
    req.job_id = j->job_id;
    req.allocation_id = alloc;
    req.jm_address = j->address;
    req.jm_token.data = j->token;
    req.jm_token.len = sizeof j->token;
    fl_log(FL_LOG_INFO,
           "Requested slot %u of TaskManager %s for job %s (allocation %s)",
           (unsigned)i, w->resource_id, j->job_id, alloc);
    fl_future_t *f = NULL;
    if (fl_rpc_call(w->gw, (unsigned)rm->m_request_slot, &req.base, 0, &f) !=
        FL_OK) {
        fl_log(FL_LOG_WARN,
               "Slot request %s to TaskManager %s for job %s failed: %s", alloc,
               w->resource_id, j->job_id, fl_rpc_last_message());
        slot_freed(rm, w, i);
        return;
    }
    slot_req_t *r = calloc(1, sizeof *r);
    if (r != NULL) {
        r->rm = rm;
        snprintf(r->resource_id, sizeof r->resource_id, "%s", w->resource_id);
        r->index = i;
        memcpy(r->alloc, alloc, sizeof r->alloc);
        memcpy(r->job, j->job_id, sizeof r->job);
        fl_rpc_on_complete(rm->ep, f, slot_requested, r, free);
    } else { /* its outcome unknown: the reports tell */
        w->alloc[i].pending = false;
    }
    fl_future_release(f);
}

static void retry_allocate(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    jm_rm_t *rm = state;
    if ((int64_t)(intptr_t)arg == rm->retry_due_ms)
        rm->retry_due_ms = 0;
    rm__allocate(rm);
}

/* Runs rm__allocate again at due (monotonic ms), unless a run is armed
 * for then or earlier. */
static void retry_at(jm_rm_t *rm, int64_t due)
{
    if (rm->retry_due_ms != 0 && rm->retry_due_ms <= due)
        return;
    int64_t delay = due - now_ms();
    if (fl_rpc_schedule_run_async(rm->ep, retry_allocate, (void *)(intptr_t)due,
                                  NULL, delay > 0 ? delay : 0, NULL) != FL_OK) {
        fl_log(FL_LOG_WARN,
               "ResourceManager could not arm its next slot request: %s",
               fl_rpc_last_message());
        return;
    }
    rm->retry_due_ms = due;
}

/* Whether w may be asked for a slot of j now; else *due is lowered to
 * when it may. */
static bool may_ask(rm_job_t *j, const worker_t *w, int64_t now, int64_t *due)
{
    const backoff_t *b = backoff_find(j, w->resource_id, false);
    if (b == NULL || b->until_ms <= now)
        return true;
    if (*due == 0 || b->until_ms < *due)
        *due = b->until_ms;
    return false;
}

void rm__allocate(jm_rm_t *rm)
{
    if (rm->stopping)
        return;
    int64_t now = now_ms(), due = 0;
    for (rm_job_t *j = rm->jobs; j != NULL; j = j->next)
        for (size_t k = 0; k < rm->n && j->allocated < j->required; k++) {
            worker_t *w = rm->workers[k];
            if (w->free_slots < 0) /* no report yet */
                continue;
            for (uint32_t i = 0; i < w->nslots && j->allocated < j->required;
                 i++)
                if (w->alloc[i].alloc[0] == '\0' && may_ask(j, w, now, &due))
                    request_slot(rm, j, w, i);
        }
    if (due != 0)
        retry_at(rm, due);
}

bool rm__slot_reported(jm_rm_t *rm, worker_t *w, uint32_t i, const char *alloc,
                       const char *job)
{
    if (i >= w->nslots)
        return false;
    if (alloc[0] == '\0') {
        /* A report may predate the request in flight or just granted. */
        if (w->alloc[i].alloc[0] == '\0' || w->alloc[i].pending ||
            w->alloc[i].granted_until > now_ms())
            return false;
        fl_log(FL_LOG_INFO,
               "Slot %u of TaskManager %s is free as its report shows "
               "(allocation %s of job %s is forgotten)",
               (unsigned)i, w->resource_id, w->alloc[i].alloc, w->alloc[i].job);
        slot_freed(rm, w, i);
        return true;
    }
    if (strlen(alloc) != 32 || strlen(job) != 32)
        return false;
    if (strcmp(w->alloc[i].alloc, alloc) == 0) {
        if (!w->alloc[i].pending) { /* held there: no hold-off */
            w->alloc[i].granted_until = 0;
            rm_job_t *j = job_find(rm, job);
            if (j != NULL && slot_counts(j, w, i))
                backoff_reset(j, w->resource_id);
        }
        return false;
    }
    /* The TaskExecutor knows better: the job of the allocation it
     * displaces has one slot less. */
    bool lowered = w->alloc[i].alloc[0] != '\0' && slot_clear(rm, w, i) != NULL;
    slot_take(rm, w, i, alloc, job);
    fl_log(FL_LOG_INFO,
           "Slot %u of TaskManager %s is allocated to job %s (allocation %s) "
           "as its report shows",
           (unsigned)i, w->resource_id, job, alloc);
    return lowered;
}

void rm__slots_gone(jm_rm_t *rm, worker_t *w)
{
    for (uint32_t i = 0; i < w->nslots; i++)
        if (w->alloc[i].alloc[0] != '\0')
            slot_clear(rm, w, i);
    /* A process registered again under its id starts afresh. */
    for (rm_job_t *j = rm->jobs; j != NULL; j = j->next)
        backoff_reset(j, w->resource_id);
    rm__allocate(rm);
}

void rm_register_job_master(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__JobMasterRegistration *req,
    Fling__Cluster__JobMasterRegistrationReply_Closure closure, void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    if (strlen(req->job_id) != 32 || req->token.len != 16) {
        fl_rpc_fail(call, FL_EINVAL,
                    "Registration of the JobMaster at %s refused: a job id "
                    "has 32 hex digits and a token 16 bytes",
                    req->address);
        return;
    }
    rm_job_t *j = job_find(rm, req->job_id);
    if (j != NULL) {
        /* A new JobMaster of the job: the allocations of the earlier one
         * keep their slots until a report shows them free, but no longer
         * count toward the job's slots. The same one again lost us, so we
         * may be about to lose it (its heartbeat timeout due here too, on
         * a stalled machine): its entry starts anew, as after that loss,
         * so that the timeout cannot drop this registration. */
        if (memcmp(j->token, req->token.data, 16) != 0)
            fl_log(FL_LOG_INFO,
                   "JobMaster of job %s at %s replaces the one at %s; the "
                   "slots of the earlier one no longer count for the job",
                   j->job_id, req->address, j->address);
        job_remove(rm, j);
        j = NULL;
    }
    if (j == NULL) {
        j = calloc(1, sizeof *j);
        char *a = rm__dup(req->address);
        if (j == NULL || a == NULL) {
            free(j);
            free(a);
            fl_rpc_fail(call, FL_ENOMEM,
                        "ResourceManager out of memory registering the "
                        "JobMaster of job %s",
                        req->job_id);
            return;
        }
        memcpy(j->job_id, req->job_id, 33);
        j->address = a;
        j->gen = next_gen++;
        snprintf(j->hb_id, sizeof j->hb_id, "jobmaster_%s", j->job_id);
        memcpy(j->token, req->token.data, 16);
        job_recount(rm, j); /* the same JobMaster registered again */
        j->next = rm->jobs;
        rm->jobs = j;
    }
    if (j->gw == NULL) { /* connect back, then heartbeat it (step 10) */
        fl_fencing_token_t tok;
        memcpy(tok.bytes, j->token, 16);
        fl_future_t *f = NULL;
        jm_target_t *t = malloc(sizeof *t);
        if (t != NULL &&
            fl_rpc_connect(rm->svc, j->address,
                           &fling__cluster__job_master_gateway__descriptor,
                           &tok, &f) == FL_OK) {
            t->rm = rm;
            t->gen = j->gen;
            memcpy(t->job_id, j->job_id, sizeof t->job_id);
            fl_rpc_on_complete(rm->ep, f, jm_connected, t, free);
            fl_future_release(f);
        } else {
            free(t);
        }
    }
    fl_log(FL_LOG_INFO, "Registered JobMaster of job %s at %s", j->job_id,
           j->address);
    Fling__Cluster__JobMasterRegistrationReply r =
        FLING__CLUSTER__JOB_MASTER_REGISTRATION_REPLY__INIT;
    r.rm_resource_id = (char *)fl_heartbeat_manager_id(rm->hb);
    closure(&r, call);
}

void rm_declare_required_resources(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__ResourceRequirements *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    rm_job_t *j = job_find(rm, req->job_id);
    if (j == NULL) {
        fl_rpc_fail(call, FL_ESTATE,
                    "Resource requirements of job %s refused: its JobMaster "
                    "is not registered; register it first",
                    req->job_id);
        return;
    }
    j->required = req->slots;
    /* Its JobMaster declares again after a loss: the hold-offs of the
     * slots it declined meanwhile (counting the lost ones) end. */
    backoffs_clear(j);
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
    rm__allocate(rm);
}

void rm_notify_slot_available(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__SlotAvailable *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    worker_t *w = rm__find(rm, req->resource_id);
    if (w != NULL && strcmp(w->instance_id, req->instance_id) == 0 &&
        req->slot_index < w->nslots &&
        strcmp(w->alloc[req->slot_index].alloc, req->allocation_id) == 0) {
        fl_log(FL_LOG_INFO, "Slot %u of TaskManager %s is available again",
               (unsigned)req->slot_index, w->resource_id);
        slot_freed(rm, w, req->slot_index);
    } /* else: stale (an old registration or allocation): ignored */
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
    rm__allocate(rm);
}

void rm_disconnect_job_manager(
    Fling__Cluster__ResourceManagerGateway_Service *svc,
    const Fling__Cluster__DisconnectJobManagerRequest *req,
    Fling__Cluster__Ack_Closure closure, void *call)
{
    (void)svc;
    jm_rm_t *rm = fl_rpc_call_state(call);
    rm_job_t *j = job_find(rm, req->job_id);
    if (j != NULL) {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &fling__cluster__job_status__state__descriptor, (int)req->state);
        fl_log(FL_LOG_INFO, "JobMaster of job %s disconnected: %s: %s",
               j->job_id, v ? v->name : "?", req->cause);
        job_remove(rm, j);
    }
    Fling__Cluster__Ack ack = FLING__CLUSTER__ACK__INIT;
    closure(&ack, call);
}
