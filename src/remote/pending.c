/*
 * pending.c - requests: sending one (a fresh correlation id, a record on
 * the connection's table, its deadline), the records' pool, and the
 * deadlines the I/O thread enforces. Answers are matched in conn_read.c
 * and await.c; a connection's failure fails its table in conn.c.
 *
 * A request's timeout is kept on its connection (a heap by deadline, under
 * its lock: O(log n) whatever the mix of timeouts) rather than as a system
 * timer: the I/O thread fails the requests whose deadline passed when it
 * looks at the connection (wake.c). A request whose deadline comes before
 * that kicks the I/O thread to look sooner; the others cost no wake-up.
 */
#include "remote/conn.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Request records a connection keeps for reuse. */
#define PENDING_POOL 1024u

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* A request record for c (under c->mu): from the pool, else allocated.
 * NULL when out of memory. */
static fl__pending_t *pending_get_locked(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    fl__pending_t *p = c->pool;
    if (p == NULL)
        return fl__malloc(sizeof *p);
    c->pool = p->next_free;
    c->npool--;
    return p;
}

/* Give p back (under c->mu), done with: its future and `what` are let go
 * of by the caller. */
void fl__pending_put_locked(fl__conn_t *c, fl__pending_t *p)
{
    FL__ASSERT_LOCKED(c);
    fl__free(p->what);
    if (c->npool >= PENDING_POOL) {
        fl__free(p);
        return;
    }
    p->next_free = c->pool;
    c->pool = p;
    c->npool++;
}

/* A request is over (its future completed or failed, p off the table):
 * let go of the future and give the record back. Not under c->mu. */
void fl__pending_done(fl__conn_t *c, fl__pending_t *p)
{
    fl_future_release(p->f);
    fl__conn_lock(c);
    fl__pending_put_locked(c, p);
    fl__conn_unlock(c);
}

/* Take p off c's deadline heap if it is on it (under c->mu). */
static void deadline_del_locked(fl__conn_t *c, fl__pending_t *p)
{
    if (fl__hnode_queued(&p->dl))
        fl__heap_remove(&c->dl, &p->dl);
}

/* Take p off c's table and its deadline list (under c->mu). */
static void pending_unlink_locked(fl__conn_t *c, fl__pending_t *p)
{
    FL__ASSERT_LOCKED(c);
    HASH_DEL(c->pending, p);
    deadline_del_locked(c, p);
}

/* An answer came for p (under c->mu): off the table with it, and its
 * record back to the pool; returns its future (the request's reference)
 * and what decodes the answer. */
fl_future_t *fl__pending_answered_locked(fl__conn_t *c, fl__pending_t *p,
                                         fl__req_call_t *call)
{
    fl_future_t *f = p->f;
    *call = p->call;
    pending_unlink_locked(c, p);
    fl__pending_put_locked(c, p);
    return f;
}

/* What the connection was when requests timed out, under c->mu: enough
 * to say how far each got once the lock is let go. */
typedef struct progress {
    int state;
    uint64_t done[2];
} progress_t;

void fl__pending_progress(const fl__pending_t *p, int state,
                          const uint64_t done[2], const char *peer, char *buf,
                          size_t cap)
{
    if (state != C_OPEN) {
        snprintf(buf, cap,
                 state == C_CLOSING
                     ? "request not sent: the connection to %s was closing"
                     : "request not sent: the connection to %s was still "
                       "being established",
                 peer);
        return;
    }
    uint64_t d = done[p->lane];
    uint64_t start = p->end - p->len;
    if ((int64_t)(d - p->end) >= 0)
        snprintf(buf, cap, "request sent");
    else if ((int64_t)(d - start) > 0)
        snprintf(buf, cap, "request partly sent: %llu of %lu bytes written",
                 (unsigned long long)(d - start), (unsigned long)p->len);
    else if (d == start)
        snprintf(buf, cap, "request not sent: first in its queue");
    else
        snprintf(buf, cap, "request not sent: still queued behind %llu bytes",
                 (unsigned long long)(start - d));
}

