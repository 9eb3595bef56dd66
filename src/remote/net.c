/*
 * net.c - the TCP transport: one libuv loop on one I/O thread per service.
 *
 * Who touches what:
 * - The I/O thread owns every libuv handle and request, the read buffers
 *   and the write in flight.
 * - Any thread may queue frames on a connection (its `mu` guards the
 *   outbound queue, the pending requests, their deadlines and the state).
 *   Whoever writes takes the queue from its head under `mu`, with one
 *   non-blocking sendmsg: a worker at a message boundary of its turn (the
 *   frames of several messages together), the I/O thread after handling a
 *   read, any other thread at once for a lone frame. Otherwise the thread
 *   "kicks" the connection: it goes on the net's kick list and
 *   uv_async_send wakes the loop, which connects or writes.
 * - Answers from the wire complete futures on the I/O thread, and the I/O
 *   thread fails requests whose deadline passed.
 *
 * A connection's memory lives until its last reference: the net's table
 * (until it closes), gateways, kicks in flight and server-side calls in
 * flight all hold one, so a late answer finds a closed connection and is
 * dropped rather than a freed one.
 */
#include "remote/net.h"

#include "actor/internal.h"
#include "common/internal.h"
#include "remote/address.h"
#include "remote/rx.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/*
 * The connections' request tables are keyed by correlation ids, which are
 * handed out in sequence: their low bits already spread them over the
 * buckets (uthash takes hashv modulo a power of two) and two ids compare
 * as integers. Other keys (the peers table's names) keep uthash's hash.
 */
static inline uint64_t key64(const void *k)
{
    uint64_t v;
    memcpy(&v, k, sizeof v);
    return v;
}

static inline int key_cmp(const void *a, const void *b, size_t n)
{
    if (n == sizeof(uint64_t))
        return key64(a) != key64(b);
    return memcmp(a, b, n);
}

#define HASH_FUNCTION(keyptr, keylen, hashv)                                   \
    do {                                                                       \
        if ((keylen) == sizeof(uint64_t))                                      \
            (hashv) = (unsigned)key64(keyptr);                                 \
        else                                                                   \
            HASH_JEN(keyptr, keylen, hashv);                                   \
    } while (0)
#define HASH_KEYCMP(a, b, n) key_cmp(a, b, n)

#include <uthash.h>
#include <uv.h>

#define READ_CHUNK 65536u
#define SHRINK_ABOVE (1u << 20)
#define TICK_MS 100
/* Request deadlines closer than this get a timer of their own; the tick
 * picks up the others in time. */
#define DEADLINE_NEAR_MS (2 * TICK_MS)
/* How far CLOCK_MONOTONIC_COARSE may lag CLOCK_MONOTONIC: one tick. */
#define COARSE_SLACK_NS 10000000u
#define STOP_FLUSH_MS 1000
#define WRITE_BATCH 1024u /* frames per uv_write */
#define DIRECT_IOV 64     /* frames per direct sendmsg */
#define DEFER_CONNS 16    /* connections a worker's turn holds back */
/* How long a worker holds frames back while its actor has more queued. */
#define DEFER_NS 20000u

enum {
    C_IDLE = 0,   /* outbound, no socket: the next request connects */
    C_RESOLVING,  /* outbound: uv_getaddrinfo in flight */
    C_CONNECTING, /* outbound: uv_tcp_connect in flight */
    C_OPEN,       /* socket open, reading (HELLO may still be due) */
    C_CLOSING,    /* uv_close in flight */
    C_DEAD        /* accepted and closed, or the net stopped */
};

typedef struct pending {
    uint64_t corr;
    fl_future_t *f;
    uint8_t kind;
    char *what;
    fl__decode_fn decode; /* NULL: the answer is an fl_msg_t */
    const void *decode_arg;
    uint64_t deadline_ns; /* 0: none; else on the deadline list */
    int64_t timeout_ms;
    struct pending *dprev, *dnext; /* the deadline list */
    UT_hash_handle hh;
    struct pending *next_free; /* in the connection's pool */
} pending_t;

/* Request records a connection keeps for reuse. */
#define PENDING_POOL 1024u

struct fl__conn {
    _Atomic int refs;
    fl__net_t *net;
    bool outbound;
    char name[FL__HOST_MAX + 16]; /* "host:port" */
    char host[FL__HOST_MAX + 1];
    uint16_t port;
    UT_hash_handle hh;            /* net->peers, by name (outbound) */
    struct fl__conn *prev, *next; /* net->accepted (accepted, loop thread) */
    struct fl__conn *knext;       /* the kick list (under net->kmu) */
    struct fl__conn *dnext;       /* net->dirty (I/O thread) */
    bool dirty;                   /* on net->dirty (I/O thread) */
    bool kicked;                  /* under net->kmu */

    pthread_mutex_t mu;
    int state;
    fl__obuf_t *out_head, *out_tail;
    size_t queued; /* bytes queued or being written */
    pending_t *pending;
    /* The requests with a deadline, earliest first (the I/O thread fails
     * them when it passes). */
    pending_t *dhead, *dtail;
    pending_t *pool; /* free records, up to PENDING_POOL */
    unsigned npool;
    uint64_t next_corr;
    int64_t retry_at_ms; /* outbound: no attempt before (after a failure) */
    int backoff_ms;
    char last_err[160];
    bool overflow; /* an answer did not fit the queue: close */
    _Atomic uint32_t peer_max;

    /* I/O thread only. */
    uv_tcp_t tcp;
    bool tcp_open;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    int64_t deadline_ms; /* for the peer's HELLO */
    uv_write_t wreq;
    bool writing; /* a uv_write in flight: set and cleared under mu */
    int fd;       /* the socket for direct writes, or -1 (under mu) */
    fl__obuf_t *wflight;
    size_t wflight_bytes;
    uv_buf_t *wbufs;
    size_t wcap;
    bool close_when_flushed;
    /* The read side: rx, rbuf, rcap, rlen, rneed and the rx_ fields belong
     * to whoever holds rx_lk: the I/O thread from on_alloc to the end of
     * on_read (io_rx), or a thread waiting for its call's answer for one
     * attempt at reading it itself (fl__conn_await). */
    _Atomic bool rx_lk;
    bool io_rx; /* I/O thread only: it holds rx_lk */
    int rx_fd;  /* the socket to read, or -1 */
    /* What a waiting thread read and left to the I/O thread: bytes in rbuf
     * (rx_left), or the end of the stream (rx_err, a libuv error code). */
    bool rx_left;
    int rx_err;
    fl__rx_t rx;
    uint8_t *rbuf;
    size_t rcap, rlen, rneed;
    int io_refs; /* references reserved for fl__conn_retain_io */
    /* Answers the I/O thread made while handling a read, held back until
     * conn_process queues them under one hold of mu (fl__conn_send). */
    fl__obuf_t *held_head, *held_tail;
    int peer_err; /* a connection-level ERROR from the peer (corr 0) */
    char peer_msg[FL__ERRMSG_MAX + 1];
};

struct fl__net {
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t tick;
    uv_timer_t dtimer;  /* fires at the nearest request deadline */
    uint64_t dtimer_at; /* I/O thread: what dtimer is armed for; 0: not */
    uv_tcp_t listener;
    bool listening;
    pthread_t thread;
    bool thread_started;
    int port;
    uint32_t max_frame;
    size_t max_queued;
    char *name;
    fl__net_hooks_t hooks;

    pthread_mutex_t mu; /* peers */
    fl__conn_t *peers;
    fl__conn_t *accepted; /* I/O thread only */

    pthread_mutex_t kmu; /* the kick list and the stop flags */
    fl__conn_t *kick_head;
    bool stop_asked; /* under kmu */
    bool loop_gone;  /* under kmu: no more uv_async_send */
    _Atomic bool closed;

    /* I/O thread only. */
    bool in_read;      /* handling what a connection read */
    fl__conn_t *dirty; /* to flush once that is done */
    bool stopping;
    int64_t stop_deadline_ms;
    int open_handles; /* connection sockets not yet closed */

    _Atomic uint64_t st_accepted, st_opened, st_failed, st_in, st_out,
        st_writes, st_proto, st_caller_reads, st_caller_answers;
};

static _Thread_local fl__net_t *tls_net; /* set on the I/O thread */

static int64_t now_ms(void)
{
    return (int64_t)(fl_clock_now_ns() / 1000000u);
}

static void conn_process(fl__conn_t *c);
static void conn_close(fl__conn_t *c, int code, const char *reason);
static void finish_stop(fl__net_t *n);
static bool write_queue_locked(fl__conn_t *c);
static void enqueue_locked(fl__conn_t *c, fl__obuf_t *b);
static int refuse_locked(fl__conn_t *c, size_t len, char *msg, size_t cap);
static void deadline_arm(fl__net_t *n, uint64_t at, uint64_t now);

/* ---- frames ------------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

fl__obuf_t *fl__obuf_frame(uint8_t kind, uint16_t flags, uint64_t corr,
                           const fl__frame_meta_t *m, size_t body_len,
                           uint8_t **body)
{
    size_t meta = m != NULL ? fl__frame_meta_size(kind, flags, m) : 0;
    if (m != NULL && meta == 0)
        return NULL;
    return fl__obuf_frame_sized(kind, flags, corr, m, meta, body_len, body);
}

fl__obuf_t *fl__obuf_frame_sized(uint8_t kind, uint16_t flags, uint64_t corr,
                                 const fl__frame_meta_t *m, size_t meta,
                                 size_t body_len, uint8_t **body)
{
    if (meta > FL__META_MAX || body_len > UINT32_MAX)
        return NULL;
    size_t len = FL__FRAME_HDR + meta + body_len;
    fl__obuf_t *b = fl__block_alloc(sizeof *b + len);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->len = len;
    b->off = 0;
    fl__frame_hdr_t h = {.kind = kind,
                         .flags = flags,
                         .corr = corr,
                         .meta_len = (uint32_t)meta,
                         .body_len = (uint32_t)body_len};
    fl__frame_encode_hdr(b->data, &h);
    if (meta > 0)
        fl__frame_put_meta(kind, flags, m, b->data + FL__FRAME_HDR);
    if (body != NULL)
        *body = b->data + FL__FRAME_HDR + meta;
    return b;
}

void fl__obuf_free(fl__obuf_t *b)
{
    if (b != NULL)
        fl__block_free(b, sizeof *b + b->len);
}

static void obuf_free_list(fl__obuf_t *b)
{
    while (b != NULL) {
        fl__obuf_t *next = b->next;
        fl__obuf_free(b);
        b = next;
    }
}

static fl__str_t str_of(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    return (fl__str_t){s, (uint16_t)n};
}

static fl__obuf_t *hello_frame(fl__net_t *n)
{
    fl__frame_meta_t m = {.max_frame = n->max_frame,
                          .service_name = str_of(n->name, FL__NAME_MAX)};
    return fl__obuf_frame(FL__K_HELLO, 0, 0, &m, 0, NULL);
}

static fl__obuf_t *error_frame(uint64_t corr, int code, const char *msg)
{
    fl__frame_meta_t m = {.code = (uint32_t)code,
                          .message = str_of(msg ? msg : "", FL__ERRMSG_MAX)};
    return fl__obuf_frame(FL__K_ERROR, 0, corr, &m, 0, NULL);
}

/* ---- references and the kick list -------------------------------------- */

void fl__conn_retain(fl__conn_t *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* References fl__conn_retain_io takes at a time. */
#define IO_REFS_BLOCK 64

void fl__conn_retain_io(fl__conn_t *c)
{
    if (c->io_refs == 0) {
        atomic_fetch_add_explicit(&c->refs, IO_REFS_BLOCK,
                                  memory_order_relaxed);
        c->io_refs = IO_REFS_BLOCK;
    }
    c->io_refs--;
}

/* Let go of n references to c; the last one frees it. */
static void conn_release_n(fl__conn_t *c, int n)
{
    if (c == NULL || n == 0 ||
        atomic_fetch_sub_explicit(&c->refs, n, memory_order_acq_rel) != n)
        return;
    /* Last reference: the net let go of it, so no handle is open. */
    obuf_free_list(c->out_head);
    obuf_free_list(c->held_head);
    pending_t *p, *tmp;
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
    pthread_mutex_destroy(&c->mu);
    fl__free(c->wbufs);
    fl__free(c->rbuf);
    fl__free(c);
}

void fl__conn_release(fl__conn_t *c)
{
    conn_release_n(c, 1);
}

const char *fl__conn_peer_name(const fl__conn_t *c)
{
    return c->name;
}

uint32_t fl__conn_peer_max(const fl__conn_t *c)
{
    return atomic_load_explicit(&c->peer_max, memory_order_relaxed);
}

static void conn_kick(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    if (tls_net == n) {
        if (!n->in_read) {
            conn_process(c);
        } else if (!c->dirty) {
            /* Frames made while handling what was read (answers, the
             * next calls) go out together once the read is handled. */
            c->dirty = true;
            fl__conn_retain(c);
            c->dnext = n->dirty;
            n->dirty = c;
        }
        return;
    }
    bool wake = false;
    pthread_mutex_lock(&n->kmu);
    if (!c->kicked && !n->loop_gone) {
        c->kicked = true;
        fl__conn_retain(c);
        c->knext = n->kick_head;
        n->kick_head = c;
        wake = true;
    }
    if (wake)
        uv_async_send(&n->async); /* under kmu: the handle is still open */
    pthread_mutex_unlock(&n->kmu);
}

/* A request record for c (under c->mu): from the pool, else allocated.
 * NULL when out of memory. */
static pending_t *pending_get_locked(fl__conn_t *c)
{
    pending_t *p = c->pool;
    if (p == NULL)
        return fl__malloc(sizeof *p);
    c->pool = p->next_free;
    c->npool--;
    return p;
}

/* Give p back (under c->mu), done with: its future and `what` are let go
 * of by the caller. */
static void pending_put_locked(fl__conn_t *c, pending_t *p)
{
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
static void pending_done(fl__conn_t *c, pending_t *p)
{
    fl_future_release(p->f);
    pthread_mutex_lock(&c->mu);
    pending_put_locked(c, p);
    pthread_mutex_unlock(&c->mu);
}

/* Link p (deadline_ns set) into c's deadline list (under c->mu): from the
 * tail, so that requests made with one timeout cost O(1). */
static void deadline_add_locked(fl__conn_t *c, pending_t *p)
{
    pending_t *q = c->dtail;
    while (q != NULL && q->deadline_ns > p->deadline_ns)
        q = q->dprev;
    p->dprev = q;
    p->dnext = q != NULL ? q->dnext : c->dhead;
    if (p->dnext != NULL)
        p->dnext->dprev = p;
    else
        c->dtail = p;
    if (q != NULL)
        q->dnext = p;
    else
        c->dhead = p;
}

/* Unlink p from c's deadline list if it is on it (under c->mu). */
static void deadline_del_locked(fl__conn_t *c, pending_t *p)
{
    if (p->deadline_ns == 0)
        return;
    if (p->dprev != NULL)
        p->dprev->dnext = p->dnext;
    else
        c->dhead = p->dnext;
    if (p->dnext != NULL)
        p->dnext->dprev = p->dprev;
    else
        c->dtail = p->dprev;
    p->dprev = p->dnext = NULL;
    p->deadline_ns = 0;
}

static fl__conn_t *conn_new(fl__net_t *n, bool outbound)
{
    fl__conn_t *c = fl__calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    atomic_init(&c->refs, 1); /* the net's */
    c->net = n;
    c->outbound = outbound;
    pthread_mutex_init(&c->mu, NULL);
    c->fd = -1;
    c->rx_fd = -1;
    atomic_init(&c->rx_lk, false);
    atomic_init(&c->peer_max, n->max_frame);
    fl__rx_init(&c->rx, n->max_frame);
    c->tcp.data = c;
    c->gai.data = c;
    c->creq.data = c;
    c->wreq.data = c;
    return c;
}

/* The I/O thread takes c's read side (if it does not hold it already),
 * waiting out a thread that reads its answer; rx_let_go gives it back. */
static void rx_hold(fl__conn_t *c)
{
    if (!c->io_rx) {
        fl__spin_lock(&c->rx_lk);
        c->io_rx = true;
    }
}

static void rx_let_go(fl__conn_t *c)
{
    if (c->io_rx) {
        c->io_rx = false;
        fl__spin_unlock(&c->rx_lk);
    }
}

/* ---- failing what is pending --------------------------------------------- */

/*
 * Fail one request of c: with code and reason as they are if code != 0,
 * else as a connect (FL_ECONNECT naming `what`) or a call (FL_EUNREACHABLE)
 * that could not get through, or whose connection was lost. `after` is
 * appended (e.g. when the next attempt is due). The one place these
 * messages are written.
 */
static void fail_request(fl_future_t *f, const fl__conn_t *c, uint8_t kind,
                         const char *what, bool phase_connect, int code,
                         const char *reason, const char *after)
{
    if (code != 0)
        fl_future_fail(f, code, "%s%s", reason, after);
    else if (kind == FL__REQ_CONNECT)
        fl_future_fail(f, FL_ECONNECT,
                       "Could not connect to rpc endpoint under address %s: "
                       "%s%s",
                       what ? what : c->name, reason, after);
    else
        fl_future_fail(f, FL_EUNREACHABLE,
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
static void fail_pending(fl__conn_t *c, pending_t *list, bool phase_connect,
                         int code, const char *reason)
{
    pending_t *p, *tmp;
    HASH_ITER(hh, list, p, tmp)
    {
        HASH_DEL(list, p);
        fail_request(p->f, c, p->kind, p->what, phase_connect, code, reason,
                     "");
        pending_done(c, p);
    }
}

/* ---- closing --------------------------------------------------------------
 */

static void on_closed(uv_handle_t *h)
{
    fl__conn_t *c = h->data;
    fl__net_t *n = c->net;
    c->tcp_open = false;
    pthread_mutex_lock(&c->mu);
    c->writing = false;
    pthread_mutex_unlock(&c->mu);
    c->rlen = 0;
    c->rneed = 0;
    fl__free(c->rbuf);
    c->rbuf = NULL;
    c->rcap = 0;
    n->open_handles--;
    /* No more reads on this socket: give back the unused reserve (the
     * net's own reference keeps c alive here). */
    conn_release_n(c, c->io_refs);
    c->io_refs = 0;
    bool again = false;
    pthread_mutex_lock(&c->mu);
    if (c->outbound && !n->stopping) {
        c->state = C_IDLE;
        again = c->out_head != NULL; /* requests made while closing */
    } else {
        c->state = C_DEAD;
    }
    pthread_mutex_unlock(&c->mu);
    if (!c->outbound) {
        if (c->prev)
            c->prev->next = c->next;
        else
            n->accepted = c->next;
        if (c->next)
            c->next->prev = c->prev;
        fl__conn_release(c); /* the net's */
    } else if (again) {
        conn_process(c);
    }
    if (n->stopping && n->open_handles == 0)
        finish_stop(n);
}

/*
 * Close c now (I/O thread): stop reading, close the socket, fail every
 * pending request and drop the queue. code: as fail_pending.
 */
static void conn_close(fl__conn_t *c, int code, const char *reason)
{
    fl__net_t *n = c->net;
    /* No thread reads the socket from here on: it is closed below. */
    bool held = c->io_rx;
    rx_hold(c);
    c->rx_fd = -1;
    c->rx_left = false;
    c->rx_err = 0;
    if (!held)
        rx_let_go(c);
    pthread_mutex_lock(&c->mu);
    if (c->state == C_CLOSING || c->state == C_DEAD) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    int was = c->state;
    bool phase_connect = c->outbound && !c->rx.got_hello;
    bool socket = c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp);
    if (socket)
        c->state = C_CLOSING;
    else
        c->state = c->outbound && !n->stopping ? C_IDLE : C_DEAD;
    pending_t *list = c->pending;
    c->pending = NULL;
    c->dhead = c->dtail = NULL; /* its records go with the table */
    fl__obuf_t *out = c->out_head;
    c->out_head = c->out_tail = NULL;
    for (fl__obuf_t *b = out; b != NULL; b = b->next)
        c->queued -= b->len - b->off;
    c->fd = -1; /* no direct write from here on */
    if (phase_connect && was != C_IDLE &&
        (code == 0 || code == FL_EHANDSHAKE)) {
        c->backoff_ms = c->backoff_ms == 0
                            ? FL__NET_BACKOFF_MIN_MS
                            : (c->backoff_ms * 2 > FL__NET_BACKOFF_MAX_MS
                                   ? FL__NET_BACKOFF_MAX_MS
                                   : c->backoff_ms * 2);
        c->retry_at_ms = now_ms() + c->backoff_ms;
        snprintf(c->last_err, sizeof c->last_err, "%s", reason);
        atomic_fetch_add(&n->st_failed, 1);
    }
    int peer_err = c->peer_err;
    pthread_mutex_unlock(&c->mu);
    obuf_free_list(out);
    if (socket) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
    if (peer_err != 0)
        fail_pending(c, list, phase_connect, peer_err, c->peer_msg);
    else
        fail_pending(c, list, phase_connect, code, reason);
}

/* A broken rule: log it, tell the peer if the socket takes it, close. */
static void proto_error(fl__conn_t *c, int code, const char *why)
{
    fl__net_t *n = c->net;
    atomic_fetch_add(&n->st_proto, 1);
    FL_LOG(FL_LOG_WARN, "remote: %s: %s: %s; closing the connection", c->name,
           fl_err_name(code), why);
    fl__obuf_t *e = error_frame(0, code, why);
    pthread_mutex_lock(&c->mu);
    /* Between frames only, and no direct write after it. */
    if (e != NULL && !c->writing && c->out_head == NULL) {
        enqueue_locked(c, e);
        write_queue_locked(c); /* what is left goes with the close */
    } else {
        fl__obuf_free(e);
    }
    c->fd = -1;
    pthread_mutex_unlock(&c->mu);
    char reason[FL__ERRMSG_MAX + 32];
    if (code == FL_EHANDSHAKE) {
        /* The peer speaks another version (or not our protocol first):
         * connecting fails with the handshake error itself. */
        snprintf(reason, sizeof reason, "%s", why);
        conn_close(c, FL_EHANDSHAKE, reason);
    } else {
        snprintf(reason, sizeof reason, "protocol error: %s", why);
        conn_close(c, 0, reason);
    }
}

/* ---- writing ------------------------------------------------------------- */

/* One write that took `frames` whole frames: the stats. */
static void count_writes(fl__net_t *n, uint64_t frames)
{
    atomic_fetch_add_explicit(&n->st_writes, 1, memory_order_relaxed);
    if (frames > 0)
        atomic_fetch_add_explicit(&n->st_out, frames, memory_order_relaxed);
}

static void conn_flush(fl__conn_t *c);

static void on_written(uv_write_t *req, int status)
{
    fl__conn_t *c = req->data;
    obuf_free_list(c->wflight);
    c->wflight = NULL;
    pthread_mutex_lock(&c->mu);
    c->queued -= c->wflight_bytes;
    bool empty = c->out_head == NULL;
    c->writing = false;
    pthread_mutex_unlock(&c->mu);
    c->wflight_bytes = 0;
    if (status == UV_ECANCELED)
        return; /* closing */
    if (status < 0) {
        conn_close(c, 0, uv_strerror(status));
        return;
    }
    if (c->close_when_flushed && empty) {
        conn_close(c, FL_ECLOSED, "rpc service shut down");
        return;
    }
    conn_flush(c);
}

/* Write everything queued in one uv_write (I/O thread). */
static void conn_flush(fl__conn_t *c)
{
    if (!c->tcp_open)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->writing || c->state != C_OPEN) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    /* Straight to the socket first: libuv's write request (and its poll
     * registration) is only needed for what the socket does not take. */
    if (write_queue_locked(c)) {
        pthread_mutex_unlock(&c->mu);
        if (c->close_when_flushed) /* the BYE is out */
            conn_close(c, FL_ECLOSED, "rpc service shut down");
        return;
    }
    /* Take up to WRITE_BATCH frames. */
    fl__obuf_t *first = c->out_head, *last = first;
    size_t n = 1, bytes = first->len - first->off;
    while (last->next != NULL && n < WRITE_BATCH) {
        last = last->next;
        bytes += last->len - last->off;
        n++;
    }
    c->writing = true;
    c->out_head = last->next;
    if (c->out_head == NULL)
        c->out_tail = NULL;
    last->next = NULL;
    pthread_mutex_unlock(&c->mu);

    if (c->wcap < n) {
        size_t cap = c->wcap ? c->wcap : 16;
        while (cap < n)
            cap *= 2;
        uv_buf_t *nb = fl__realloc(c->wbufs, cap * sizeof *nb);
        if (nb == NULL) {
            obuf_free_list(first);
            pthread_mutex_lock(&c->mu);
            c->queued -= bytes;
            c->writing = false;
            pthread_mutex_unlock(&c->mu);
            conn_close(c, 0, "out of memory");
            return;
        }
        c->wbufs = nb;
        c->wcap = cap;
    }
    size_t i = 0;
    for (fl__obuf_t *b = first; b != NULL; b = b->next)
        c->wbufs[i++] =
            uv_buf_init((char *)b->data + b->off, (unsigned)(b->len - b->off));
    c->wflight = first;
    c->wflight_bytes = bytes;
    count_writes(c->net, n);
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->wbufs, (unsigned)n,
                      on_written);
    if (rc < 0) {
        obuf_free_list(first);
        c->wflight = NULL;
        pthread_mutex_lock(&c->mu);
        c->queued -= bytes;
        c->writing = false;
        pthread_mutex_unlock(&c->mu);
        c->wflight_bytes = 0;
        conn_close(c, 0, uv_strerror(rc));
    }
}

/* Append b to the frame list *head..*tail. */
static void obuf_append(fl__obuf_t **head, fl__obuf_t **tail, fl__obuf_t *b)
{
    b->next = NULL;
    if (*tail != NULL)
        (*tail)->next = b;
    else
        *head = b;
    *tail = b;
}

/* Append b (under c->mu). */
static void enqueue_locked(fl__conn_t *c, fl__obuf_t *b)
{
    obuf_append(&c->out_head, &c->out_tail, b);
    c->queued += b->len - b->off;
}

/*
 * Write what is queued straight to the socket from the calling thread
 * (under c->mu) when the I/O thread is not writing: that saves the I/O
 * thread's wake-up on the path of a lone call, a lone reply, or the
 * replies a worker's turn produced. Frames stay in order: the I/O thread
 * takes frames from the same queue under the same lock, and marks its
 * write in flight (`writing`) before it lets go of it. Returns true when
 * the queue is empty afterwards; false when something is left (the socket
 * is full, or an error the I/O thread finds out about): kick then.
 */
static bool write_queue_locked(fl__conn_t *c)
{
    if (c->out_head == NULL)
        return true;
    if (c->state != C_OPEN || c->writing || c->fd < 0)
        return false;
    while (c->out_head != NULL) {
        struct iovec iov[DIRECT_IOV];
        int n = 0;
        for (fl__obuf_t *b = c->out_head; b != NULL && n < DIRECT_IOV;
             b = b->next, n++) {
            iov[n].iov_base = b->data + b->off;
            iov[n].iov_len = b->len - b->off;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w <= 0)
            return false; /* EAGAIN or an error: the I/O thread finds out */
        size_t left = (size_t)w;
        uint64_t frames = 0;
        c->queued -= left;
        while (left > 0) {
            fl__obuf_t *b = c->out_head;
            size_t rest = b->len - b->off;
            if (left < rest) {
                b->off += left;
                break; /* a short write: the socket is full */
            }
            left -= rest;
            c->out_head = b->next;
            if (c->out_head == NULL)
                c->out_tail = NULL;
            frames++;
            fl__obuf_free(b);
        }
        count_writes(c->net, frames);
        if (left > 0)
            return false;
    }
    return true;
}

/*
 * Connections a worker queued frames on during its current turn, written
 * at a message boundary (fl__tls_flush): the answers of a turn's calls go
 * out together. Each entry holds refs references (one for the hold, plus
 * those fl__conn_release_turn handed over), dropped with one atomic
 * operation after the write.
 */
static _Thread_local struct {
    struct {
        fl__conn_t *c;
        int refs;
    } e[DEFER_CONNS];
    unsigned n;
    uint64_t since_ns; /* when the first was held back */
} tls_defer;

/* Write c's queue from this thread, or kick the I/O thread to. */
static void conn_write_now(fl__conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    bool done = write_queue_locked(c);
    /* While the I/O thread writes, its completion takes the queue. */
    bool kick = !done && !c->writing;
    pthread_mutex_unlock(&c->mu);
    if (kick)
        conn_kick(c);
}

static void defer_flush_all(void)
{
    unsigned n = tls_defer.n;
    tls_defer.n = 0;
    fl__tls_flush = NULL;
    for (unsigned i = 0; i < n; i++) {
        conn_write_now(tls_defer.e[i].c);
        conn_release_n(tls_defer.e[i].c, tls_defer.e[i].refs);
    }
}

/* The message-boundary hook: write unless more of the turn's messages are
 * queued and the oldest held-back frame is younger than DEFER_NS. */
static void defer_hook(bool more)
{
    if (more && fl_clock_now_ns() - tls_defer.since_ns < DEFER_NS)
        return;
    defer_flush_all();
}

/* The index of c in this thread's held-back list, or -1. */
static int defer_find(const fl__conn_t *c)
{
    for (unsigned i = 0; i < tls_defer.n; i++)
        if (tls_defer.e[i].c == c)
            return (int)i;
    return -1;
}

/* True if this thread is a worker in a turn with room to hold c: c's new
 * frames were held back to its next message boundary. Under c->mu. */
static bool defer_write(fl__conn_t *c)
{
    fl__worker_t *w = fl__tls_worker;
    if (w == NULL || !w->in_turn)
        return false;
    if (defer_find(c) >= 0)
        return true;
    /* Full: c is written at once instead (flushing the others here would
     * take their locks under c's). */
    if (tls_defer.n == DEFER_CONNS)
        return false;
    if (tls_defer.n == 0) {
        tls_defer.since_ns = fl_clock_now_ns();
        fl__tls_flush = defer_hook;
    }
    fl__conn_retain(c);
    tls_defer.e[tls_defer.n].c = c;
    tls_defer.e[tls_defer.n].refs = 1;
    tls_defer.n++;
    return true;
}

void fl__conn_release_turn(fl__conn_t *c)
{
    /* The I/O thread gives the reference back to the reserve it came from
     * (fl__conn_retain_io) while the socket is open: no atomic operation. */
    if (c != NULL && tls_net == c->net && c->tcp_open) {
        c->io_refs++;
        return;
    }
    int i = c != NULL ? defer_find(c) : -1;
    if (i >= 0)
        tls_defer.e[i].refs++;
    else
        fl__conn_release(c);
}

static void enqueue_front_locked(fl__conn_t *c, fl__obuf_t *b)
{
    b->next = c->out_head;
    c->out_head = b;
    if (c->out_tail == NULL)
        c->out_tail = b;
    c->queued += b->len - b->off;
}

/* ---- reading ------------------------------------------------------------- */

/* Take p off c's table and its deadline list (under c->mu). */
static void pending_unlink_locked(fl__conn_t *c, pending_t *p)
{
    HASH_DEL(c->pending, p);
    deadline_del_locked(c, p);
}

/* The request answered by corr on c (under c->mu), or NULL. */
static pending_t *pending_find_locked(fl__conn_t *c, uint64_t corr)
{
    pending_t *p = NULL;
    if (corr != 0)
        HASH_FIND(hh, c->pending, &corr, sizeof corr, p);
    return p;
}

/* An answer came for p (under c->mu): off the table with it, and its
 * record back to the pool; returns its future (the request's reference)
 * and what decodes the answer. */
static fl_future_t *pending_answered_locked(fl__conn_t *c, pending_t *p,
                                            fl__decode_fn *decode,
                                            const void **decode_arg)
{
    fl_future_t *f = p->f;
    *decode = p->decode;
    *decode_arg = p->decode_arg;
    pending_unlink_locked(c, p);
    pending_put_locked(c, p);
    return f;
}

/* libuv reads into the buffer this gives, then calls on_read: the read
 * side is held from here to the end of on_read. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fl__conn_t *c = h->data;
    rx_hold(c);
    size_t want = c->rneed > READ_CHUNK ? c->rneed : READ_CHUNK;
    if (c->rlen + READ_CHUNK / 4 > want && c->rneed <= c->rlen)
        want = c->rlen + READ_CHUNK; /* room for more frames behind */
    if (c->rcap < want) {
        uint8_t *nb = fl__realloc(c->rbuf, want);
        if (nb == NULL) {
            *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
            return;
        }
        c->rbuf = nb;
        c->rcap = want;
    }
    *buf =
        uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

/* Complete f (still pending, taken off its table) with decode(body),
 * then let go of it. */
static void settle_decoded(fl_future_t *f, fl__decode_fn decode,
                           const void *decode_arg, const uint8_t *body,
                           size_t len)
{
    void *v = NULL;
    fl_free_cb v_free = NULL;
    char why[FL__ERRMSG_MAX + 1];
    int rc = decode(decode_arg, body, len, &v, &v_free, why, sizeof why);
    if (rc == FL_OK)
        fl_future_complete(f, v, v_free);
    else
        fl_future_fail(f, rc, "%s", why);
    fl_future_release(f);
}

/*
 * The REPLY frames of a read that answer calls, taken off the connection's
 * table together, under one hold of its lock (answer_take, which takes it
 * on the first), then completed once that is let go (answers_settle):
 * before any other frame is dispatched, so answers keep their order with
 * the other frames. At most FL__NET_RUN_FRAMES: on_read settles before it
 * runs what the frames made ready.
 */
typedef struct answers {
    unsigned n;
    bool locked; /* c->mu held */
    struct {
        fl_future_t *f; /* the request's reference */
        fl__decode_fn decode;
        const void *decode_arg;
        const uint8_t *body; /* in the read buffer */
        size_t len;
    } a[FL__NET_RUN_FRAMES];
} answers_t;

/* Take the call REPLY fr answers off c's table into b (I/O thread).
 * False when fr is anything else (a late answer, an answer to no call):
 * complete_answer then deals with it, after answers_settle. */
static bool answer_take(fl__conn_t *c, answers_t *b, const fl__rx_frame_t *fr)
{
    if (!b->locked) {
        pthread_mutex_lock(&c->mu);
        b->locked = true;
    }
    pending_t *p = pending_find_locked(c, fr->h.corr);
    if (p == NULL || p->kind != FL__REQ_INVOKE || p->decode == NULL ||
        b->n == FL__NET_RUN_FRAMES)
        return false;
    b->a[b->n].f = pending_answered_locked(c, p, &b->a[b->n].decode,
                                           &b->a[b->n].decode_arg);
    b->a[b->n].body = fr->body;
    b->a[b->n].len = fr->h.body_len;
    b->n++;
    return true;
}

/* Let go of c's lock if b holds it, and complete the calls b took. */
static void answers_settle(fl__conn_t *c, answers_t *b)
{
    if (b->locked) {
        pthread_mutex_unlock(&c->mu);
        b->locked = false;
    }
    for (unsigned i = 0; i < b->n; i++) {
        fl_future_t *f = b->a[i].f;
        if (fl_future_done(f)) /* timed out meanwhile */
            fl_future_release(f);
        else
            settle_decoded(f, b->a[i].decode, b->a[i].decode_arg, b->a[i].body,
                           b->a[i].len);
    }
    b->n = 0;
}

/* Complete f, taken off its table, with the answer fr (REPLY, ERROR or
 * CONNECTED), then let go of the request's reference. */
static void answer_settle(const fl__rx_frame_t *fr, fl_future_t *f,
                          fl__decode_fn decode, const void *decode_arg)
{
    if (fr->h.kind == FL__K_ERROR) {
        int code = fr->m.code >= 1 && fr->m.code <= INT_MAX ? (int)fr->m.code
                                                            : FL_EPROTO;
        fl_future_fail(f, code, "%.*s", (int)fr->m.message.len,
                       fr->m.message.p);
    } else if (fl_future_done(f)) {
        /* Timed out meanwhile: nobody looks at the answer. */
    } else if (fr->h.kind == FL__K_REPLY && decode != NULL) {
        settle_decoded(f, decode, decode_arg, fr->body, fr->h.body_len);
        return; /* it let go of f */
    } else {
        size_t len = fr->h.kind == FL__K_REPLY ? fr->h.body_len : 4;
        fl_msg_t *m = fl_msg_alloc(FL__MSG_ANSWER, len);
        if (m == NULL) {
            fl_future_fail(f, FL_ENOMEM, "could not hold the answer");
        } else {
            if (fr->h.kind == FL__K_REPLY)
                memcpy(fl_msg_data(m), fr->body, len);
            else
                memcpy(fl_msg_data(m), &fr->m.service_index, 4);
            /* Consumes m, also when the call timed out meanwhile. */
            fl_future_complete(f, m, fl_msg_free_cb);
        }
    }
    fl_future_release(f);
}

static void complete_answer(fl__conn_t *c, const fl__rx_frame_t *fr)
{
    pthread_mutex_lock(&c->mu);
    uint64_t corr = fr->h.corr;
    pending_t *p = pending_find_locked(c, corr);
    bool issued = corr != 0 && corr <= c->next_corr;
    /* What the answer needs of the request, which goes back to the pool
     * in this one critical section. */
    fl_future_t *f = NULL;
    fl__decode_fn decode = NULL;
    const void *decode_arg = NULL;
    if (p != NULL &&
        !(fr->h.kind == FL__K_CONNECTED && p->kind != FL__REQ_CONNECT) &&
        !(fr->h.kind == FL__K_REPLY && p->kind != FL__REQ_INVOKE)) {
        f = pending_answered_locked(c, p, &decode, &decode_arg);
    } else if (p != NULL) {
        issued = false; /* the wrong kind of answer */
    }
    pthread_mutex_unlock(&c->mu);
    if (f != NULL) {
        answer_settle(fr, f, decode, decode_arg);
        return;
    }
    if (issued) {
        /* A request of ours that timed out: its answer is late. */
        FL_LOG(FL_LOG_DEBUG, "remote: %s: late answer to request %llu dropped",
               c->name, (unsigned long long)corr);
        return;
    }
    if (fr->h.kind == FL__K_ERROR && corr == 0) {
        /* About the connection itself; the peer closes next. */
        c->peer_err = fr->m.code >= 1 && fr->m.code <= INT_MAX ? (int)fr->m.code
                                                               : FL_EPROTO;
        snprintf(c->peer_msg, sizeof c->peer_msg, "%.*s",
                 (int)fr->m.message.len, fr->m.message.p);
        FL_LOG(FL_LOG_WARN, "remote: %s refused the connection: %s (%s)",
               c->name, c->peer_msg, fl_err_name(c->peer_err));
        return;
    }
    char why[96];
    snprintf(why, sizeof why, "an answer (kind %u) to no request: corr %llu",
             fr->h.kind, (unsigned long long)corr);
    proto_error(c, FL_EPROTO, why);
}

static void dispatch(fl__conn_t *c, const fl__rx_frame_t *fr)
{
    fl__net_t *n = c->net;
    switch (fr->h.kind) {
    case FL__K_HELLO:
        atomic_store(&c->peer_max, fr->m.max_frame);
        pthread_mutex_lock(&c->mu);
        c->backoff_ms = 0;
        c->retry_at_ms = 0;
        pthread_mutex_unlock(&c->mu);
        break;
    case FL__K_CONNECT:
        if (n->hooks.on_connect != NULL)
            n->hooks.on_connect(n->hooks.arg, c, fr->h.corr, &fr->m);
        else
            fl__conn_answer_error(c, fr->h.corr, FL_ECONNECT,
                                  "this service serves no endpoints");
        break;
    case FL__K_INVOKE:
        if (n->hooks.on_invoke != NULL)
            n->hooks.on_invoke(n->hooks.arg, c, &fr->h, &fr->m, fr->body);
        else if (!(fr->h.flags & FL__F_TELL))
            fl__conn_answer_error(c, fr->h.corr, FL_EUNREACHABLE,
                                  "recipient unreachable: this service serves "
                                  "no endpoints");
        break;
    case FL__K_CONNECTED:
    case FL__K_REPLY:
    case FL__K_ERROR:
        complete_answer(c, fr);
        break;
    case FL__K_PING: {
        fl__obuf_t *b =
            fl__obuf_frame(FL__K_PONG, 0, fr->h.corr, NULL, 0, NULL);
        if (b != NULL)
            fl__conn_send(c, b);
        break;
    }
    case FL__K_PONG:
        break;
    case FL__K_BYE:
        FL_LOG(FL_LOG_DEBUG, "remote: %s said BYE", c->name);
        break;
    default:
        break; /* the header decoder refused other kinds */
    }
}

bool fl__net_on_io_thread(void)
{
    return tls_net != NULL;
}

/* Write the connections that frames were queued on while handling a
 * read (I/O thread). */
static void flush_dirty(fl__net_t *n)
{
    while (n->dirty != NULL) {
        fl__conn_t *d = n->dirty;
        n->dirty = d->dnext;
        d->dirty = false;
        conn_process(d);
        fl__conn_release(d);
    }
}

/* What the frames dispatched so far made ready runs (the hook), and what
 * that queued is written (I/O thread, in a read). */
static void run_frames(fl__net_t *n)
{
    /* Still in the read: what the hook queues waits for the flush. */
    if (n->hooks.on_frames != NULL)
        n->hooks.on_frames(n->hooks.arg);
    n->in_read = false;
    flush_dirty(n);
}

/* The end of c's stream, or an error reading it (a libuv code): close. */
static void read_failed(fl__conn_t *c, ssize_t err)
{
    conn_close(c, 0,
               err == UV_EOF       ? "the peer closed the connection"
               : err == UV_ENOBUFS ? "out of memory for the read buffer"
                                   : uv_strerror((int)err));
}

/* Handle the frames in c's read buffer, keep what is left of the last
 * (I/O thread, holding the read side). */
static void rx_run(fl__conn_t *c)
{
    c->rx_left = false;
    size_t off = 0;
    fl__net_t *n = c->net;
    uint64_t frames = 0;
    answers_t ans;
    ans.n = 0;
    ans.locked = false;
    n->in_read = true;
    for (;;) {
        fl__rx_frame_t fr;
        size_t need = 0;
        char why[256];
        int rc = fl__rx_next(&c->rx, c->rbuf + off, c->rlen - off, &fr, &need,
                             why, sizeof why);
        if (rc == FL_EPENDING) {
            c->rneed = need;
            break;
        }
        if (rc != FL_OK) {
            answers_settle(c, &ans);
            proto_error(c, rc, why);
            break;
        }
        frames++;
        if (fr.h.kind != FL__K_REPLY || !answer_take(c, &ans, &fr)) {
            answers_settle(c, &ans);
            dispatch(c, &fr);
        }
        off += fr.size;
        if (c->state == C_OPEN && frames % FL__NET_RUN_FRAMES == 0) {
            answers_settle(c, &ans);
            run_frames(n);
            n->in_read = true;
        }
        if (c->state != C_OPEN)
            break; /* closed by what it read, or what that ran */
    }
    answers_settle(c, &ans);
    atomic_fetch_add_explicit(&n->st_in, frames, memory_order_relaxed);
    run_frames(n);
    if (c->state != C_OPEN)
        return;
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (c->rcap > SHRINK_ABOVE && c->rlen < READ_CHUNK &&
        c->rneed < READ_CHUNK) {
        uint8_t *nb = fl__realloc(c->rbuf, READ_CHUNK);
        if (nb != NULL) {
            c->rbuf = nb;
            c->rcap = READ_CHUNK;
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fl__conn_t *c = s->data;
    (void)buf;
    rx_hold(c); /* libuv reports some hang-ups without on_alloc */
    if (nread < 0) {
        read_failed(c, nread);
    } else if (nread > 0 || c->rx_left) {
        c->rlen += (size_t)nread;
        rx_run(c);
    }
    rx_let_go(c);
}

/* Handle what a thread waiting for its answer read and left (I/O thread,
 * kicked by it): the frames after its answer, or the stream's end. */
static void rx_take_left(fl__conn_t *c)
{
    if (!c->tcp_open)
        return;
    rx_hold(c);
    if (c->rx_err != 0)
        read_failed(c, c->rx_err);
    else if (c->rx_left)
        rx_run(c);
    rx_let_go(c);
}

/* The socket is connected (either side): read, say HELLO first. */
static int conn_opened(fl__conn_t *c)
{
    uv_tcp_nodelay(&c->tcp, 1);
    fl__obuf_t *hello = hello_frame(c->net);
    if (hello == NULL)
        return UV_ENOMEM;
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)&c->tcp, &fd);
    rx_hold(c);
    c->rx_fd = fd;
    rx_let_go(c);
    pthread_mutex_lock(&c->mu);
    c->state = C_OPEN;
    c->fd = fd;
    enqueue_front_locked(c, hello);
    pthread_mutex_unlock(&c->mu);
    c->deadline_ms = now_ms() + FL__NET_CONNECT_TIMEOUT_MS;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc == 0)
        conn_flush(c);
    return rc;
}

/* ---- connecting (outbound) ----------------------------------------------- */

static void on_connected(uv_connect_t *req, int status)
{
    fl__conn_t *c = req->data;
    if (status == UV_ECANCELED)
        return; /* closing */
    if (status < 0) {
        conn_close(c, 0, uv_strerror(status));
        return;
    }
    atomic_fetch_add(&c->net->st_opened, 1);
    int rc = conn_opened(c);
    if (rc < 0)
        conn_close(c, 0, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    fl__conn_t *c = req->data;
    fl__net_t *n = c->net;
    char reason[FL__HOST_MAX + 200];
    if (status < 0 || ai == NULL) {
        if (status == UV_ECANCELED)
            snprintf(reason, sizeof reason, "%s",
                     n->stopping ? "rpc service shut down"
                                 : "connect timed out while resolving");
        else
            snprintf(reason, sizeof reason, "could not resolve host %s: %s",
                     c->host, uv_strerror(status));
        uv_freeaddrinfo(ai);
        /* No socket yet: fail here (conn_close needs a state to leave). */
        pthread_mutex_lock(&c->mu);
        c->state = C_CONNECTING;
        pthread_mutex_unlock(&c->mu);
        conn_close(c, n->stopping ? FL_ECLOSED : 0, reason);
        fl__conn_release(c); /* the resolver's */
        return;
    }
    int rc = uv_tcp_init(&n->loop, &c->tcp);
    if (rc == 0) {
        c->tcp_open = true;
        n->open_handles++;
        pthread_mutex_lock(&c->mu);
        c->state = C_CONNECTING;
        pthread_mutex_unlock(&c->mu);
        rc = uv_tcp_connect(&c->creq, &c->tcp, ai->ai_addr, on_connected);
    } else {
        pthread_mutex_lock(&c->mu);
        c->state = C_CONNECTING;
        pthread_mutex_unlock(&c->mu);
    }
    uv_freeaddrinfo(ai);
    if (rc < 0)
        conn_close(c, 0, uv_strerror(rc));
    fl__conn_release(c); /* the resolver's */
}

static void conn_connect(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    pthread_mutex_lock(&c->mu);
    if (c->state != C_IDLE || c->out_head == NULL) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->state = C_RESOLVING;
    pthread_mutex_unlock(&c->mu);
    c->rx.got_hello = false;
    fl__rx_init(&c->rx, n->max_frame);
    c->peer_err = 0;
    c->peer_msg[0] = '\0';
    c->close_when_flushed = false;
    c->deadline_ms = now_ms() + FL__NET_CONNECT_TIMEOUT_MS;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)c->port);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    fl__conn_retain(c); /* the resolver's */
    int rc =
        uv_getaddrinfo(&n->loop, &c->gai, on_resolved, c->host, port, &hints);
    if (rc < 0) {
        char reason[FL__HOST_MAX + 200];
        snprintf(reason, sizeof reason, "could not resolve host %s: %s",
                 c->host, uv_strerror(rc));
        pthread_mutex_lock(&c->mu);
        c->state = C_CONNECTING;
        pthread_mutex_unlock(&c->mu);
        conn_close(c, 0, reason);
        fl__conn_release(c);
    }
}

