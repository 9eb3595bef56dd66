/*
 * conn.c - a connection's life: its references, making it, opening it
 * (either side), closing it and failing what was pending on it, and the
 * read-only public side (name, peer's maximum, closed).
 *
 * Who owns which field: the table in conn.h.
 */
#include "remote/conn.h"

#include "actor/flow.h"
#include "remote/tls_io.h"

#include <stdio.h>

void fl__conn_retain(fl__conn_t *c)
{
    /* Relaxed: a reference is made from one the caller holds, and
     * publishes nothing; the free is ordered by fl__conn_release_n. */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* References fl__conn_retain_io takes at a time. */
#define IO_REFS_BLOCK 64

void fl__conn_retain_io(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    if (c->io_refs == 0) {
        /* Relaxed, as fl__conn_retain. */
        atomic_fetch_add_explicit(&c->refs, IO_REFS_BLOCK,
                                  memory_order_relaxed);
        c->io_refs = IO_REFS_BLOCK;
    }
    c->io_refs--;
}

void fl__conn_release_n(fl__conn_t *c, int n)
{
    /* acq_rel pairs with itself: every holder's release orders its last
     * use of c before the acquire of the one that frees it. */
    if (c == NULL || n == 0 ||
        atomic_fetch_sub_explicit(&c->refs, n, memory_order_acq_rel) != n)
        return;
    /* Last reference: the net let go of it, so no handle is open. */
    fl__obuf_free_list(c->out_head);
    fl__obuf_free_list(c->big_head);
    fl__obuf_free_list(c->held_head);
    fl__pending_t *p, *tmp;
    HASH_ITER(hh, c->pending, p, tmp)
    {
        HASH_DEL(c->pending, p);
        fl_future_fail(p->f, FL_ECLOSED, "rpc service shut down");
        fl_future_release(p->f);
        fl__free(p->what);
        fl__free(p);
    }
    while (c->pool != NULL) {
        p = c->pool;
        c->pool = p->next_free;
        fl__free(p);
    }
    while (c->interned != NULL) {
        fl__interned_t *i = c->interned;
        c->interned = i->next;
        fl__free(i);
    }
    fl__heap_fini(&c->dl);
    fl__asks_fini(&c->asks);
    pthread_mutex_destroy(&c->mu);
    fl__free(c->wbufs);
    fl__free(c->rbuf);
    fl__frag_reset(&c->frag);
    fl__tls_io_free(c);
    fl__free(c);
}

void fl__conn_release(fl__conn_t *c)
{
    fl__conn_release_n(c, 1);
}

const char *fl__conn_peer_name(const fl__conn_t *c)
{
    return c->name;
}

uint32_t fl__conn_peer_max(const fl__conn_t *c)
{
    /* Relaxed: a size on its own, stored by dispatch (conn_read.c) on the
     * peer's HELLO; nothing is read through it. */
    return atomic_load_explicit(&c->peer_max, memory_order_relaxed);
}

uint64_t fl__conn_peer_incarnation(const fl__conn_t *c)
{
    /* Relaxed: an id on its own, stored by dispatch on the peer's HELLO
     * (conn_read.c) and cleared by fl__conn_close; nothing is read
     * through it. */
    return atomic_load_explicit(&c->peer_inc, memory_order_relaxed);
}

bool fl__conn_closed(const fl__conn_t *c)
{
    /* Acquire: pairs with fl__net_shutdown's release store. */
    return atomic_load_explicit(&c->net->closed, memory_order_acquire);
}

fl__conn_t *fl__conn_new(fl__net_t *n, bool outbound)
{
    _Static_assert(sizeof(fl__conn_t) % _Alignof(fl__drain_wait_t) == 0,
                   "the drain wait after a connection must stay aligned");
    /* c's drain wait (inbound.c) in its block: one allocation, freed with
     * it. Zeroed before its first use, as fl__drain_wait_arm asks. */
    fl__conn_t *c = fl__calloc(1, sizeof *c + sizeof(fl__drain_wait_t));
    if (c == NULL)
        return NULL;
    c->in_wait = (fl__drain_wait_t *)(c + 1);
    atomic_init(&c->refs, 1); /* the net's */
    c->net = n;
    c->outbound = outbound;
    pthread_mutex_init(&c->mu, NULL);
    c->fd = -1;
    c->rx_fd = -1;
    atomic_init(&c->rx_lk, false);
    atomic_init(&c->peer_max, n->max_frame);
    atomic_init(&c->peer_inc, 0);
    fl__rx_init(&c->rx, n->max_frame);
    c->tcp.data = c;
    c->gai.data = c;
    c->creq.data = c;
    c->wreq.data = c;
    c->wake.idx = FL__HEAP_NONE;
    return c;
}

int fl__conn_opened(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    uv_tcp_nodelay(&c->tcp, 1);
    fl__obuf_t *hello = fl__obuf_hello(c->net);
    if (hello == NULL)
        return UV_ENOMEM;
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)&c->tcp, &fd);
    fl__conn_socket_tune(fd);
    if (c->net->tls != NULL) {
        if (fl__tls_io_open(c, fd) != FL_OK) {
            fl__obuf_free(hello);
            return UV_ENOMEM;
        }
        /* Every byte goes through the engine, on the I/O thread: no
         * direct write, no caller's read (tls_io.c). */
        fd = -1;
    }
    fl__conn_rx_hold(c);
    c->rx_fd = fd;
    fl__conn_rx_let_go(c);
    fl__conn_lock(c);
    c->state = C_OPEN;
    c->fd = fd;
    fl__conn_enqueue_front_locked(c, hello);
    fl__conn_unlock(c);
    fl__hs_begin(c);
    int rc = fl__conn_read_start(c);
    if (rc == 0)
        fl__conn_flush(c);
    return rc;
}

