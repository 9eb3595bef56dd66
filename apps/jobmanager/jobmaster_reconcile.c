/*
 * jobmaster_reconcile.c - the JobMaster's reconciliation of the
 * TaskExecutors' deployment reports (jobmaster_int.h; Flink's
 * ExecutionDeploymentReconciler, contract section 4 step 16).
 *
 * Each heartbeat request to a TaskExecutor says how many SubmitTask calls
 * the JobMaster has made to it; the answer's DeploymentReport lists the
 * job's attempts it runs and echoes that count. A TaskExecutor handles a
 * gateway's calls in order, so a report that counts a submission was made
 * after the submission was handled. An attempt is pending (never missing)
 * until its SubmitTask was acknowledged and a report counts it: a report
 * that races the deployment does not fail it.
 *
 * Its log lines (component app):
 *   Task <name> attempt <k> is no longer on TaskManager <id>: not in its
 *     deployment report                                           (warn)
 *   TaskManager <id> runs attempt <k> of task <v>, which the JobMaster of
 *     job <id> did not deploy there; cancelling it                 (info)
 *     (once per attempt: the CancelTask is sent again after 8 more
 *     reports that list it, then 16, 32, and every 64 reports)
 *   Deployment report of TaskManager <id> ignored: it lists <n> attempts,
 *     more than 1024                           (warn, once a minute at most)
 *   TaskManager <id> runs more than 16 attempts of job <id> that its
 *     JobMaster did not deploy there; cancelling the others once those
 *     are gone                                 (warn, once a minute at most)
 *   Deployment report of TaskManager <id> ignored: <why>; run the same
 *     version of fling on every process of the cluster            (warn)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobmaster_int.h"

void jm__hb_probe(void *arg, const char *target, const void **data, size_t *len)
{
    jm_jobmaster_t *jm = arg;
    long i = jm__tm_find(jm, target);
    if (i < 0)
        return;
    Fling__Cluster__JobMasterHeartbeatPayload p =
        FLING__CLUSTER__JOB_MASTER_HEARTBEAT_PAYLOAD__INIT;
    p.submitted = jm->tms[i].submitted;
    /* At most 11 bytes: a tag and a 64-bit varint. */
    *len = fling__cluster__job_master_heartbeat_payload__pack(&p, jm->probe);
    *data = *len > 0 ? jm->probe : NULL;
}

/* True if the report r lists attempt k of vertex v. */
static bool reported(const Fling__Cluster__DeploymentReport *r, size_t v,
                     uint32_t k)
{
    for (size_t a = 0; a < r->n_attempts; a++)
        if (r->attempts[a]->vertex == v && r->attempts[a]->attempt == k)
            return true;
    return false;
}

/* True if attempt a is vertex's current attempt, deployed on TaskExecutor
 * i and not terminal here. */
static bool known(jm_jobmaster_t *jm, size_t i,
                  const Fling__Cluster__DeployedAttempt *a)
{
    if (a->vertex >= jm->nv || jm->rec->tasks[a->vertex].attempt != a->attempt)
        return false;
    long sl = jm->vslot[a->vertex];
    return sl >= 0 && jm->slots[sl].tm == i &&
           !jm__task_terminal(jm__task_state(jm, a->vertex));
}

#define CANCEL_FIRST_WAIT 8
#define CANCEL_MAX_WAIT 64

/* True at most once a minute per TaskExecutor: its warnings about
 * oversized reports are rate-limited. */
static bool may_warn(jm_tm_t *t)
{
    uint64_t now = fl_clock_now_ns();
    if (t->warned_ns != 0 && now - t->warned_ns < 60000000000u)
        return false;
    t->warned_ns = now;
    return true;
}

/* Forgets the cancels of TaskExecutor t whose attempt report r no longer
 * lists: they are over there. */
static void forget_cancels(jm_tm_t *t,
                           const Fling__Cluster__DeploymentReport *r)
{
    size_t w = 0;
    for (size_t c = 0; c < t->ncancels; c++)
        if (reported(r, t->cancels[c].vertex, t->cancels[c].attempt))
            t->cancels[w++] = t->cancels[c];
    t->ncancels = w;
}

/* The cancel remembered for attempt a on TaskExecutor t, or NULL. */
static jm_cancel_t *cancel_find(jm_tm_t *t,
                                const Fling__Cluster__DeployedAttempt *a)
{
    for (size_t c = 0; c < t->ncancels; c++)
        if (t->cancels[c].vertex == a->vertex &&
            t->cancels[c].attempt == a->attempt)
            return &t->cancels[c];
    return NULL;
}

/* Asks TaskExecutor i to cancel attempt a, which this JobMaster did not
 * deploy there (or knows as over): at once the first time, with one log
 * line; then again after a wait in reports that doubles, since a lost or
 * ignored CancelTask would leave it running. */