/*
 * Queue the answers the I/O thread held back on c (fl__conn_send; under
 * c->mu) as fl__conn_send would have, one by one and with its checks.
 * Returns what is to be freed once the lock is let go: all of them when
 * the connection is gone or the service closed; from the first that would
 * take the queue past its limit on, with the connection marked to be
 * closed and the same log line.
 */
static fl__obuf_t *queue_held_locked(fl__conn_t *c)
{
    fl__obuf_t *h = c->held_head;
    if (h == NULL)
        return NULL;
    c->held_head = c->held_tail = NULL;
    if (c->state != C_OPEN)
        return h; /* the connection is gone: dropped */
    while (h != NULL) {
        char msg[FL__HOST_MAX + 300];
        int rc = refuse_locked(c, h->len - h->off, msg, sizeof msg);
        if (rc != FL_OK) {
            if (rc == FL_ELIMIT) {
                FL_LOG(FL_LOG_WARN, "remote: %s; closing the connection", msg);
                c->overflow = true;
            }
            return h;
        }
        fl__obuf_t *next = h->next;
        enqueue_locked(c, h);
        h = next;
    }
    return NULL;
}

/* What a kick means: queue the answers held back, then connect an idle
 * outbound connection with work, or write what is queued. I/O thread. */
static void conn_process(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    pthread_mutex_lock(&c->mu);
    /* Even when stopping: the answers join the queue the stop flushes. */
    fl__obuf_t *dropped = queue_held_locked(c);
    if (n->stopping) {
        pthread_mutex_unlock(&c->mu);
        obuf_free_list(dropped);
        return;
    }
    int st = c->state;
    bool overflow = c->overflow;
    c->overflow = false;
    uint64_t first = c->dhead != NULL ? c->dhead->deadline_ns : 0;
    pthread_mutex_unlock(&c->mu);
    obuf_free_list(dropped);
    if (first != 0 && (n->dtimer_at == 0 || first < n->dtimer_at))
        deadline_arm(n, first, fl_clock_now_ns());
    if (overflow && st == C_OPEN)
        conn_close(c, 0, "outbound queue full: the peer is not reading");
    else if (st == C_IDLE && c->outbound)
        conn_connect(c);
    else if (st == C_OPEN)
        conn_flush(c);
}

