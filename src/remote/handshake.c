/*
 * handshake.c - the handshake's deadline and the cap on connections in
 * their handshake (docs/wire-protocol.md, "Handshake deadline"). Every
 * connection waiting for its peer's HELLO is on the net's handshake list
 * with the time it must have come by (c->deadline_ms): an outbound one
 * from the start of its attempt and again from its connect, an accepted
 * one from its accept. Every entry gets the same timeout, so appending
 * keeps the list in deadline order: one timer, armed for the head, fails
 * the overdue ones, and the head's first accepted connection is the
 * oldest, the one dropped when a new accept exceeds the cap. I/O thread
 * only, like the fields it uses (conn.h).
 */
#include "remote/conn.h"
#include "remote/tls_io.h"

#include <stdio.h>

/* How soon an overdue connection whose resolving could not be cancelled
 * (the resolver is running) is looked at again. */
#define RESOLVE_RECHECK_MS 50

static void on_hs_timer(uv_timer_t *t);

void fl__hs_init(fl__net_t *n, const fl__net_opts_t *o)
{
    n->hs_timeout_ms = o->handshake_timeout_ms > 0
                           ? o->handshake_timeout_ms
                           : FL__NET_HANDSHAKE_TIMEOUT_MS;
    n->hs_max =
        o->max_handshaking > 0 ? o->max_handshaking : FL__NET_MAX_HANDSHAKING;
    uv_timer_init(&n->loop, &n->hs_timer);
    n->hs_timer.data = n;
    uv_unref((uv_handle_t *)&n->hs_timer);
}

void fl__hs_fini(fl__net_t *n)
{
    uv_close((uv_handle_t *)&n->hs_timer, NULL);
}

/* Arm the timer for the head's deadline, or stop it with none. */
static void arm(fl__net_t *n)
{
    if (n->hs_head == NULL) {
        uv_timer_stop(&n->hs_timer);
        return;
    }
    int64_t wait = n->hs_head->deadline_ms - fl__net_now_ms();
    uv_timer_start(&n->hs_timer, on_hs_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

/* Take c off the list (it is on it). */
static void unlink_conn(fl__net_t *n, fl__conn_t *c)
{
    if (c->hs_prev != NULL)
        c->hs_prev->hs_next = c->hs_next;
    else
        n->hs_head = c->hs_next;
    if (c->hs_next != NULL)
        c->hs_next->hs_prev = c->hs_prev;
    else
        n->hs_tail = c->hs_prev;
    c->hs_prev = c->hs_next = NULL;
    c->on_hs = false;
    if (!c->outbound)
        n->hs_accepted--;
}

/* Put c at the tail with a deadline `ms` from now. */
static void append(fl__net_t *n, fl__conn_t *c, int64_t ms)
{
    /* One more: now is cut down to the millisecond, and a deadline must
     * not come early. */
    c->deadline_ms = fl__net_now_ms() + ms + 1;
    c->hs_prev = n->hs_tail;
    c->hs_next = NULL;
    if (n->hs_tail != NULL)
        n->hs_tail->hs_next = c;
    else
        n->hs_head = c;
    n->hs_tail = c;
    c->on_hs = true;
    if (!c->outbound)
        n->hs_accepted++;
}

void fl__hs_begin(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    bool was_head = n->hs_head == c;
    if (c->on_hs)
        unlink_conn(n, c);
    append(n, c, n->hs_timeout_ms);
    if (n->hs_head == c || was_head)
        arm(n);
    if (c->outbound || n->hs_accepted <= n->hs_max)
        return;
    /* One accepted connection too many in its handshake: the oldest goes
     * (the newest may be a client that says HELLO at once). */
    fl__conn_t *old = n->hs_head;
    while (old->outbound)
        old = old->hs_next;
    char why[96];
    snprintf(why, sizeof why,
             "too many connections in their handshake (limit %u): the oldest "
             "is dropped",
             n->hs_max);
    fl__conn_proto_error(old, FL_EHANDSHAKE, why);
}

void fl__hs_end(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    if (!c->on_hs)
        return;
    bool was_head = n->hs_head == c;
    unlink_conn(n, c);
    if (was_head)
        arm(n);
}

/* c's handshake is overdue (off the list): fail it. */
static void expire(fl__net_t *n, fl__conn_t *c)
{
    fl__conn_lock(c);
    int st = c->state;
    fl__conn_unlock(c);
    char why[96];
    if (st == C_RESOLVING) {
        /* on_resolved fails the attempt ("connect timed out while
         * resolving"); a resolver already running cannot be cancelled. */
        if (uv_cancel((uv_req_t *)&c->gai) != 0)
            append(n, c, RESOLVE_RECHECK_MS);
    } else if (st == C_CONNECTING) {
        snprintf(why, sizeof why,
                 "connect timed out: no connection within %lld ms",
                 (long long)n->hs_timeout_ms);
        fl__conn_close(c, 0, why);
    } else if (st == C_OPEN && c->tls != NULL && fl__tls_io_expired(c)) {
        /* closed: "TLS handshake with <peer> timed out after N ms" */
    } else if (st == C_OPEN && c->outbound) {
        snprintf(why, sizeof why,
                 "handshake timed out: no HELLO within %lld ms",
                 (long long)n->hs_timeout_ms);
        fl__conn_close(c, 0, why);
    } else if (st == C_OPEN) {
        snprintf(why, sizeof why, "no HELLO within %lld ms",
                 (long long)n->hs_timeout_ms);
        fl__conn_proto_error(c, FL_EHANDSHAKE, why);
    }
}

static void on_hs_timer(uv_timer_t *t)
{
    fl__net_t *n = t->data;
    FL__ASSERT_IO(n);
    int64_t now = fl__net_now_ms();
    /* Those appended while expiring (a resolver to look at again) are
     * due later than now. */
    while (n->hs_head != NULL && n->hs_head->deadline_ms <= now) {
        fl__conn_t *c = n->hs_head;
        unlink_conn(n, c);
        expire(n, c);
    }
    arm(n);
}
