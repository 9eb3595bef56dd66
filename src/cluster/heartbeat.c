/*
 * src/cluster/heartbeat.c - the heartbeat manager's life and its targets:
 * options, the two periodic tasks, monitor / unmonitor, the table of
 * targets by id and the list of targets by deadline. The heartbeats
 * themselves are heartbeat_beat.c's.
 */
#include "cluster/heartbeat_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t fl__hb_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a. */
static size_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

/* ---- references ----------------------------------------------------------
 */

static void manager_destroy(fl_heartbeat_manager_t *m)
{
    fl__free(m->buckets);
    fl__free(m->snap);
    fl__free(m);
}

void fl__hb_release(fl_heartbeat_manager_t *m)
{
    /* acq_rel: the last owner sees every other owner's writes. */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        manager_destroy(m);
}

static void release_task_arg(void *m)
{
    fl__hb_release(m);
}

void fl__hb_target_retain(hb_target_t *t)
{
    /* relaxed: the caller already holds a reference. */
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void fl__hb_target_release(void *p)
{
    hb_target_t *t = p;
    /* acq_rel: pairs with the other owners' decrements. */
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    fl_heartbeat_manager_t *m = t->m;
    fl__free(t->refusal);
    fl__free(t);
    fl__hb_release(m);
}

/* ---- the deadline list ---------------------------------------------------
 */

void fl__hb_list_remove(fl_heartbeat_manager_t *m, hb_target_t *t)
{
    if (!t->listed)
        return;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        m->head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        m->tail = t->prev;
    t->prev = t->next = NULL;
    t->listed = false;
}

void fl__hb_list_append(fl_heartbeat_manager_t *m, hb_target_t *t,
                        uint64_t now_ns)
{
    fl__hb_list_remove(m, t);
    t->deadline_ns = fl__add_sat(now_ns, fl__ms_to_ns(m->timing.timeout_ms));
    t->prev = m->tail;
    t->next = NULL;
    if (m->tail != NULL)
        m->tail->next = t;
    else
        m->head = t;
    m->tail = t;
    t->listed = true;
}

/* ---- the table -----------------------------------------------------------
 */

hb_target_t *fl__hb_find(const fl_heartbeat_manager_t *m, const char *id)
{
    if (m->nbuckets == 0)
        return NULL;
    size_t h = hash_id(id);
    for (hb_target_t *t = m->buckets[h & (m->nbuckets - 1)]; t != NULL;
         t = t->hnext)
        if (t->hash == h && strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

/* Doubles the buckets when the targets outnumber them. FL_OK or
 * FL_ENOMEM (the table stays as it was). */
static int table_grow(fl_heartbeat_manager_t *m)
{
    if (m->ntargets < m->nbuckets)
        return FL_OK;
    size_t n = m->nbuckets != 0 ? m->nbuckets * 2 : 16;
    hb_target_t **b = fl__calloc(n, sizeof *b);
    if (b == NULL)
        return FL_ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        hb_target_t *t = m->buckets[i];
        while (t != NULL) {
            hb_target_t *next = t->hnext;
            t->hnext = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
            t = next;
        }
    }
    fl__free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return FL_OK;
}

static void table_unlink(fl_heartbeat_manager_t *m, hb_target_t *t)
{
    hb_target_t **p = &m->buckets[t->hash & (m->nbuckets - 1)];
    while (*p != t)
        p = &(*p)->hnext;
    *p = t->hnext;
    t->hnext = NULL;
    m->ntargets--;
}

/* Forgets t (already unlinked from the table): it leaves the list, its
 * late outcomes are ignored, its send_arg goes, and the table's reference
 * is dropped. */
static void target_forget(fl_heartbeat_manager_t *m, hb_target_t *t)
{
    fl__hb_list_remove(m, t);
    t->removed = true;
    if (t->send_arg_free != NULL)
        t->send_arg_free(t->send_arg);
    t->send_arg = NULL;
    t->send_arg_free = NULL;
    fl__hb_target_release(t);
}

/* ---- the manager ---------------------------------------------------------
 */

/* Validates opts into m's fields; FL_EINVAL with why. */
static int check_opts(const fl_heartbeat_opts_t *o, fl_heartbeat_timing_t *tm,
                      int *threshold, char *err, size_t err_len)
{
    tm->interval_ms =
        o->interval_ms != 0 ? o->interval_ms : FL_HEARTBEAT_DEFAULT_INTERVAL_MS;
    tm->timeout_ms =
        o->timeout_ms != 0 ? o->timeout_ms : FL_HEARTBEAT_DEFAULT_TIMEOUT_MS;
    *threshold = o->failure_threshold != 0
                     ? o->failure_threshold
                     : FL_HEARTBEAT_DEFAULT_FAILURE_THRESHOLD;
    if (tm->interval_ms < 0) {
        fl__say(err, err_len,
                "heartbeat interval %lld ms is invalid; it must be above 0",
                (long long)tm->interval_ms);
        return FL_EINVAL;
    }
    if (tm->timeout_ms < 0) {
        fl__say(err, err_len,
                "heartbeat timeout %lld ms is invalid; it must be above 0",
                (long long)tm->timeout_ms);
        return FL_EINVAL;
    }
    if (tm->interval_ms > tm->timeout_ms) {
        fl__say(err, err_len,
                "heartbeat interval %lld ms is longer than the heartbeat "
                "timeout %lld ms; the interval must be at most the timeout",
                (long long)tm->interval_ms, (long long)tm->timeout_ms);
        return FL_EINVAL;
    }
    if (*threshold < -1) {
        fl__say(err, err_len,
                "heartbeat rpc failure threshold %d is invalid; it must be "
                "above 0, or -1 to disable it",
                *threshold);
        return FL_EINVAL;
    }
    if (o->role != FL_HEARTBEAT_RECEIVER && o->role != FL_HEARTBEAT_SENDER) {
        fl__say(err, err_len, "heartbeat role %d is invalid", (int)o->role);
        return FL_EINVAL;
    }
    return FL_OK;
}

/* The timeout check runs 20 times per timeout: a target times out at most
 * 5% late, and an idle check costs one comparison. */
static int64_t check_period_ms(int64_t timeout_ms)
{
    return timeout_ms >= 40 ? timeout_ms / 20 : 2;
}

int fl_heartbeat_manager_alloc(fl_rpc_endpoint_t *ep,
                               const fl_heartbeat_opts_t *opts,
                               fl_heartbeat_manager_t **out, char *err,
                               size_t err_len)
{
    fl__say(err, err_len, "%s", "");
    if (out != NULL)
        *out = NULL;
    if (ep == NULL || opts == NULL || out == NULL) {
        fl__say(err, err_len, "%s must not be NULL",
                ep == NULL     ? "ep"
                : opts == NULL ? "opts"
                               : "out");
        return FL_EINVAL;
    }
    fl_heartbeat_timing_t tm;
    int threshold;
    int rc = check_opts(opts, &tm, &threshold, err, err_len);
    if (rc != FL_OK)
        return rc;
    const char *id = opts->id != NULL ? opts->id : fl_rpc_endpoint_address(ep);
    size_t idlen = strlen(id);
    if (idlen == 0 || idlen > HB_ID_MAX) {
        fl__say(err, err_len,
                "heartbeat manager id of %zu bytes is invalid; it must have "
                "1 to %d bytes",
                idlen, HB_ID_MAX);
        return FL_EINVAL;
    }
    fl_heartbeat_manager_t *m = fl__calloc(1, sizeof *m + idlen + 1);
    if (m == NULL) {
        fl__say(err, err_len,
                "Heartbeat manager '%s' could not be made: out of memory", id);
        return FL_ENOMEM;
    }
    memcpy(m->id, id, idlen + 1);
    atomic_init(&m->refs, 1);
    m->ep = ep;
    m->o = *opts;
    m->o.id = m->id;
    m->o.interval_ms = tm.interval_ms;
    m->o.timeout_ms = tm.timeout_ms;
    m->o.failure_threshold = threshold;
    m->timing = tm;

    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    int64_t period = check_period_ms(tm.timeout_ms);
    rc = fl_rpc_schedule_run_at_fixed_rate(
        ep, fl__hb_check, m, release_task_arg, period, period, &m->check_task);
    if (rc == FL_OK && opts->role == FL_HEARTBEAT_SENDER) {
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        rc = fl_rpc_schedule_run_at_fixed_rate(ep, fl__hb_round, m,
                                               release_task_arg, tm.interval_ms,
                                               tm.interval_ms, &m->round_task);
    }
    if (rc != FL_OK) {
        fl__say(err, err_len, "Heartbeat manager '%s' could not start: %s",
                m->id, fl_rpc_last_message());
        fl_rpc_scheduled_cancel(m->check_task);
        fl_rpc_scheduled_free(m->check_task);
        fl__hb_release(m);
        return rc;
    }
    FL_LOG_KV(
        FL_LOG_DEBUG,
        FL_KV(FL_F("manager", m->id),
              FL_F("role",
                   opts->role == FL_HEARTBEAT_SENDER ? "sender" : "receiver"),
              FL_FU64("interval_ms", tm.interval_ms),
              FL_FU64("timeout_ms", tm.timeout_ms)),
        "heartbeat manager started");
    *out = m;
    return FL_OK;
}

int fl_heartbeat_manager_stop(fl_heartbeat_manager_t *m)
{
    if (m == NULL)
        return FL_EINVAL;
    if (m->stopped)
        return FL_OK;
    m->stopped = true;
    fl_rpc_scheduled_cancel(m->round_task);
    fl_rpc_scheduled_cancel(m->check_task);
    fl_rpc_scheduled_free(m->round_task);
    fl_rpc_scheduled_free(m->check_task);
    m->round_task = m->check_task = NULL;
    for (size_t i = 0; i < m->nbuckets; i++) {
        hb_target_t *t = m->buckets[i];
        m->buckets[i] = NULL;
        while (t != NULL) {
            hb_target_t *next = t->hnext;
            t->hnext = NULL;
            target_forget(m, t);
            t = next;
        }
    }
    m->ntargets = 0;
    return FL_OK;
}

/* Stops and releases m: on the main thread, or when it cannot run any
 * more (its endpoint is not running), wherever that is found out. */
static void stop_and_release(void *p)
{
    fl_heartbeat_manager_t *m = p;
    fl_heartbeat_manager_stop(m);
    fl__hb_release(m);
}

static void stop_and_release_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    stop_and_release(arg);
}

void fl_heartbeat_manager_free(fl_heartbeat_manager_t *m)
{
    if (m == NULL)
        return;
    if (fl_rpc_in_main_thread(m->ep)) {
        stop_and_release(m);
        return;
    }
    /* Elsewhere the main thread does it; if the endpoint no longer runs
     * tasks, run_async frees the argument at once instead, which does it
     * here (nothing else touches m then). */
    fl_rpc_run_async(m->ep, stop_and_release_task, m, stop_and_release);
}

int fl_heartbeat_monitor(fl_heartbeat_manager_t *m, const char *id,
                         fl_heartbeat_send_cb send, void *send_arg,
                         fl_free_cb send_arg_free)
{
    int rc = FL_OK;
    size_t idlen = id != NULL ? strlen(id) : 0;
    if (m == NULL || id == NULL || send == NULL || idlen == 0 ||
        idlen > HB_ID_MAX)
        rc = FL_EINVAL;
    else if (!fl_rpc_in_main_thread(m->ep))
        rc = FL_ESTATE;
    else if (m->stopped)
        rc = FL_ECLOSED;
    else if (fl__hb_find(m, id) != NULL)
        rc = FL_EEXIST;
    else if (table_grow(m) != FL_OK)
        rc = FL_ENOMEM;
    hb_target_t *t = NULL;
    if (rc == FL_OK) {
        t = fl__calloc(1, sizeof *t + idlen + 1);
        if (t == NULL)
            rc = FL_ENOMEM;
    }
    if (rc != FL_OK) {
        if (send_arg_free != NULL)
            send_arg_free(send_arg);
        return rc;
    }
    memcpy(t->id, id, idlen + 1);
    atomic_init(&t->refs, 1);
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    t->m = m;
    t->state = HB_RUNNING;
    t->send = send;
    t->send_arg = send_arg;
    t->send_arg_free = send_arg_free;
    t->hash = hash_id(id);
    size_t b = t->hash & (m->nbuckets - 1);
    t->hnext = m->buckets[b];
    m->buckets[b] = t;
    m->ntargets++;
    t->since_ns = fl_clock_now_ns();
    fl__hb_list_append(m, t, t->since_ns);
    /* A sender asks at once: the two sides exchange their timing now,
     * and a pair that cannot work is refused before either times out. */
    if (m->o.role == FL_HEARTBEAT_SENDER) {
        fl__hb_target_retain(t);
        fl__hb_send_to(m, t);
        fl__hb_target_release(t);
    }
    return FL_OK;
}

int fl_heartbeat_unmonitor(fl_heartbeat_manager_t *m, const char *id)
{
    if (m == NULL || id == NULL)
        return FL_EINVAL;
    if (!fl_rpc_in_main_thread(m->ep))
        return FL_ESTATE;
    if (m->stopped)
        return FL_ECLOSED;
    hb_target_t *t = fl__hb_find(m, id);
    if (t == NULL)
        return FL_ENOENT;
    table_unlink(m, t);
    target_forget(m, t);
    return FL_OK;
}

int64_t fl_heartbeat_last_from(const fl_heartbeat_manager_t *m, const char *id)
{
    if (m == NULL || id == NULL || m->stopped || !fl_rpc_in_main_thread(m->ep))
        return -1;
    const hb_target_t *t = fl__hb_find(m, id);
    return t == NULL ? -1 : t->last_ms;
}

const char *fl_heartbeat_manager_id(const fl_heartbeat_manager_t *m)
{
    return m != NULL ? m->id : NULL;
}

fl_heartbeat_timing_t
fl_heartbeat_manager_timing(const fl_heartbeat_manager_t *m)
{
    fl_heartbeat_timing_t none = {0, 0};
    return m != NULL ? m->timing : none;
}