/* Adds to done[] the bytes of the write in flight that the socket has
 * taken already (libuv holds the rest: write_queue_size): done[] counts a
 * write only when it completes, but a request the kernel has may have
 * reached the peer. The write's buffers are the small lane's frames,
 * then the big lane's (a fragment after its header). I/O thread. */
static void inflight_written(const fl__conn_t *c, uint64_t done[2])
{
    size_t total = c->wflight_bytes + c->wflight_hdr;
    if (total == 0) /* none in flight */
        return;
    size_t left = c->tcp.write_queue_size;
    size_t w = total > left ? total - left : 0;
    size_t small = w < c->wflight_lane[0] ? w : c->wflight_lane[0];
    done[0] += small;
    w -= small;
    w = w > c->wflight_hdr ? w - c->wflight_hdr : 0;
    done[1] += w < c->wflight_lane[1] ? w : c->wflight_lane[1];
}

/* The failure of request p that timed out (I/O thread, not under
 * c->mu). */
static void fail_timed_out(fl__conn_t *c, fl__pending_t *p,
                           const progress_t *pg)
{
    if (p->kind != FL__REQ_INVOKE) {
        /* A CONNECT: fl_rpc_connect names its address (tcp_client.c). */
        fl_future_fail(p->f, FL_ETIMEDOUT, "timed out after %lld ms",
                       (long long)p->timeout_ms);
        return;
    }
    char method[256], how[128];
    if (c->net->hooks.name_call != NULL)
        c->net->hooks.name_call(p->call.arg, p->call.idx, method,
                                sizeof method);
    else
        snprintf(method, sizeof method, "method #%u", (unsigned)p->call.idx);
    fl__pending_progress(p, pg->state, pg->done, c->name, how, sizeof how);
    fl_future_fail(p->f, FL_ETIMEDOUT,
                   "Invocation of %s on %s timed out after %lld ms (%s)",
                   method, p->call.address ? p->call.address : c->name,
                   (long long)p->timeout_ms, how);
}

/* Fails c's requests whose deadline is not after now with FL_ETIMEDOUT,
 * in deadline order (their late answers are dropped). I/O thread (a visit
 * of wake.c, which then puts c under its next deadline). */
void fl__conn_expire(fl__conn_t *c, uint64_t now)
{
    FL__ASSERT_IO(c->net);
    fl__pending_t *due = NULL, **tail = &due;
    progress_t pg;
    fl__conn_lock(c);
    pg.state = c->state;
    pg.done[0] = c->done[0];
    pg.done[1] = c->done[1];
    inflight_written(c, pg.done);
    fl__hnode_t *top;
    while ((top = fl__heap_top(&c->dl)) != NULL && top->key <= now) {
        fl__pending_t *p = fl__container_of(top, fl__pending_t, dl);
        pending_unlink_locked(c, p);
        /* In deadline order, as they came off the heap. */
        p->next_free = NULL;
        *tail = p;
        tail = &p->next_free;
    }
    fl__conn_unlock(c);
    while (due != NULL) {
        fl__pending_t *p = due;
        due = p->next_free;
        fail_timed_out(c, p, &pg);
        fl__pending_done(c, p);
    }
}

/* The deadline of a request with this timeout (FL_INFINITE: 0, none),
 * from the precise clock, read before the connection's lock is taken. */
static uint64_t deadline_of(int64_t timeout_ms)
{
    if (timeout_ms == FL_INFINITE)
        return 0;
    return fl__add_sat(fl_clock_now_ns(), fl__ms_to_ns(timeout_ms));
}