/* ---- accepting ------------------------------------------------------------
 */

static void on_connection(uv_stream_t *server, int status)
{
    fl__net_t *n = server->data;
    if (status < 0) {
        FL_LOG(FL_LOG_WARN, "remote: accept failed: %s", uv_strerror(status));
        return;
    }
    fl__conn_t *c = conn_new(n, false);
    if (c == NULL || uv_tcp_init(&n->loop, &c->tcp) != 0) {
        /* Take the connection off the backlog and drop it. */
        uv_tcp_t *t = fl__malloc(sizeof *t);
        if (t != NULL && uv_tcp_init(&n->loop, t) == 0) {
            uv_accept(server, (uv_stream_t *)t);
            uv_close((uv_handle_t *)t, (uv_close_cb)fl__free);
        } else {
            fl__free(t);
        }
        if (c != NULL)
            fl__conn_release(c);
        FL_LOG(FL_LOG_ERROR, "remote: out of memory accepting a connection");
        return;
    }
    c->tcp_open = true;
    n->open_handles++;
    c->state = C_OPEN;
    c->next = n->accepted;
    if (n->accepted)
        n->accepted->prev = c;
    n->accepted = c;
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(c->name, sizeof c->name, "unknown peer");
    if (rc == 0 &&
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[64] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            port = ntohs(a->sin6_port);
            snprintf(c->name, sizeof c->name, "[%s]:%d", ip, port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            port = ntohs(a->sin_port);
            snprintf(c->name, sizeof c->name, "%s:%d", ip, port);
        }
    }
    atomic_fetch_add(&n->st_accepted, 1);
    if (rc == 0)
        rc = conn_opened(c);
    if (rc < 0)
        conn_close(c, 0, uv_strerror(rc));
}