/*
 * Fail one request of c: with code and reason as they are if code != 0,
 * else as a connect (FL_ECONNECT naming `what`) or a call (FL_EUNREACHABLE)
 * that could not get through, or whose connection was lost; FL_ETLS (a TLS
 * failure, ours or the peer's word) is worded as the latter, with its own
 * code. `after` is appended (e.g. when the next attempt is due). The one
 * place these messages are written.
 */
void fl__conn_fail_request(fl_future_t *f, const fl__conn_t *c, uint8_t kind,
                           const char *what, bool phase_connect, int code,
                           const char *reason, const char *after)
{
    if (code != 0 && code != FL_ETLS)
        fl_future_fail(f, code, "%s%s", reason, after);
    else if (kind == FL__REQ_CONNECT)
        fl_future_fail(f, code != 0 ? code : FL_ECONNECT,
                       "Could not connect to rpc endpoint under address %s: "
                       "%s%s",
                       what ? what : c->name, reason, after);
    else
        fl_future_fail(f, code != 0 ? code : FL_EUNREACHABLE,
                       phase_connect
                           ? "recipient unreachable: could not connect to %s: "
                             "%s%s"
                           : "recipient unreachable: connection to %s lost: "
                             "%s%s",
                       c->name, reason, after);
}

/*
 * Fail every request pending on c. phase_connect: the connection never got
 * as far as the peer's HELLO. code != 0 overrides (the net stopping, or an
 * ERROR the peer sent about the connection itself).
 */
static void fail_pending(fl__conn_t *c, fl__pending_t *list, bool phase_connect,
                         int code, const char *reason)
{
    fl__pending_t *p, *tmp;
    HASH_ITER(hh, list, p, tmp)
    {
        HASH_DEL(list, p);
        fl__conn_fail_request(p->f, c, p->kind, p->what, phase_connect, code,
                              reason, "");
        fl__pending_done(c, p);
    }
}

/* The socket is closed (uv_close's callback): an outbound connection
 * goes back to idle (connecting again if requests came meanwhile), an
 * accepted one leaves the net. */
static void on_closed(uv_handle_t *h)
{
    fl__conn_t *c = h->data;
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    c->tcp_open = false;
    fl__conn_lock(c);
    c->writing = false;
    fl__conn_unlock(c);
    c->rlen = 0;
    c->rneed = 0;
    fl__free(c->rbuf);
    c->rbuf = NULL;
    c->rcap = 0;
    fl__frag_reset(&c->frag);
    fl__tls_io_free(c);
    n->open_handles--;
    /* No more reads on this socket: give back the unused reserve (the
     * net's own reference keeps c alive here). */
    fl__conn_release_n(c, c->io_refs);
    c->io_refs = 0;
    bool again = false;
    fl__conn_lock(c);
    if (c->outbound && !n->stopping) {
        c->state = C_IDLE;
        again = fl__conn_has_queue_locked(c); /* made while closing */
    } else {
        c->state = C_DEAD;
    }
    fl__conn_unlock(c);
    if (!c->outbound) {
        fl__conn_wake_forget(c);
        if (c->prev)
            c->prev->next = c->next;
        else
            n->accepted = c->next;
        if (c->next)
            c->next->prev = c->prev;
        fl__conn_release(c); /* the net's */
    } else if (again) {
        fl__conn_process(c);
    }
    if (n->stopping && n->open_handles == 0)
        fl__net_finish_stop(n);
}