static void cancel_unknown(jm_jobmaster_t *jm, size_t i,
                           const Fling__Cluster__DeployedAttempt *a)
{
    jm_tm_t *t = &jm->tms[i];
    jm_cancel_t *c = cancel_find(t, a);
    if (c != NULL) {
        if (++c->seen < c->wait)
            return;
        c->seen = 0;
        c->wait = c->wait * 2 > CANCEL_MAX_WAIT ? CANCEL_MAX_WAIT : c->wait * 2;
    } else {
        if (t->ncancels == JM_CANCELS) {
            /* Later, once a report lacks one of those remembered. */
            if (may_warn(t))
                fl_log(FL_LOG_WARN,
                       "TaskManager %s runs more than %d attempts of job %s "
                       "that its JobMaster did not deploy there; cancelling "
                       "the others once those are gone",
                       t->resource_id, JM_CANCELS, jm->rec->job_id);
            return;
        }
        t->cancels[t->ncancels++] = (jm_cancel_t){
            .vertex = a->vertex,
            .attempt = a->attempt,
            .seen = 0,
            .wait = CANCEL_FIRST_WAIT,
        };
        fl_log(
            FL_LOG_INFO,
            "TaskManager %s runs attempt %u of task %u, which the JobMaster of "
            "job %s did not deploy there; cancelling it",
            jm->tms[i].resource_id, (unsigned)a->attempt, (unsigned)a->vertex,
            jm->rec->job_id);
    }
    Fling__Cluster__ExecutionAttempt req =
        FLING__CLUSTER__EXECUTION_ATTEMPT__INIT;
    req.job_id = jm->rec->job_id;
    req.vertex = a->vertex;
    req.attempt = a->attempt;
    fl_future_t *f = NULL;
    fl_rpc_call(jm->tms[i].gw, (unsigned)jm->m_cancel, &req.base, 0, &f);
    fl_future_release(f);
}

/* Vertex v's current attempt is no longer on TaskExecutor i: a
 * cancellation is done; anything else failed (restart strategy). */
static void missing(jm_jobmaster_t *jm, size_t i, size_t v)
{
    const jm_task_rec_t *t = &jm->rec->tasks[v];
    char why[1024];
    snprintf(why, sizeof why,
             "Task %s attempt %u is no longer on TaskManager %s: not in its "
             "deployment report",
             t->name, (unsigned)t->attempt, jm->tms[i].resource_id);
    fl_log(FL_LOG_WARN, "%s", why);
    if (jm__task_state(jm, v) == XS(CANCELING)) {
        jm__set_task_state(jm, v, XS(CANCELED), NULL);
        jm__check_end(jm);
        return;
    }
    jm__set_task_state(jm, v, XS(FAILED), why);
    int before = jm->state;
    jm__task_failed(jm, why);
    /* Already restarting or failing: this task's end may be the last. */
    if (jm->state == before)
        jm__check_end(jm);
}

void jm__hb_report(void *arg, const char *origin, const void *data, size_t len)
{
    jm_jobmaster_t *jm = arg;
    long i = jm__tm_find(jm, origin);
    if (jm->ended || i < 0 || jm->tms[i].lost)
        return;
    jm__tm_answered(jm, (size_t)i);
    if (jm->ended || len == 0)
        return;
    Fling__Cluster__DeploymentReport *r =
        fling__cluster__deployment_report__unpack(NULL, len, data);
    if (r == NULL || strcmp(r->job_id, jm->rec->job_id) != 0) {
        fl_log(FL_LOG_WARN,
               "Deployment report of TaskManager %s ignored: %s; run the same "
               "version of fling on every process of the cluster",
               origin,
               r == NULL ? "its heartbeat payload is not a DeploymentReport"
                         : "it is about another job");
        if (r != NULL)
            fling__cluster__deployment_report__free_unpacked(r, NULL);
        return;
    }
    if (r->n_attempts > JM_REPORT_MAX) {
        /* Read in part, it would make attempts look missing. */
        if (may_warn(&jm->tms[i]))
            fl_log(FL_LOG_WARN,
                   "Deployment report of TaskManager %s ignored: it lists %zu "
                   "attempts, more than %d",
                   origin, r->n_attempts, JM_REPORT_MAX);
        fling__cluster__deployment_report__free_unpacked(r, NULL);
        return;
    }
    forget_cancels(&jm->tms[i], r);
    for (size_t a = 0; a < r->n_attempts; a++)
        if (!r->attempts[a]->ending && !known(jm, (size_t)i, r->attempts[a]))
            cancel_unknown(jm, (size_t)i, r->attempts[a]);
    for (size_t v = 0; v < jm->nv && !jm->ended; v++) {
        long sl = jm->vslot[v];
        if (sl < 0 || jm->slots[sl].tm != (size_t)i ||
            jm__task_terminal(jm__task_state(jm, v)))
            continue;
        if (!jm->slots[sl].acked || jm->slots[sl].submit_seq > r->submitted)
            continue; /* pending */
        if (!reported(r, v, jm->rec->tasks[v].attempt))
            missing(jm, (size_t)i, v);
    }
    fling__cluster__deployment_report__free_unpacked(r, NULL);
}