/* ---- the loop -------------------------------------------------------------
 */

/* fn(c, arg) for every connection, outbound and accepted (I/O thread).
 * fn may close c: closing completes later, so the lists stay valid. */
static void for_each_conn(fl__net_t *n, void (*fn)(fl__conn_t *, void *),
                          void *arg)
{
    pthread_mutex_lock(&n->mu);
    size_t count = HASH_COUNT(n->peers), i = 0;
    fl__conn_t **snap = fl__calloc(count + 1, sizeof *snap);
    fl__conn_t *c, *tmp;
    HASH_ITER(hh, n->peers, c, tmp)
    {
        if (snap != NULL) {
            fl__conn_retain(c);
            snap[i++] = c;
        }
    }
    pthread_mutex_unlock(&n->mu);
    for (size_t k = 0; k < i; k++) {
        fn(snap[k], arg);
        fl__conn_release(snap[k]);
    }
    fl__free(snap);
    for (c = n->accepted; c != NULL; c = tmp) {
        tmp = c->next;
        fn(c, arg);
    }
}

static int conn_state(fl__conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    int st = c->state;
    pthread_mutex_unlock(&c->mu);
    return st;
}

/* Stopping: say BYE behind what is queued and close once it is written
 * (bye), or close at once. */
static void stop_conn(fl__conn_t *c, void *arg)
{
    bool bye = *(const bool *)arg;
    int st = conn_state(c);
    if (st == C_RESOLVING) {
        uv_cancel((uv_req_t *)&c->gai);
        return;
    }
    if (bye && st == C_OPEN && c->rx.got_hello) {
        fl__obuf_t *b = fl__obuf_frame(FL__K_BYE, 0, 0, NULL, 0, NULL);
        if (b != NULL) {
            pthread_mutex_lock(&c->mu);
            enqueue_locked(c, b);
            pthread_mutex_unlock(&c->mu);
            c->close_when_flushed = true;
            conn_flush(c);
            return;
        }
    }
    conn_close(c, FL_ECLOSED, "rpc service shut down");
}

