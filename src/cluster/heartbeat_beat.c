/*
 * src/cluster/heartbeat_beat.c - the heartbeats: the sender's rounds, the
 * requests and responses that come in, the outcomes of the calls that go
 * out (the unreachable threshold), the timeout check, the exchange of
 * interval and timeout, and the messages that say what happened.
 */
#include "cluster/heartbeat_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- events --------------------------------------------------------------
 */

/* "2026-12-05T01:02:03.456Z" for a wall-clock time in ms. */
static void format_time(char *buf, size_t len, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
}

/* Fills ev for t (message left to the caller). */
static void event_init(fl_heartbeat_manager_t *m, hb_target_t *t, int err,
                       uint64_t now_ns, fl_heartbeat_event_t *ev)
{
    ev->target = t->id;
    ev->err = err;
    ev->message = "";
    ev->last_heartbeat_ms = t->last_ms;
    ev->silent_ms =
        now_ns > t->since_ns ? (int64_t)((now_ns - t->since_ns) / 1000000u) : 0;
    ev->timeout_ms = m->timing.timeout_ms;
}

/* Runs cb (if any) for ev, holding a reference on t; false if the
 * manager was stopped meanwhile. */
static bool notify(fl_heartbeat_manager_t *m, hb_target_t *t,
                   fl_heartbeat_event_cb cb, const fl_heartbeat_event_t *ev)
{
    if (cb == NULL)
        return true;
    fl__hb_target_retain(t);
    cb(m->o.arg, ev);
    fl__hb_target_release(t);
    return !m->stopped;
}

static void timed_out(fl_heartbeat_manager_t *m, hb_target_t *t,
                      uint64_t now_ns)
{
    fl__hb_list_remove(m, t);
    t->state = HB_TIMED_OUT;
    fl_heartbeat_event_t ev;
    event_init(m, t, FL_ETIMEDOUT, now_ns, &ev);
    char msg[512];
    if (t->last_ms != 0) {
        char at[48];
        format_time(at, sizeof at, t->last_ms);
        snprintf(msg, sizeof msg,
                 "Heartbeat of '%s' timed out: last heard from %lld ms ago "
                 "(at %s), the timeout is %lld ms; check that it is alive "
                 "and reachable, or raise heartbeat.timeout",
                 t->id, (long long)ev.silent_ms, at, (long long)ev.timeout_ms);
    } else {
        snprintf(msg, sizeof msg,
                 "Heartbeat of '%s' timed out: never heard from in the %lld "
                 "ms since it was monitored, the timeout is %lld ms; check "
                 "that it is alive and reachable, or raise heartbeat.timeout",
                 t->id, (long long)ev.silent_ms, (long long)ev.timeout_ms);
    }
    ev.message = msg;
    FL_LOG_KV(FL_LOG_WARN, FL_KV(FL_F("manager", m->id), FL_F("target", t->id)),
              "%s", msg);
    notify(m, t, m->o.on_timeout, &ev);
}

/* Refuses t for good: peer announced a timing that cannot work with ours
 * (why, already formatted). */
static void refuse(fl_heartbeat_manager_t *m, hb_target_t *t, const char *why)
{
    fl__hb_list_remove(m, t);
    t->state = HB_INCOMPATIBLE;
    fl__free(t->refusal);
    t->refusal = fl__strdup(why);
    fl_heartbeat_event_t ev;
    event_init(m, t, FL_EINVAL, fl_clock_now_ns(), &ev);
    ev.message = why;
    FL_LOG_KV(FL_LOG_ERROR,
              FL_KV(FL_F("manager", m->id), FL_F("target", t->id)), "%s", why);
    notify(m, t, m->o.on_incompatible, &ev);
}

/* ---- calls out -----------------------------------------------------------
 */

/* The outcome of a heartbeat call to t, on the main thread. */
static void on_sent(fl_future_t *f, void *arg)
{
    hb_target_t *t = arg;
    fl_heartbeat_manager_t *m = t->m;
    int err = fl_future_error(f);
    if (t->removed || m->stopped || t->state != HB_RUNNING) {
        fl__hb_target_release(t);
        return;
    }
    if (err == FL_OK) {
        t->failures = 0;
    } else if (err == FL_EUNREACHABLE) {
        t->failures++;
        int th = m->o.failure_threshold;
        if (th > 0 && t->failures >= th) {
            fl__hb_list_remove(m, t);
            t->state = HB_UNREACHABLE;
            fl_heartbeat_event_t ev;
            event_init(m, t, FL_EUNREACHABLE, fl_clock_now_ns(), &ev);
            char msg[FL_FUTURE_MESSAGE_MAX + 256];
            snprintf(msg, sizeof msg,
                     "Heartbeat target '%s' is unreachable: %d heartbeat "
                     "calls in a row failed, the last with: %s",
                     t->id, t->failures, fl_future_message(f));
            ev.message = msg;
            FL_LOG_KV(FL_LOG_WARN,
                      FL_KV(FL_F("manager", m->id), FL_F("target", t->id)),
                      "%s", msg);
            notify(m, t, m->o.on_unreachable, &ev);
        }
    } else {
        /* Other failures (a timeout, a handler's error) say nothing about
         * reachability: they neither count nor reset (Flink). */
        FL_LOG_RATELIMITED_KV(
            FL_LOG_DEBUG, FL__LOG_BURST,
            FL_KV(FL_F("manager", m->id), FL_F("target", t->id),
                  FL_F("error", fl_err_name(err))),
            "heartbeat call to '%s' failed: %s", t->id, fl_future_message(f));
    }
    fl__hb_target_release(t);
}