/* code: as fail_pending. */
void fl__conn_close(fl__conn_t *c, int code, const char *reason)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    fl__hs_end(c);
    fl__conn_inbound_closed(c);
    /* Relaxed: as the store of dispatch (conn_read.c). */
    atomic_store_explicit(&c->peer_inc, 0, memory_order_relaxed);
    /* No thread reads the socket from here on: it is closed below. */
    bool held = c->io_rx;
    fl__conn_rx_hold(c);
    c->rx_fd = -1;
    c->rx_left = false;
    c->rx_err = 0;
    if (!held)
        fl__conn_rx_let_go(c);
    fl__conn_lock(c);
    if (c->state == C_CLOSING || c->state == C_DEAD) {
        fl__conn_unlock(c);
        return;
    }
    int was = c->state;
    bool phase_connect = c->outbound && !c->rx.got_hello;
    bool socket = c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp);
    if (socket)
        c->state = C_CLOSING;
    else
        c->state = c->outbound && !n->stopping ? C_IDLE : C_DEAD;
    fl__pending_t *list = c->pending;
    c->pending = NULL;
    fl__heap_drop_all(&c->dl); /* its records go with the table */
    fl__obuf_t *out = fl__conn_take_queue_locked(c);
    c->fd = -1; /* no direct write from here on */
    if (phase_connect && was != C_IDLE &&
        (code == 0 || code == FL_EHANDSHAKE || code == FL_ETLS)) {
        fl__conn_back_off_locked(c);
        snprintf(c->last_err, sizeof c->last_err, "%s", reason);
        c->last_code = code == FL_ETLS ? code : 0;
        fl__net_count(&n->st_failed, 1);
    }
    int peer_err = c->peer_err;
    fl__conn_unlock(c);
    /* Outside the lock: a log handler runs with no fling lock held. The
     * name is the I/O thread's to change, and this is the I/O thread. */
    FL_LOG_KV(FL_LOG_DEBUG,
              FL_KV(FL_F("peer", c->name), FL_F("reason", reason),
                    FL_F("code", code != 0 ? fl_err_name(code) : NULL)),
              "connection %s %s closed", c->outbound ? "to" : "from", c->name);
    fl__obuf_free_list(out);
    if (socket) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
    if (peer_err != 0)
        fail_pending(c, list, phase_connect, peer_err, c->peer_msg);
    else
        fail_pending(c, list, phase_connect, code, reason);
}

void fl__conn_proto_error(fl__conn_t *c, int code, const char *why)
{
    FL_LOG_RATELIMITED_KV(
        FL_LOG_WARN, FL__LOG_BURST, FL_KV(FL_F("peer", c->name)),
        "%s: %s: %s; closing the connection", c->name, fl_err_name(code), why);
    fl__conn_proto_error_quiet(c, code, why);
}

void fl__conn_proto_error_quiet(fl__conn_t *c, int code, const char *why)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    fl__net_count(&n->st_proto, 1);
    fl__obuf_t *e = fl__obuf_error(0, code, why);
    fl__conn_lock(c);
    /* Between frames only, and no direct write after it. */
    if (e != NULL && !c->writing && c->out_head == NULL) {
        fl__conn_enqueue_locked(c, e);
        fl__conn_write_queue_locked(c); /* what is left goes with the close */
    } else {
        fl__obuf_free(e);
    }
    c->fd = -1;
    fl__conn_unlock(c);
    char reason[FL__ERRMSG_MAX + 32];
    if (code == FL_EHANDSHAKE) {
        /* The peer speaks another version (or not our protocol first):
         * connecting fails with the handshake error itself. */
        snprintf(reason, sizeof reason, "%s", why);
        fl__conn_close(c, FL_EHANDSHAKE, reason);
    } else {
        snprintf(reason, sizeof reason, "protocol error: %s", why);
        fl__conn_close(c, 0, reason);
    }
}