static void close_all(fl__net_t *n, bool say_bye)
{
    for_each_conn(n, stop_conn, &say_bye);
}

/* A connection whose peer's HELLO is overdue fails. */
static void check_deadline(fl__conn_t *c, void *arg)
{
    int64_t now = *(const int64_t *)arg;
    if (c->rx.got_hello || now < c->deadline_ms)
        return;
    int st = conn_state(c);
    if (st == C_RESOLVING)
        uv_cancel((uv_req_t *)&c->gai);
    else if (st == C_CONNECTING || (st == C_OPEN && c->outbound))
        conn_close(c, 0, "connect timed out (no handshake within 10 s)");
    else if (st == C_OPEN)
        proto_error(c, FL_EHANDSHAKE, "no HELLO within 10 s");
}

static void finish_stop(fl__net_t *n)
{
    pthread_mutex_lock(&n->kmu);
    if (n->loop_gone) {
        pthread_mutex_unlock(&n->kmu);
        return;
    }
    n->loop_gone = true;
    pthread_mutex_unlock(&n->kmu);
    if (n->listening)
        uv_close((uv_handle_t *)&n->listener, NULL);
    uv_close((uv_handle_t *)&n->tick, NULL);
    uv_close((uv_handle_t *)&n->dtimer, NULL);
    uv_close((uv_handle_t *)&n->async, NULL);
}