/* Sends t a heartbeat (request or response: the role decides) with its
 * payload, and our timing until t answered one that carried it. */
void fl__hb_send_to(fl_heartbeat_manager_t *m, hb_target_t *t)
{
    fl_heartbeat_msg_t msg = {.origin = m->id, .target = t->id};
    if (m->o.retrieve_payload != NULL)
        m->o.retrieve_payload(m->o.arg, t->id, &msg.payload, &msg.payload_len);
    if (!t->timing_acked) {
        msg.timing = &m->timing;
        t->timing_sent = true;
    }
    fl_future_t *f = t->send(t->send_arg, &msg);
    if (f == NULL) {
        FL_LOG_RATELIMITED_KV(
            FL_LOG_WARN, FL__LOG_BURST,
            FL_KV(FL_F("manager", m->id), FL_F("target", t->id)),
            "Heartbeat to '%s' was not sent: its send function gave no "
            "future",
            t->id);
        return;
    }
    fl__hb_target_retain(t);
    /* Consumes the reference on t whatever happens; f is held by the
     * continuation once it completes, so ours can go now. */
    fl_rpc_on_complete(m->ep, f, on_sent, t, fl__hb_target_release);
    fl_future_release(f);
}

void fl__hb_round(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    fl_heartbeat_manager_t *m = arg;
    if (m->stopped || m->ntargets == 0)
        return;
    /* A snapshot with references: a send function or a continuation run
     * inline may unmonitor targets of the round, or stop it all. */
    if (m->snap_cap < m->ntargets) {
        size_t cap = m->ntargets * 2;
        hb_target_t **s = fl__realloc(m->snap, cap * sizeof *s);
        if (s == NULL) {
            FL_LOG_RATELIMITED(FL_LOG_ERROR,
                               "Heartbeat round of '%s' skipped: out of memory "
                               "for %zu targets",
                               m->id, m->ntargets);
            return;
        }
        m->snap = s;
        m->snap_cap = cap;
    }
    size_t n = 0;
    for (hb_target_t *t = m->head; t != NULL; t = t->next) {
        fl__hb_target_retain(t);
        m->snap[n++] = t;
    }
    for (size_t i = 0; i < n; i++) {
        hb_target_t *t = m->snap[i];
        if (!m->stopped && !t->removed && t->state == HB_RUNNING)
            fl__hb_send_to(m, t);
        fl__hb_target_release(t);
    }
}

void fl__hb_check(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    fl_heartbeat_manager_t *m = arg;
    uint64_t now = fl_clock_now_ns();
    while (!m->stopped && m->head != NULL && m->head->deadline_ns <= now)
        timed_out(m, m->head, now);
}

/* ---- heartbeats in -------------------------------------------------------
 */

/*
 * t was heard from: its last heartbeat, and its timeout restarts. A
 * heartbeat handled after t's deadline times t out first, as the check
 * would have had it run before: the outcome must not depend on which of
 * the two a late main thread (a paused process, a stalled machine) takes
 * first. The caller holds a reference on t (on_timeout may unmonitor it).
 */
static void heard(fl_heartbeat_manager_t *m, hb_target_t *t)
{
    uint64_t now = fl_clock_now_ns();
    if (t->state == HB_RUNNING && t->listed && t->deadline_ns <= now) {
        timed_out(m, t, now);
        if (m->stopped || t->removed)
            return;
    }
    t->last_ms = fl__hb_wall_ms();
    t->since_ns = fl_clock_now_ns();
    if (t->timing_sent)
        t->timing_acked = true;
    if (t->state == HB_RUNNING)
        fl__hb_list_append(m, t, t->since_ns);
}

/* Common checks of the two entry points; FL_OK to go on. */
static int check_in(fl_heartbeat_manager_t *m, const fl_heartbeat_msg_t *msg,
                    char *err, size_t err_len)
{
    fl__say(err, err_len, "%s", "");
    if (m == NULL || msg == NULL || msg->origin == NULL) {
        fl__say(err, err_len, "%s must not be NULL",
                m == NULL     ? "m"
                : msg == NULL ? "msg"
                              : "msg->origin");
        return FL_EINVAL;
    }
    if (!fl_rpc_in_main_thread(m->ep)) {
        fl__say(err, err_len,
                "heartbeat manager '%s' called off the main thread of rpc "
                "endpoint '%s'",
                m->id, fl_rpc_endpoint_id(m->ep));
        return FL_ESTATE;
    }
    if (m->stopped) {
        fl__say(err, err_len, "heartbeat manager '%s' is stopped", m->id);
        return FL_ECLOSED;
    }
    return FL_OK;
}