int fl__conn_request(fl__conn_t *c, fl__obuf_t *fb, fl_future_t *f,
                     fl__req_kind_t kind, const char *what,
                     const fl__req_call_t *call, int64_t timeout_ms)
{
    static const fl__req_call_t none;
    char msg[FL__HOST_MAX + 300];
    char *what_copy = NULL;
    if (what != NULL && (what_copy = fl__strdup(what)) == NULL) {
        fl__obuf_free(fb);
        fl_future_fail(f, FL_ENOMEM, NULL);
        return FL_ENOMEM;
    }
    uint64_t deadline = deadline_of(timeout_ms);
    fl__conn_lock(c);
    fl__pending_t *p = pending_get_locked(c);
    if (p == NULL) {
        fl__conn_unlock(c);
        fl__free(what_copy);
        fl__obuf_free(fb);
        fl_future_fail(f, FL_ENOMEM, NULL);
        return FL_ENOMEM;
    }
    /* Every field but the table's handle (HASH_ADD sets it), field by
     * field: a memset of the record would be a `rep stos` (frame.c). */
    p->corr = 0;
    p->f = NULL;
    p->kind = 0;
    p->what = what_copy;
    p->call = call != NULL ? *call : none;
    if (p->call.address == NULL)
        p->call.address = c->name; /* lives as long as c */
    p->end = 0;
    p->len = (uint32_t)fb->len;
    p->lane = FL__LANE_SMALL;
    p->dl.idx = FL__HEAP_NONE;
    p->timeout_ms = 0;
    p->next_free = NULL;
    int rc = fl__conn_refuse_locked(c, fb->len, msg, sizeof msg);
    if (rc == FL_OK && c->outbound && fl__conn_backing_off_locked(c)) {
        char after[48], reason[sizeof c->last_err];
        snprintf(after, sizeof after, " (next attempt in %lld ms)",
                 (long long)(c->retry_at_ms - fl__net_now_ms()));
        snprintf(reason, sizeof reason, "%s", c->last_err);
        int code = c->last_code;
        fl__pending_put_locked(c, p);
        fl__conn_unlock(c);
        fl__obuf_free(fb);
        fl__conn_fail_request(f, c, (uint8_t)kind, what, true, code, reason,
                              after);
        return code != 0                 ? code
               : kind == FL__REQ_CONNECT ? FL_ECONNECT
                                         : FL_EUNREACHABLE;
    }
    if (rc != FL_OK) {
        fl__pending_put_locked(c, p);
        fl__conn_unlock(c);
        fl__obuf_free(fb);
        fl_future_fail(f, rc, "%s", msg);
        return rc;
    }
    p->corr = ++c->next_corr;
    p->f = fl_future_retain(f);
    p->kind = (uint8_t)kind;
    bool sooner = false;
    if (timeout_ms != FL_INFINITE) {
        p->timeout_ms = timeout_ms;
        p->dl.key = deadline;
        p->dl.seq = p->corr;
        if (fl__heap_push(&c->dl, &p->dl) != FL_OK) {
            fl__pending_put_locked(c, p);
            fl__conn_unlock(c);
            fl__obuf_free(fb);
            fl_future_fail(f, FL_ENOMEM, NULL);
            fl_future_release(f); /* the record's reference */
            return FL_ENOMEM;
        }
        /* The I/O thread looks at c by c->wake_at: a deadline before
         * that (or none armed) needs it to look sooner (wake.c). */
        sooner = c->wake_at == 0 || p->dl.key < c->wake_at;
    }
    put64(fb->data + 8, p->corr);
    HASH_ADD(hh, c->pending, corr, sizeof p->corr, p);
    fl__conn_enqueue_locked(c, fb);
    /* Where its frame ends in its lane (for its timeout's message). */
    p->lane = c->big_tail == fb ? FL__LANE_BIG : FL__LANE_SMALL;
    p->end = c->enq[p->lane];
    fl__conn_queued_locked(c, HASH_COUNT(c->pending) == 1, sooner);
    return FL_OK;
}

const char *fl__conn_intern(fl__conn_t *c, const char *s)
{
    fl__conn_lock(c);
    const char *out = NULL;
    for (fl__interned_t *i = c->interned; i != NULL; i = i->next)
        if (strcmp(i->s, s) == 0) {
            out = i->s;
            break;
        }
    if (out == NULL && c->ninterned < FL__CONN_INTERN_MAX) {
        size_t n = strlen(s) + 1;
        fl__interned_t *i = fl__malloc(sizeof *i + n);
        if (i != NULL) {
            memcpy(i->s, s, n);
            i->next = c->interned;
            c->interned = i;
            c->ninterned++;
            out = i->s;
        }
    }
    fl__conn_unlock(c);
    return out;
}