static void on_async(uv_async_t *a)
{
    fl__net_t *n = a->data;
    pthread_mutex_lock(&n->kmu);
    fl__conn_t *list = n->kick_head;
    n->kick_head = NULL;
    bool stop = n->stop_asked && !n->stopping;
    pthread_mutex_unlock(&n->kmu);
    while (list != NULL) {
        /* Read the link before clearing `kicked`: from then on a new kick
         * may put c on the next list and overwrite it. */
        pthread_mutex_lock(&n->kmu);
        fl__conn_t *c = list;
        list = c->knext;
        c->kicked = false;
        pthread_mutex_unlock(&n->kmu);
        rx_take_left(c);
        conn_process(c);
        fl__conn_release(c);
    }
    if (stop) {
        n->stopping = true;
        n->stop_deadline_ms = now_ms() + STOP_FLUSH_MS;
        if (n->listening && !uv_is_closing((uv_handle_t *)&n->listener)) {
            uv_close((uv_handle_t *)&n->listener, NULL);
            n->listening = false;
        }
        close_all(n, true);
        if (n->open_handles == 0)
            finish_stop(n);
    }
}

/* ---- request deadlines ----------------------------------------------------
 *
 * A request's timeout is kept on its connection (a list by deadline, under
 * its lock) rather than as a system timer: the I/O thread fails the
 * requests whose deadline passed, checking every connection on each tick
 * and arming one timer for the nearest deadline closer than
 * DEADLINE_NEAR_MS. A request that makes such a near deadline the first
 * of its connection kicks the I/O thread to arm it.
 */

static void on_deadline(uv_timer_t *t);

/* The timer fires at `at` (ns) unless it is already armed to fire
 * sooner; deadlines beyond DEADLINE_NEAR_MS are left to the tick. I/O
 * thread. */
static void deadline_arm(fl__net_t *n, uint64_t at, uint64_t now)
{
    if (at == 0 || at > now + DEADLINE_NEAR_MS * 1000000ull || n->stopping)
        return;
    if (n->dtimer_at != 0 && n->dtimer_at <= at)
        return;
    n->dtimer_at = at;
    /* Rounded up: the loop's clock may lag; firing early only re-arms. */
    uint64_t ms = at > now ? (at - now + 999999u) / 1000000u : 0;
    uv_timer_start(&n->dtimer, on_deadline, ms, 0);
}

/* Fails c's requests whose deadline is not after now with FL_ETIMEDOUT
 * (their late answers are dropped) and arms the timer for the next one.
 * I/O thread. */
static void conn_expire(fl__conn_t *c, uint64_t now)
{
    pending_t *due = NULL;
    pthread_mutex_lock(&c->mu);
    while (c->dhead != NULL && c->dhead->deadline_ns <= now) {
        pending_t *p = c->dhead;
        pending_unlink_locked(c, p);
        p->next_free = due;
        due = p;
    }
    uint64_t next = c->dhead != NULL ? c->dhead->deadline_ns : 0;
    pthread_mutex_unlock(&c->mu);
    while (due != NULL) {
        pending_t *p = due;
        due = p->next_free;
        fl_future_fail(p->f, FL_ETIMEDOUT, "timed out after %lld ms",
                       (long long)p->timeout_ms);
        pending_done(c, p);
    }
    deadline_arm(c->net, next, now);
}

static void expire_conn(fl__conn_t *c, void *arg)
{
    conn_expire(c, *(const uint64_t *)arg);
}