static void report(fl_heartbeat_manager_t *m, const fl_heartbeat_msg_t *msg)
{
    if (m->o.report_payload != NULL &&
        (msg->payload != NULL || msg->payload_len != 0))
        m->o.report_payload(m->o.arg, msg->origin, msg->payload,
                            msg->payload_len);
}

/* Copies t's refusal into err and returns FL_EINVAL. */
static int refused(const hb_target_t *t, char *err, size_t err_len)
{
    fl__say(err, err_len, "%s", t->refusal != NULL ? t->refusal : "");
    return FL_EINVAL;
}

/* fl_heartbeat_receive_request for t, monitored and compatible; the
 * caller holds a reference on t. */
static int receive_request_of(fl_heartbeat_manager_t *m, hb_target_t *t,
                              const fl_heartbeat_msg_t *msg, char *err,
                              size_t err_len)
{
    heard(m, t);
    report(m, msg);
    if (m->stopped || t->removed)
        return FL_OK;
    const fl_heartbeat_timing_t *pt = msg->timing;
    if (pt != NULL && pt->interval_ms > m->timing.timeout_ms) {
        char why[512];
        snprintf(why, sizeof why,
                 "Heartbeats with '%s' refused: its heartbeat interval %lld "
                 "ms is longer than our heartbeat timeout %lld ms, so we "
                 "would time it out between two heartbeats; make "
                 "heartbeat.timeout at least heartbeat.interval on both sides",
                 t->id, (long long)pt->interval_ms,
                 (long long)m->timing.timeout_ms);
        /* The response still goes, with our timing: the sender refuses
         * too, with its side of the story. */
        fl__hb_target_retain(t);
        t->timing_acked = false;
        fl__hb_send_to(m, t);
        if (!m->stopped && !t->removed)
            refuse(m, t, why);
        fl__say(err, err_len, "%s", why);
        fl__hb_target_release(t);
        return FL_EINVAL;
    }
    fl__hb_send_to(m, t);
    return FL_OK;
}

int fl_heartbeat_receive_request(fl_heartbeat_manager_t *m,
                                 const fl_heartbeat_msg_t *msg, char *err,
                                 size_t err_len)
{
    int rc = check_in(m, msg, err, err_len);
    if (rc != FL_OK)
        return rc;
    hb_target_t *t = fl__hb_find(m, msg->origin);
    if (t == NULL)
        return FL_OK; /* not monitored: ignored, as Flink */
    if (t->state == HB_INCOMPATIBLE)
        return refused(t, err, err_len);
    fl__hb_target_retain(t);
    rc = receive_request_of(m, t, msg, err, err_len);
    fl__hb_target_release(t);
    return rc;
}

/* fl_heartbeat_receive_response for t, monitored and compatible; the
 * caller holds a reference on t. */
static int receive_response_of(fl_heartbeat_manager_t *m, hb_target_t *t,
                               const fl_heartbeat_msg_t *msg, char *err,
                               size_t err_len)
{
    heard(m, t);
    report(m, msg);
    if (m->stopped || t->removed)
        return FL_OK;
    const fl_heartbeat_timing_t *pt = msg->timing;
    if (pt != NULL && pt->timeout_ms < m->timing.interval_ms) {
        char why[512];
        snprintf(why, sizeof why,
                 "Heartbeats with '%s' refused: its heartbeat timeout %lld ms "
                 "is shorter than our heartbeat interval %lld ms, so it would "
                 "time us out between two heartbeats; make heartbeat.timeout "
                 "at least heartbeat.interval on both sides",
                 t->id, (long long)pt->timeout_ms,
                 (long long)m->timing.interval_ms);
        refuse(m, t, why);
        fl__say(err, err_len, "%s", why);
        return FL_EINVAL;
    }
    return FL_OK;
}

int fl_heartbeat_receive_response(fl_heartbeat_manager_t *m,
                                  const fl_heartbeat_msg_t *msg, char *err,
                                  size_t err_len)
{
    int rc = check_in(m, msg, err, err_len);
    if (rc != FL_OK)
        return rc;
    hb_target_t *t = fl__hb_find(m, msg->origin);
    if (t != NULL && t->state == HB_INCOMPATIBLE)
        return refused(t, err, err_len);
    if (t == NULL) {
        report(m, msg);
        return FL_OK;
    }
    fl__hb_target_retain(t);
    rc = receive_response_of(m, t, msg, err, err_len);
    fl__hb_target_release(t);
    return rc;
}
