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
                                         fl__decode_fn *decode,
                                         const void **decode_arg)
{
    fl_future_t *f = p->f;
    *decode = p->decode;
    *decode_arg = p->decode_arg;
    pending_unlink_locked(c, p);
    fl__pending_put_locked(c, p);
    return f;
}

/* Fails c's requests whose deadline is not after now with FL_ETIMEDOUT,
 * in deadline order (their late answers are dropped). I/O thread (a visit
 * of wake.c, which then puts c under its next deadline). */
void fl__conn_expire(fl__conn_t *c, uint64_t now)
{
    FL__ASSERT_IO(c->net);
    fl__pending_t *due = NULL, **tail = &due;
    fl__conn_lock(c);
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
        fl_future_fail(p->f, FL_ETIMEDOUT, "timed out after %lld ms",
                       (long long)p->timeout_ms);
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
                     fl__decode_fn decode, const void *decode_arg,
                     int64_t timeout_ms)
{
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
    p->decode = NULL;
    p->decode_arg = NULL;
    p->dl.idx = FL__HEAP_NONE;
    p->timeout_ms = 0;
    p->next_free = NULL;
    int rc = fl__conn_refuse_locked(c, fb->len, msg, sizeof msg);
    if (rc == FL_OK && c->outbound && fl__conn_backing_off_locked(c)) {
        char after[48], reason[sizeof c->last_err];
        snprintf(after, sizeof after, " (next attempt in %lld ms)",
                 (long long)(c->retry_at_ms - fl__net_now_ms()));
        snprintf(reason, sizeof reason, "%s", c->last_err);
        fl__pending_put_locked(c, p);
        fl__conn_unlock(c);
        fl__obuf_free(fb);
        fl__conn_fail_request(f, c, (uint8_t)kind, what, true, 0, reason,
                              after);
        return kind == FL__REQ_CONNECT ? FL_ECONNECT : FL_EUNREACHABLE;
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
    p->decode = decode;
    p->decode_arg = decode_arg;
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
    fl__conn_queued_locked(c, HASH_COUNT(c->pending) == 1, sooner);
    return FL_OK;
}