static void on_deadline(uv_timer_t *t)
{
    fl__net_t *n = t->data;
    n->dtimer_at = 0;
    uint64_t now = fl_clock_now_ns();
    for_each_conn(n, expire_conn, &now);
}

static void tick_conn(fl__conn_t *c, void *arg)
{
    uint64_t now = *(const uint64_t *)arg;
    int64_t ms = (int64_t)(now / 1000000u);
    check_deadline(c, &ms);
    conn_expire(c, now);
}

static void on_tick(uv_timer_t *t)
{
    fl__net_t *n = t->data;
    uint64_t now_ns = fl_clock_now_ns();
    if (n->stopping) {
        if ((int64_t)(now_ns / 1000000u) >= n->stop_deadline_ms)
            close_all(n, false);
        return;
    }
    for_each_conn(n, tick_conn, &now_ns);
}

static void *net_main(void *p)
{
    fl__net_t *n = p;
    tls_net = n;
    fl__tls_no_block = true; /* a blocking wait here stalls every peer */
    /* libuv writes with writev, which raises SIGPIPE when the peer has
     * reset the connection; that default action would end the process.
     * Blocked on this thread the write fails with EPIPE instead, and the
     * connection closes (the process's own disposition is left alone). */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    tls_net = NULL;
    return NULL;
}

/* ---- binding --------------------------------------------------------------
 */

/* Close a failed listener and let libuv finish with it. */
static void drop_listener(fl__net_t *n)
{
    uv_close((uv_handle_t *)&n->listener, NULL);
    uv_run(&n->loop, UV_RUN_NOWAIT);
}

static int bind_range(fl__net_t *n, const char *host, const char *spec,
                      char *why, size_t why_len)
{
    fl__port_range_t r;
    char reason[200];
    if (fl__port_range_parse(spec, &r, reason, sizeof reason) != FL_OK) {
        fl__say(why, why_len, "%s", reason);
        return FL_EINVAL;
    }
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    uv_getaddrinfo_t req;
    const char *h = strcmp(host, "[::]") == 0 ? "::" : host;
    int rc = uv_getaddrinfo(&n->loop, &req, NULL, h, NULL, &hints);
    if (rc < 0) {
        fl__say(why, why_len, "could not resolve bind host %s: %s", host,
                uv_strerror(rc));
        return FL_ECONNECT;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    uint32_t count = fl__port_range_count(&r);
    for (uint32_t i = 0; i < count; i++) {
        uint16_t port = fl__port_range_at(&r, i);
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        else
            ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        if (uv_tcp_init(&n->loop, &n->listener) != 0) {
            fl__say(why, why_len, "could not create a socket");
            return FL_ESYSTEM;
        }
        n->listener.data = n;
        rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&n->listener, 511, on_connection);
        if (rc == 0) {
            int len = sizeof ss;
            uv_tcp_getsockname(&n->listener, (struct sockaddr *)&ss, &len);
            n->port = ntohs(ss.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                : ((struct sockaddr_in *)&ss)->sin_port);
            n->listening = true;
            return FL_OK;
        }
        drop_listener(n);
        if (rc != UV_EADDRINUSE) {
            fl__say(why, why_len, "could not bind %s:%u: %s", host, port,
                    uv_strerror(rc));
            return rc == UV_EADDRNOTAVAIL || rc == UV_EACCES ? FL_ECONNECT
                                                             : FL_ESYSTEM;
        }
    }
    fl__say(why, why_len,
            "could not bind %s to any port of the range %s: every port is in "
            "use",
            host, spec);
    return FL_EADDRINUSE;
}

int fl__net_start(const fl__net_opts_t *o, fl__net_t **out, char *why,
                  size_t why_len)
{
    *out = NULL;
    /* The RPC layer validated the options (fl__rpc_remote_init). */
    fl__net_t *n = fl__calloc(1, sizeof *n);
    if (n == NULL)
        return FL_ENOMEM;
    n->max_frame = o->max_frame ? o->max_frame : FL__FRAME_DEFAULT_MAX;
    n->max_queued = o->max_queued ? o->max_queued : FL__NET_DEFAULT_QUEUED;
    n->name = fl__strdup(o->name ? o->name : "fling");
    n->hooks = o->hooks;
    n->port = -1;
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->kmu, NULL);
    int rc = n->name ? FL_OK : FL_ENOMEM;
    if (rc == FL_OK && uv_loop_init(&n->loop) != 0) {
        fl__say(why, why_len, "could not create the event loop");
        rc = FL_ESYSTEM;
    }
    bool loop_ok = rc == FL_OK;
    if (rc == FL_OK && o->bind_host != NULL)
        rc = bind_range(n, o->bind_host, o->port ? o->port : "0", why, why_len);
    if (rc == FL_OK) {
        uv_async_init(&n->loop, &n->async, on_async);
        n->async.data = n;
        uv_timer_init(&n->loop, &n->tick);
        n->tick.data = n;
        uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);
        uv_unref((uv_handle_t *)&n->tick);
        uv_timer_init(&n->loop, &n->dtimer);
        n->dtimer.data = n;
        uv_unref((uv_handle_t *)&n->dtimer);
        if (pthread_create(&n->thread, NULL, net_main, n) != 0) {
            fl__say(why, why_len, "could not start the I/O thread");
            uv_close((uv_handle_t *)&n->async, NULL);
            uv_close((uv_handle_t *)&n->tick, NULL);
            uv_close((uv_handle_t *)&n->dtimer, NULL);
            if (n->listening)
                uv_close((uv_handle_t *)&n->listener, NULL);
            rc = FL_ESYSTEM;
        } else {
            n->thread_started = true;
        }
    }
    if (rc != FL_OK) {
        if (loop_ok) {
            uv_run(&n->loop, UV_RUN_DEFAULT);
            uv_loop_close(&n->loop);
        }
        pthread_mutex_destroy(&n->mu);
        pthread_mutex_destroy(&n->kmu);
        fl__free(n->name);
        fl__free(n);
        return rc;
    }
    *out = n;
    return FL_OK;
}

int fl__net_port(const fl__net_t *n)
{
    return n ? n->port : -1;
}

uint32_t fl__net_max_frame(const fl__net_t *n)
{
    return n->max_frame;
}

void fl__net_shutdown(fl__net_t *n)
{
    if (n == NULL || !n->thread_started)
        return;
    if (tls_net == n) {
        FL_LOG(FL_LOG_ERROR, "remote: the transport cannot be stopped from "
                             "its own I/O thread (a closure that shuts its "
                             "service down?): left running");
        return;
    }
    atomic_store(&n->closed, true);
    pthread_mutex_lock(&n->kmu);
    bool first = !n->stop_asked;
    n->stop_asked = true;
    if (first && !n->loop_gone)
        uv_async_send(&n->async);
    pthread_mutex_unlock(&n->kmu);
    if (!first)
        return;
    pthread_join(n->thread, NULL);
    n->thread_started = false;
    uv_loop_close(&n->loop);
}

void fl__net_free(fl__net_t *n)
{
    if (n == NULL)
        return;
    if (tls_net == n) {
        FL_LOG(FL_LOG_ERROR, "remote: the transport cannot be freed from its "
                             "own I/O thread: leaked");
        return;
    }
    fl__net_shutdown(n);
    fl__conn_t *c, *tmp;
    HASH_ITER(hh, n->peers, c, tmp)
    {
        HASH_DEL(n->peers, c);
        pthread_mutex_lock(&c->mu);
        c->state = C_DEAD;
        pthread_mutex_unlock(&c->mu);
        fl__conn_release(c);
    }
    /* Kicks queued after the loop ended hold references too. */
    while (n->kick_head != NULL) {
        c = n->kick_head;
        n->kick_head = c->knext;
        fl__conn_release(c);
    }
    pthread_mutex_destroy(&n->mu);
    pthread_mutex_destroy(&n->kmu);
    fl__free(n->name);
    fl__free(n);
}

void fl__net_stats(fl__net_t *n, fl__net_stats_t *out)
{
    out->conns_accepted = atomic_load(&n->st_accepted);
    out->conns_opened = atomic_load(&n->st_opened);
    out->conns_failed = atomic_load(&n->st_failed);
    out->frames_in = atomic_load(&n->st_in);
    out->frames_out = atomic_load(&n->st_out);
    out->writes = atomic_load(&n->st_writes);
    out->proto_errors = atomic_load(&n->st_proto);
    out->caller_reads = atomic_load(&n->st_caller_reads);
    out->caller_answers = atomic_load(&n->st_caller_answers);
}

/* ---- the public side of connections ---------------------------------------
 */

int fl__net_peer(fl__net_t *n, const char *host, uint16_t port,
                 fl__conn_t **out)
{
    *out = NULL;
    if (atomic_load(&n->closed))
        return FL_ECLOSED;
    char name[FL__HOST_MAX + 16];
    if (strchr(host, ':') != NULL)
        snprintf(name, sizeof name, "[%s]:%u", host, (unsigned)port);
    else
        snprintf(name, sizeof name, "%s:%u", host, (unsigned)port);
    pthread_mutex_lock(&n->mu);
    fl__conn_t *c = NULL;
    HASH_FIND_STR(n->peers, name, c);
    if (c == NULL) {
        c = conn_new(n, true);
        if (c == NULL) {
            pthread_mutex_unlock(&n->mu);
            return FL_ENOMEM;
        }
        snprintf(c->name, sizeof c->name, "%s", name);
        snprintf(c->host, sizeof c->host, "%s", host);
        c->port = port;
        c->state = C_IDLE;
        HASH_ADD_STR(n->peers, name, c);
    }
    fl__conn_retain(c);
    pthread_mutex_unlock(&n->mu);
    *out = c;
    return FL_OK;
}

/*
 * The deadline of a request with this timeout. A far one (the tick checks
 * it, TICK_MS apart) comes from the coarse clock, the time of the last
 * kernel tick: a quarter of the precise clock's cost, on every call. It is
 * behind by less than a tick (at most 10 ms with HZ >= 100), which the
 * deadline adds, so the request never times out early.
 */
static uint64_t deadline_of(int64_t timeout_ms)
{
    uint64_t ms = (uint64_t)timeout_ms * 1000000u;
    if (timeout_ms <= DEADLINE_NEAR_MS)
        return fl_clock_now_ns() + ms;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec +
           COARSE_SLACK_NS + ms;
}

/* True while an outbound connection waits out its backoff (under c->mu). */
static bool backing_off_locked(const fl__conn_t *c)
{
    return (c->state == C_IDLE || c->state == C_CLOSING) &&
           c->retry_at_ms != 0 && now_ms() < c->retry_at_ms;
}

bool fl__conn_closed(const fl__conn_t *c)
{
    return atomic_load(&c->net->closed);
}

/* Refuse b for a reason: FL_ECLOSED etc. Under c->mu; returns the code. */
static int refuse_locked(fl__conn_t *c, size_t len, char *msg, size_t cap)
{
    if (atomic_load(&c->net->closed) || c->state == C_DEAD) {
        snprintf(msg, cap, "rpc service shut down");
        return FL_ECLOSED;
    }
    if (c->queued + len > c->net->max_queued) {
        snprintf(msg, cap,
                 "outbound queue to %s is full: %zu bytes queued, a frame of "
                 "%zu bytes would exceed the limit of %zu bytes",
                 c->name, c->queued, len, c->net->max_queued);
        return FL_ELIMIT;
    }
    return FL_OK;
}

/*
 * A frame was queued on c (under c->mu, which this releases): see that it
 * goes out. On the I/O thread it goes with the others once the read or
 * callback at hand is handled; a worker in a turn holds it back to a
 * message boundary, so that a turn's frames go out together; any other
 * thread writes it at once when `lone` (nothing else of the kind is in
 * flight) and the I/O thread is not writing, else the I/O thread is
 * kicked to coalesce.
 */
static void conn_queued_locked(fl__conn_t *c, bool lone, bool must_kick)
{
    if (tls_net == c->net) {
        pthread_mutex_unlock(&c->mu);
        conn_kick(c);
        return;
    }
    if (defer_write(c)) {
        pthread_mutex_unlock(&c->mu);
        if (must_kick)
            conn_kick(c);
        return;
    }
    bool kick = true;
    if (lone)
        kick = !write_queue_locked(c) && !c->writing;
    pthread_mutex_unlock(&c->mu);
    if (kick || must_kick)
        conn_kick(c);
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
    pthread_mutex_lock(&c->mu);
    pending_t *p = pending_get_locked(c);
    if (p == NULL) {
        pthread_mutex_unlock(&c->mu);
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
    p->deadline_ns = 0;
    p->timeout_ms = 0;
    p->dprev = p->dnext = NULL;
    p->next_free = NULL;
    int rc = refuse_locked(c, fb->len, msg, sizeof msg);
    if (rc == FL_OK && c->outbound && backing_off_locked(c)) {
        char after[48], reason[sizeof c->last_err];
        snprintf(after, sizeof after, " (next attempt in %lld ms)",
                 (long long)(c->retry_at_ms - now_ms()));
        snprintf(reason, sizeof reason, "%s", c->last_err);
        pending_put_locked(c, p);
        pthread_mutex_unlock(&c->mu);
        fl__obuf_free(fb);
        fail_request(f, c, (uint8_t)kind, what, true, 0, reason, after);
        return kind == FL__REQ_CONNECT ? FL_ECONNECT : FL_EUNREACHABLE;
    }
    if (rc != FL_OK) {
        pending_put_locked(c, p);
        pthread_mutex_unlock(&c->mu);
        fl__obuf_free(fb);
        fl_future_fail(f, rc, "%s", msg);
        return rc;
    }
    p->corr = ++c->next_corr;
    p->f = fl_future_retain(f);
    p->kind = (uint8_t)kind;
    p->decode = decode;
    p->decode_arg = decode_arg;
    bool near = false;
    if (timeout_ms != FL_INFINITE) {
        p->timeout_ms = timeout_ms;
        p->deadline_ns = deadline_of(timeout_ms);
        deadline_add_locked(c, p);
        /* A deadline the tick could miss needs the I/O thread's timer. */
        near = timeout_ms <= DEADLINE_NEAR_MS && c->dhead == p;
    }
    put64(fb->data + 8, p->corr);
    HASH_ADD(hh, c->pending, corr, sizeof p->corr, p);
    enqueue_locked(c, fb);
    conn_queued_locked(c, HASH_COUNT(c->pending) == 1, near);
    return FL_OK;
}

int fl__conn_send(fl__conn_t *c, fl__obuf_t *fb)
{
    char msg[FL__HOST_MAX + 300];
    if (!c->outbound && tls_net == c->net && c->net->in_read && c->tcp_open) {
        /* An answer the I/O thread made while handling a read (the turns
         * it ran): held back without the lock until the read's frames are
         * written, then queued with the others (queue_held_locked). */
        obuf_append(&c->held_head, &c->held_tail, fb);
        conn_kick(c);
        return FL_OK;
    }
    pthread_mutex_lock(&c->mu);
    int rc = refuse_locked(c, fb->len, msg, sizeof msg);
    if (rc == FL_OK && !c->outbound && c->state != C_OPEN)
        rc = FL_ECLOSED; /* an answer for a connection that is gone */
    if (rc == FL_OK && c->outbound && backing_off_locked(c))
        rc = FL_EUNREACHABLE; /* a tell while backing off: dropped */
    if (rc == FL_OK) {
        enqueue_locked(c, fb);
        conn_queued_locked(c, true, false);
        return FL_OK;
    }
    pthread_mutex_unlock(&c->mu);
    fl__obuf_free(fb);
    if (rc == FL_ELIMIT && !c->outbound) {
        /* Our answers pile up: the peer does not read. The I/O thread
         * closes the connection (conn_process). */
        FL_LOG(FL_LOG_WARN, "remote: %s; closing the connection", msg);
        pthread_mutex_lock(&c->mu);
        c->overflow = true;
        pthread_mutex_unlock(&c->mu);
        conn_kick(c);
    }
    return rc;
}

int fl__conn_answer_error(fl__conn_t *c, uint64_t corr, int code,
                          const char *msg)
{
    fl__obuf_t *b = error_frame(corr, code, msg);
    return b ? fl__conn_send(c, b) : FL_ENOMEM;
}

int fl__conn_answer_connected(fl__conn_t *c, uint64_t corr, uint32_t index)
{
    fl__frame_meta_t m = {.service_index = index};
    fl__obuf_t *b = fl__obuf_frame(FL__K_CONNECTED, 0, corr, &m, 0, NULL);
    return b ? fl__conn_send(c, b) : FL_ENOMEM;
}

/* ---- a waiting caller reads its answer ----------------------------------- */

_Atomic uint64_t fl__net_await_spin_ns = 30000u;

/* The first frame of c's read buffer if it answers f, the call of the
 * thread that read it: taken off the table and settled here, and dropped
 * from the buffer. Holding the read side. */
static void await_take(fl__conn_t *c, fl_future_t *f)
{
    fl__rx_frame_t fr;
    size_t need = 0;
    char why[256];
    /* A broken or partial frame is the I/O thread's to deal with. */
    if (fl__rx_next(&c->rx, c->rbuf, c->rlen, &fr, &need, why, sizeof why) !=
            FL_OK ||
        (fr.h.kind != FL__K_REPLY && fr.h.kind != FL__K_ERROR))
        return;
    pthread_mutex_lock(&c->mu);
    pending_t *p = pending_find_locked(c, fr.h.corr);
    if (p == NULL || p->f != f || p->kind != FL__REQ_INVOKE) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    fl__decode_fn decode;
    const void *decode_arg;
    fl_future_t *pf = pending_answered_locked(c, p, &decode, &decode_arg);
    pthread_mutex_unlock(&c->mu);
    answer_settle(&fr, pf, decode, decode_arg);
    atomic_fetch_add_explicit(&c->net->st_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->net->st_caller_answers, 1,
                              memory_order_relaxed);
    c->rlen -= fr.size;
    if (c->rlen > 0)
        memmove(c->rbuf, c->rbuf + fr.size, c->rlen);
}

/* One attempt by the thread waiting for f to read f's answer from c's
 * socket itself. True when f is done. */
static bool await_read(fl__conn_t *c, fl_future_t *f)
{
    if (!fl__spin_trylock(&c->rx_lk))
        return false; /* the I/O thread reads */
    /* Only from the start of the stream, with nothing buffered: frames
     * are handled in order. Not before the peer's HELLO, which is the I/O
     * thread's. */
    if (c->rx_fd < 0 || c->rlen != 0 || c->rx_left || c->rx_err != 0 ||
        c->rbuf == NULL || !c->rx.got_hello) {
        fl__spin_unlock(&c->rx_lk);
        return false;
    }
    ssize_t r = recv(c->rx_fd, c->rbuf, c->rcap, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        fl__spin_unlock(&c->rx_lk);
        return false;
    }
    atomic_fetch_add_explicit(&c->net->st_caller_reads, 1,
                              memory_order_relaxed);
    if (r <= 0) {
        c->rx_err = r == 0 ? UV_EOF : uv_translate_sys_error(errno);
    } else {
        c->rlen = (size_t)r;
        await_take(c, f);
        c->rx_left = c->rlen > 0;
    }
    bool kick = c->rx_left || c->rx_err != 0;
    fl__spin_unlock(&c->rx_lk);
    if (kick)
        conn_kick(c); /* the rest is the I/O thread's */
    return fl_future_done(f);
}

int fl__conn_await(fl__conn_t *c, fl_future_t *f)
{
    uint64_t until =
        fl_clock_now_ns() +
        atomic_load_explicit(&fl__net_await_spin_ns, memory_order_relaxed);
    do {
        if (fl_future_done(f) || await_read(c, f))
            return fl_future_error(f);
        sched_yield();
    } while (fl_clock_now_ns() < until);
    return fl_future_wait(f, FL_INFINITE);
}
