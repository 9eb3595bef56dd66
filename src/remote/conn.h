/*
 * src/remote/conn.h - what the files of the TCP transport share, private
 * to src/remote/ (only its .c files include it; the layer above uses
 * net.h): the net and connection structs with who owns each field, the
 * pending-request record, the lock helpers and owner assertions, and the
 * functions the files call across.
 *
 * The files, one concern each:
 *   io.c         the loop, its thread, kicks, the tick, stopping
 *   listen.c     binding the listener, accepting connections
 *   dial.c       the peers table, connecting outbound, the backoff
 *   conn.c       references, opening, closing, failing what is pending
 *   conn_write.c frames out: obuf, queueing, the write path
 *   fragment.c   cutting large frames into FRAGMENTs, putting them back
 *   conn_read.c  reading and dispatching frames, settling answers
 *   pending.c    requests, their table and their deadlines
 *   handshake.c  the handshake's deadline, the cap on connections in it
 *   asks.c       the ids of the peer's asks in flight (no duplicate runs)
 *   wake.c       when the I/O thread next looks at a connection (deadlines)
 *   await.c      a caller reading its own answer
 *   inbound.c    the budget of calls received and not yet finished
 *   owed.c       answers owed to the peer that could not be built
 *
 * A connection's memory lives until its last reference: the net's table
 * (until it closes), gateways, kicks in flight and server-side calls in
 * flight all hold one, so a late answer finds a closed connection and is
 * dropped rather than a freed one.
 */
#ifndef FL_REMOTE_CONN_H
#define FL_REMOTE_CONN_H

#include "remote/net.h"

#include "common/heap.h"
#include "common/internal.h"
#include "remote/address.h"
#include "remote/fragment.h"
#include "remote/rx.h"
#include "remote/tls.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/*
 * The connections' request tables are keyed by correlation ids, which are
 * handed out in sequence: their low bits already spread them over the
 * buckets (uthash takes hashv modulo a power of two) and two ids compare
 * as integers. Other keys (the peers table's names) keep uthash's hash.
 * Defined here, before uthash.h, so that every file of remote/ hashes the
 * tables alike.
 */
static inline uint64_t fl__key64(const void *k)
{
    uint64_t v;
    memcpy(&v, k, sizeof v);
    return v;
}

static inline int fl__key_cmp(const void *a, const void *b, size_t n)
{
    if (n == sizeof(uint64_t))
        return fl__key64(a) != fl__key64(b);
    return memcmp(a, b, n);
}

#define HASH_FUNCTION(keyptr, keylen, hashv)                                   \
    do {                                                                       \
        if ((keylen) == sizeof(uint64_t))                                      \
            (hashv) = (unsigned)fl__key64(keyptr);                             \
        else                                                                   \
            HASH_JEN(keyptr, keylen, hashv);                                   \
    } while (0)
#define HASH_KEYCMP(a, b, n) fl__key_cmp(a, b, n)

#include <uthash.h>
#include <uv.h>

/* A connection's TLS side (tls_io.c). */
typedef struct fl__tls_io fl__tls_io_t;

/* A connection's wait for a mailbox to drain (actor/flow.h). */
struct fl__drain_wait;

/* Endpoint buckets of a connection's big lane (conn_write.c). */
#define FL__BIG_BUCKETS 16

/* A connection's state (c->state). */
enum {
    C_IDLE = 0,   /* outbound, no socket: the next request connects */
    C_RESOLVING,  /* outbound: uv_getaddrinfo in flight */
    C_CONNECTING, /* outbound: uv_tcp_connect in flight */
    C_OPEN,       /* socket open, reading (HELLO may still be due) */
    C_CLOSING,    /* uv_close in flight */
    C_DEAD        /* accepted and closed, or the net stopped */
};

/* A request waiting for its answer (pending.c). Under c->mu while on the
 * connection's table; whoever takes it off owns it. */
typedef struct fl__pending {
    uint64_t corr;
    fl_future_t *f;
    uint8_t kind;
    char *what;
    fl__req_call_t call; /* INVOKE: what it is for; zeroes for CONNECT */
    /* Where its frame ends in its lane's stream (c->enq[lane] once it was
     * queued) and its length: it is written once c->done[lane] reaches
     * end (fl__conn_expire says how far it got; no work per write). */
    uint64_t end;
    uint32_t len;
    uint8_t lane; /* FL__LANE_* */
    /* Its deadline (key, ns; seq: corr) on the connection's heap, when it
     * has one (fl__hnode_queued). */
    fl__hnode_t dl;
    int64_t timeout_ms;
    UT_hash_handle hh;
    struct fl__pending *next_free; /* in the connection's pool */
} fl__pending_t;

/* The lanes of a connection's queue (conn_write.c, LARGE FRAMES). */
enum { FL__LANE_SMALL = 0, FL__LANE_BIG = 1 };

/* A string a connection keeps for its life (fl__conn_intern). */
typedef struct fl__interned {
    struct fl__interned *next;
    char s[];
} fl__interned_t;

/* The correlation ids of the asks a connection serves (asks.c): an open
 * addressing set of non-zero u64 under c->mu. */
typedef struct fl__asks {
    uint64_t *slot; /* cap slots; 0: empty */
    size_t cap, len;
} fl__asks_t;

/*
 * Who reads and writes what: the one table. "I/O" is the net's I/O thread
 * (fl__tls_net == c->net, checked by FL__ASSERT_IO); "mu" is c->mu, taken
 * with fl__conn_lock (checked by FL__ASSERT_LOCKED); functions named
 * *_locked run under it. Where a rule has an exception, the note says so.
 *
 * group          fields                         written by     read by
 * -------------  -----------------------------  -------------  ------------
 * fixed          net outbound name host port    its creator,   any thread,
 *                                               before it is   no lock
 *                                               shared
 * peers table    hh                             n->mu (1)      n->mu
 * accepted list  prev next                      I/O            I/O
 * kick list      knext kicked                   n->kmu         n->kmu (1)
 * dirty list     dnext dirty                    I/O            I/O
 * state          state                          I/O, under mu  I/O: no lock;
 *                                               (2)            others: mu
 * queue, table   out_head out_tail queued       any, mu        any, mu (3)
 *                big_head big_tail big_ep
 *                pending dl pool npool
 *                next_corr overflow asks answer_lost
 *                wake_at (6) enq done interned
 *                ninterned
 * fragment out   next_stream frag_hdr           I/O, under mu  I/O (7)
 * write flags    writing fd                     I/O, under mu  any, mu
 * backoff        retry_at_ms backoff_ms         I/O, under mu  any, mu
 *                retry_wait_ms last_err
 * I/O side       tcp tcp_open gai creq wreq     I/O            I/O
 *                deadline_ms hs_prev hs_next
 *                on_hs wflight
 *                wflight_bytes wbufs wcap
 *                close_when_flushed io_rx
 *                io_refs held_head held_tail
 *                peer_err peer_msg wake wnext
 * read side      rx rbuf rcap rlen rneed        rx_lk holder   rx_lk holder
 *                rx_left rx_err rx_fd frag      (4)            (4)
 *                rbig
 * atomics        refs peer_max peer_inc rx_lk   any            any
 *                in_held in_paused in_drained
 *                (5)
 * TLS            tls (8)                        I/O            I/O; others
 *                                                              when fd or
 *                                                              rx_fd >= 0
 * inbound        in_frame in_stopped in_mbox    I/O            I/O
 *                in_sys in_wait (9)
 *
 * (1) fl__net_free empties the peers table and the kick list without
 *     n->mu or kmu once the I/O thread has been joined.
 * (2) Also fl__net_free (C_DEAD, under mu, after the join) and the creator
 *     (before it is shared).
 * (3) The last reference (fl__conn_release_n) frees the queue and the
 *     table without any lock: nobody else can reach them.
 * (4) The read side changes owner under rx_lk (a spin lock): the I/O
 *     thread holds it from on_alloc to the end of on_read (io_rx says so);
 *     a thread in fl__conn_await holds it for one attempt at reading its
 *     answer. While rx_fd < 0 no waiting thread touches the read side
 *     (await_read checks rx_fd first), so the I/O thread resets rx
 *     (fl__conn_connect) and frees rbuf (on_closed) without the lock. The
 *     I/O thread also reads rx.got_hello without it: only it sets the
 *     flag, and a waiting reader requires it set already. frag (the
 *     peer's fragmented frames) is the I/O thread's alone in practice: a
 *     waiting thread leaves every FRAGMENT to it (await.c).
 * (5) in_paused (stopped for the budget, not for a mailbox) is written
 *     by the I/O thread only; in_held by any thread (inbound.c pairs
 *     them). in_drained is set by in_wait's callback
 *     (any thread) and cleared by the I/O thread.
 * (6) Written by the I/O thread only (wake.c), under mu: a request reads
 *     it to know whether the I/O thread must lower it (fl__conn_request).
 * (7) frag_hdr is the header of the fragment in the I/O thread's
 *     uv_write: written when that write is made, read by the kernel
 *     until it completes; nobody else writes meanwhile (`writing`).
 * (8) The pointer is set when the socket opens and cleared once it has
 *     closed, by the I/O thread; fd (under mu) and rx_fd (under rx_lk)
 *     are >= 0 only in between, after the handshake, so a thread that
 *     sees either may use c->tls. Its fields have owners of their own
 *     (tls_io.c): the write side under mu (or the I/O thread while
 *     `writing`), the read side under rx_lk.
 * (9) in_wait is armed and cancelled by the I/O thread; while armed its
 *     fields are flow control's (actor/flow.c, under its lock), and its
 *     callback may run on any thread until fl__drain_wait_cancel.
 */
struct fl__conn {
    _Atomic int refs; /* see fl__conn_retain and fl__conn_release_n */

    /* Fixed once the connection is shared. */
    fl__net_t *net;
    bool outbound;
    char name[FL__HOST_MAX + 16]; /* "host:port" */
    char host[FL__HOST_MAX + 1];
    uint16_t port;

    /* The net's lists, each under its own owner (the table above). */
    UT_hash_handle hh;            /* net->peers, by name (outbound): n->mu */
    struct fl__conn *prev, *next; /* net->accepted (accepted): I/O */
    struct fl__conn *knext;       /* the kick list: n->kmu */
    bool kicked;                  /* on the kick list: n->kmu */
    struct fl__conn *dnext;       /* net->dirty: I/O */
    bool dirty;                   /* on net->dirty: I/O */

    /* mu and what it guards (the table above). */
    pthread_mutex_t mu;
#ifndef NDEBUG
    pthread_t mu_holder; /* who holds mu (fl__conn_lock) */
    bool mu_held;
#endif
    int state; /* C_* */
    fl__obuf_t *out_head, *out_tail;
    /* The big lane: frames above FL__FRAG_SIZE, which go out in fragments
     * between the small frames, and the frames that must follow one of
     * them (conn_write.c); big_ep below counts its INVOKEs per endpoint
     * bucket. */
    fl__obuf_t *big_head, *big_tail;
    size_t queued; /* bytes queued or being written */
    /* Bytes ever queued on each lane (FL__LANE_*), and bytes ever taken
     * off it written (or dropped): each lane is written in its order, so
     * a frame that ended at enq[l] is out once done[l] reaches it. A
     * frame put at the head (HELLO) lowers done instead. Modulo 2^64. */
    uint64_t enq[2], done[2];
    /* Strings kept for c's life (fl__conn_intern). */
    fl__interned_t *interned;
    unsigned ninterned;
    fl__pending_t *pending;
    /* The requests with a deadline, a heap by deadline (the I/O thread
     * fails them when it passes). */
    fl__heap_t dl;
    fl__pending_t *pool; /* free records, up to PENDING_POOL */
    unsigned npool;
    uint64_t next_corr;
    /* The peer's asks received and not answered yet (asks.c). */
    fl__asks_t asks;
    /* When the I/O thread looks at c next (wake's key; wake.c), at or
     * before its next deadline; 0: never (no deadline). */
    uint64_t wake_at;
    /* An answer could not be built: close (owed.c). */
    bool answer_lost;
    bool overflow; /* an answer did not fit the queue: close */
    bool writing;  /* a uv_write in flight: nobody else writes */
    int fd;        /* the socket for direct writes, or -1 */
    /* Outbound: the backoff after a failed attempt (dial.c). */
    int64_t retry_at_ms; /* no attempt before */
    int backoff_ms;      /* without the jitter */
    int retry_wait_ms;   /* with it: retry_at_ms less the failure's time */
    char last_err[384];
    int last_code; /* the failure's code: 0 (connect), FL_ETLS */
    uint16_t big_ep[FL__BIG_BUCKETS]; /* the big lane's INVOKEs by bucket */

    _Atomic uint32_t peer_max; /* from its HELLO (fl__conn_peer_max) */
    /* From its HELLO; 0 again once the connection closes
     * (fl__conn_peer_incarnation). */
    _Atomic uint64_t peer_inc;
    /* The inbound budget (inbound.c): bytes of calls kept and not done,
     * and whether reading stopped for them (in_paused: the budget's
     * reason; a mailbox's is in_mbox). */
    _Atomic size_t in_held;
    _Atomic bool in_paused;
    /* The mailbox over its bound that reading stopped for (inbound.c):
     * its drain wait, armed on in_sys while in_mbox (I/O thread), and
     * whether it fired (set by the callback, cleared by the I/O
     * thread). The wait lives in c's block, after it (fl__conn_new). */
    struct fl__drain_wait *in_wait;
    struct fl_system *in_sys;
    bool in_mbox;
    _Atomic bool in_drained;

    /* I/O thread only. */
    uv_tcp_t tcp;
    bool tcp_open;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    int64_t deadline_ms;                /* for the peer's HELLO (handshake.c) */
    struct fl__conn *hs_prev, *hs_next; /* net->hs_head: its order */
    bool on_hs;                         /* on the handshake list */
    fl__hnode_t wake;                   /* on net->wakes (wake.c) */
    struct fl__conn *wnext;             /* due, in on_wake */
    uv_write_t wreq;
    fl__obuf_t *wflight;
    size_t wflight_bytes;
    size_t wflight_lane[2]; /* wflight_bytes by lane */
    size_t wflight_hdr;     /* plus a fragment's header, in front of it */
    uv_buf_t *wbufs;
    size_t wcap;
    bool close_when_flushed;
    bool io_rx;  /* the I/O thread holds rx_lk */
    int io_refs; /* references reserved for fl__conn_retain_io */
    /* Answers the I/O thread made while handling a read, held back until
     * fl__conn_process queues them under one hold of mu (fl__conn_send). */
    fl__obuf_t *held_head, *held_tail;
    int peer_err; /* a connection-level ERROR from the peer (corr 0) */
    char peer_msg[FL__ERRMSG_MAX + 1];
    size_t in_frame;      /* the INVOKE on_invoke has: its bytes (inbound.c) */
    bool in_stopped;      /* not read: in_paused, in_mbox or both */
    uint64_t next_stream; /* the last fragment stream id */
    uint8_t frag_hdr[FL__FRAME_HDR]; /* in the uv_write (note 5) */

    /* The read side: whoever holds rx_lk (the table above, note 4). */
    _Atomic bool rx_lk;
    int rx_fd; /* the socket to read, or -1 */
    /* What a waiting thread read and left to the I/O thread: bytes in rbuf
     * (rx_left), or the end of the stream (rx_err, a libuv error code). */
    bool rx_left;
    int rx_err;
    fl__rx_t rx;
    uint8_t *rbuf;
    size_t rcap, rlen, rneed;
    fl__frag_t frag; /* the peer's frames in fragments */
    /* A read filled the buffer: reads get READ_CHUNK bytes from then on
     * (conn_read.c); until then READ_FIRST, which an idle connection
     * keeps. */
    bool rbig;

    /* TLS (tls_io.c): the open socket's engine and buffers; NULL on a
     * plaintext connection. I/O thread: made when the socket opens
     * (fl__conn_opened), freed once it has closed (on_closed). */
    fl__tls_io_t *tls;
};

/*
 * The net's fields, by the same owners: fixed at fl__net_start (port,
 * max_frame, max_queued, name, hooks); the thread that starts, shuts down
 * and frees the net (thread, thread_started); n->mu (peers); n->kmu
 * (kick_head, stop_asked, loop_gone; uv_async_send only under it while
 * !loop_gone); the I/O thread (the libuv handles once the thread runs, and
 * the group below); atomics (closed, the counters).
 */
struct fl__net {
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t tick;    /* the stop's flush deadline */
    uv_timer_t dtimer;  /* fires at the nearest connection's wake-up */
    uint64_t dtimer_at; /* I/O thread: what dtimer is armed for; 0: not */
    uv_tcp_t listener;
    bool listening; /* fl__net_start, then the I/O thread */
    /* I/O thread: the handle a connection is accepted into and closed
     * when memory for it ran out (listen.c); busy while it closes, owed
     * when a connection waits for it meanwhile. */
    uv_tcp_t spare;
    bool spare_busy, spare_owed;
    pthread_t thread;
    bool thread_started;
    int port;
    uint32_t max_frame;
    size_t max_queued;
    uint64_t incarnation; /* ours, announced in HELLO; 0: none */
    size_t max_inbound;
    char *name;
    fl__net_hooks_t hooks;
    /* TLS on every connection (borrowed from the service); NULL:
     * plaintext. */
    fl__tls_ctx_t *tls;

    pthread_mutex_t mu; /* peers */
    fl__conn_t *peers;

    pthread_mutex_t kmu; /* the kick list and the stop flags */
    fl__conn_t *kick_head;
    bool stop_asked; /* under kmu */
    bool loop_gone;  /* under kmu: no more uv_async_send */
    /* Set once by fl__net_shutdown (release); read by any thread
     * (acquire) to refuse new work. */
    _Atomic bool closed;

    /* I/O thread only. */
    fl__conn_t *accepted;
    bool in_read;      /* handling what a connection read */
    fl__conn_t *dirty; /* to flush once that is done */
    bool stopping;
    int64_t stop_deadline_ms;
    int open_handles; /* connection sockets not yet closed */
    uint64_t rng;     /* the backoff's jitter (dial.c); 0: not seeded */
    /* The handshake list, earliest deadline first, its timer and cap
     * (handshake.c); hs_accepted counts its accepted connections. */
    fl__conn_t *hs_head, *hs_tail;
    uv_timer_t hs_timer;
    unsigned hs_accepted;
    unsigned hs_max;       /* fixed at fl__net_start */
    int64_t hs_timeout_ms; /* fixed at fl__net_start */
    /* The connections with a deadline, by when to look at them next
     * (wake.c); wake_lost: one did not fit (out of memory), so every
     * connection is looked at until they all fit. */
    fl__heap_t wakes;
    bool wake_lost;

    /* Counters for fl__net_stats (fl__net_count). */
    _Atomic uint64_t st_accepted, st_opened, st_failed, st_in, st_out,
        st_writes, st_proto, st_caller_reads, st_caller_answers, st_wakes,
        st_wake_visits;
    _Atomic uint64_t st_in_pauses, st_in_peak;       /* inbound.c */
    _Atomic uint64_t st_in_mbox_pauses, st_in_kicks; /* inbound.c */
};

/* The net whose I/O thread this is, or NULL (io.c). */
extern _Thread_local fl__net_t *fl__tls_net;

/* ---- owner assertions (debug builds; nothing when NDEBUG) --------------- */

/* This is n's I/O thread. */
#define FL__ASSERT_IO(n) assert(fl__tls_net == (n))

/* This thread holds c->mu (taken with fl__conn_lock). The holder field
 * is written under mu, so only a thread that breaks the rule reads it
 * unlocked, and it aborts. */
#ifndef NDEBUG
static inline bool fl__conn_held_here(const fl__conn_t *c)
{
    return c->mu_held && pthread_equal(c->mu_holder, pthread_self());
}
#endif
#define FL__ASSERT_LOCKED(c) assert(fl__conn_held_here(c))

/* Take c->mu; in debug builds record the holder for FL__ASSERT_LOCKED. */
static inline void fl__conn_lock(fl__conn_t *c)
{
    pthread_mutex_lock(&c->mu);
#ifndef NDEBUG
    c->mu_holder = pthread_self();
    c->mu_held = true;
#endif
}

static inline void fl__conn_unlock(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
#ifndef NDEBUG
    c->mu_held = false;
#endif
    pthread_mutex_unlock(&c->mu);
}

/* ---- small shared helpers ------------------------------------------------ */

static inline int64_t fl__net_now_ms(void)
{
    return (int64_t)(fl_clock_now_ns() / 1000000u);
}

/* Count k on a counter of fl__net_stats. Relaxed: each counter is read
 * on its own (fl__net_stats) and orders nothing else. */
static inline void fl__net_count(_Atomic uint64_t *st, uint64_t k)
{
    atomic_fetch_add_explicit(st, k, memory_order_relaxed);
}

/* Append b to the frame list *head..*tail. */
static inline void fl__obuf_append(fl__obuf_t **head, fl__obuf_t **tail,
                                   fl__obuf_t *b)
{
    b->next = NULL;
    if (*tail != NULL)
        (*tail)->next = b;
    else
        *head = b;
    *tail = b;
}

/* Frames to the big lane of c's queue, under c->mu (from
 * fl__conn_enqueue_locked, which counted b in c->queued): a frame above
 * FL__FRAG_SIZE, or one that must follow a frame there (an INVOKE to the
 * same endpoint, BYE); any other frame joins the small frames. */
void fl__conn_enqueue_big_locked(fl__conn_t *c, fl__obuf_t *b);

/* Append b to c's queue (under c->mu): the small frames, or the big lane
 * (conn_write.c). */
static inline void fl__conn_enqueue_locked(fl__conn_t *c, fl__obuf_t *b)
{
    FL__ASSERT_LOCKED(c);
    c->queued += b->len - b->off;
    if (c->big_head != NULL || b->len > FL__FRAG_SIZE) {
        fl__conn_enqueue_big_locked(c, b);
    } else {
        c->enq[FL__LANE_SMALL] += b->len - b->off;
        fl__obuf_append(&c->out_head, &c->out_tail, b);
    }
}

/* n bytes of lane l were written, or dropped (under c->mu). */
static inline void fl__conn_dequeued_locked(fl__conn_t *c, int l, size_t n)
{
    c->queued -= n;
    c->done[l] += n;
}

/* True if frames wait in c's queue, in either lane (under c->mu). */
static inline bool fl__conn_has_queue_locked(const fl__conn_t *c)
{
    return c->out_head != NULL || c->big_head != NULL;
}

/* The request answered by corr on c (under c->mu), or NULL. */
static inline fl__pending_t *fl__pending_find_locked(fl__conn_t *c,
                                                     uint64_t corr)
{
    FL__ASSERT_LOCKED(c);
    fl__pending_t *p = NULL;
    if (corr != 0)
        HASH_FIND(hh, c->pending, &corr, sizeof corr, p);
    return p;
}

/*
 * The I/O thread takes c's read side (if it does not hold it already),
 * waiting out a thread that reads its answer; fl__conn_rx_let_go gives it
 * back. fl__spin_lock's acquire exchange pairs with the release store of
 * fl__spin_unlock in await_read (await.c), so the waiting thread's reads
 * and writes of the read side happen before the I/O thread's.
 */
static inline void fl__conn_rx_hold(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    if (!c->io_rx) {
        fl__spin_lock(&c->rx_lk);
        c->io_rx = true;
    }
}

/* Its release store pairs with the acquire exchange of await_read's
 * fl__spin_trylock (await.c). */
static inline void fl__conn_rx_let_go(fl__conn_t *c)
{
    if (c->io_rx) {
        c->io_rx = false;
        fl__spin_unlock(&c->rx_lk);
    }
}

/* ---- io.c ---------------------------------------------------------------- */

/* See that c is processed on its I/O thread (fl__conn_process): at once
 * on that thread (after the read at hand), else through the kick list and
 * one uv_async_send. Any thread. */
void fl__conn_kick(fl__conn_t *c);

/* fl__conn_kick through the kick list and one uv_async_send, also on the
 * I/O thread: never processes c on the calling thread. Any thread. */
void fl__conn_kick_async(fl__conn_t *c);

/* What a kick means: queue the answers held back, then connect an idle
 * outbound connection with work, or write what is queued. I/O thread. */
void fl__conn_process(fl__conn_t *c);

/* fn(c, arg) for every connection, outbound and accepted (I/O thread). fn
 * may close c: closing completes later, so the lists stay valid. */
void fl__net_for_each_conn(fl__net_t *n, void (*fn)(fl__conn_t *, void *),
                           void *arg);

/* Close the net's own handles once the last connection socket closed
 * (I/O thread); the loop then ends. */
void fl__net_finish_stop(fl__net_t *n);

/* ---- handshake.c --------------------------------------------------------- */

/* Make n's handshake timer (fl__net_start, before the I/O thread runs)
 * and close it (I/O thread, stopping; or fl__net_start failing). */
void fl__hs_init(fl__net_t *n, const fl__net_opts_t *o);
void fl__hs_fini(fl__net_t *n);

/* c starts waiting for its peer's HELLO (again): its deadline is
 * hs_timeout_ms from now. An accepted connection over the cap drops the
 * oldest accepted one still in its handshake (FL_EHANDSHAKE). I/O
 * thread. */
void fl__hs_begin(fl__conn_t *c);

/* c waits no more (HELLO came, or it closes). I/O thread. */
void fl__hs_end(fl__conn_t *c);

/* ---- listen.c ------------------------------------------------------------ */

/* Bind n's listener to host and the first free port of spec, listening
 * (fl__net_start's thread, before the I/O thread runs). FL_OK, or
 * FL_EINVAL, FL_ECONNECT, FL_ESYSTEM, FL_EADDRINUSE with `why`. */
int fl__net_bind(fl__net_t *n, const char *host, const char *spec, char *why,
                 size_t why_len);

/* The address ss as "ip:port" ("[ip6]:port") into buf (cap bytes). Any
 * thread; does not block. */
void fl__net_addr_name(const struct sockaddr_storage *ss, char *buf,
                       size_t cap);

/* The peer's "ip:port" ("[ip6]:port") of t into buf (cap bytes); buf is
 * left as it is when t has no peer. I/O thread. */
void fl__net_peer_name(uv_tcp_t *t, char *buf, size_t cap);

/* ---- dial.c -------------------------------------------------------------- */

/* Start connecting c if it is an idle outbound connection with frames
 * queued (I/O thread). */
void fl__conn_connect(fl__conn_t *c);

/* True while an outbound connection waits out its backoff (under c->mu). */
bool fl__conn_backing_off_locked(const fl__conn_t *c);

/* An attempt of c failed (under c->mu, I/O thread): double the backoff
 * (FL__NET_BACKOFF_MIN_MS, up to FL__NET_BACKOFF_MAX_MS) and set the next
 * attempt's time to now plus the backoff with its jitter. */
void fl__conn_back_off_locked(fl__conn_t *c);

/* The backoff after one of backoff_ms (0: none yet): doubled, from
 * FL__NET_BACKOFF_MIN_MS up to FL__NET_BACKOFF_MAX_MS. Pure. */
int fl__backoff_next(int backoff_ms);

/* The wait before the next attempt for a backoff of backoff_ms and a
 * random value rnd: backoff_ms +- FL__NET_BACKOFF_JITTER_PCT percent,
 * spread evenly by rnd, never above FL__NET_BACKOFF_MAX_MS (gRPC's
 * connection backoff). Pure. */
int fl__backoff_jitter(int backoff_ms, uint32_t rnd);

/* ---- conn.c -------------------------------------------------------------- */

/* A new connection with the net's reference (refs 1). NULL on ENOMEM.
 * Any thread; the caller publishes it. */
fl__conn_t *fl__conn_new(fl__net_t *n, bool outbound);

/* Let go of n references to c; the last one frees it. Any thread. */
void fl__conn_release_n(fl__conn_t *c, int n);

/* The socket is connected (either side): read, say HELLO first. Returns
 * 0 or a libuv error. I/O thread. */
int fl__conn_opened(fl__conn_t *c);

/* Close c now: stop reading, close the socket, fail every pending request
 * and drop the queue. code != 0 overrides the failure code (the net
 * stopping, or an ERROR the peer sent about the connection). I/O thread. */
void fl__conn_close(fl__conn_t *c, int code, const char *reason);

/* A broken rule: log it, tell the peer if the socket takes it, close.
 * I/O thread. */
void fl__conn_proto_error(fl__conn_t *c, int code, const char *why);

/* fl__conn_proto_error without its log line (the caller logged). */
void fl__conn_proto_error_quiet(fl__conn_t *c, int code, const char *why);

/* Fail one request of c (kind, what: the request's): the one place the
 * failure messages are written (conn.c). Any thread. */
void fl__conn_fail_request(fl_future_t *f, const fl__conn_t *c, uint8_t kind,
                           const char *what, bool phase_connect, int code,
                           const char *reason, const char *after);

/* ---- conn_write.c -------------------------------------------------------- */

/* Free a list of frames linked by next. */
void fl__obuf_free_list(fl__obuf_t *b);

/* Our HELLO, and an ERROR frame; NULL when out of memory. */
fl__obuf_t *fl__obuf_hello(fl__net_t *n);
fl__obuf_t *fl__obuf_error(uint64_t corr, int code, const char *msg);

/* Take every frame off c's queue, both lanes (under c->mu): returns them
 * as one list, for the caller to free; c->queued no longer counts them. */
fl__obuf_t *fl__conn_take_queue_locked(fl__conn_t *c);

/* Put b at the head of c's queue (under c->mu): HELLO goes first. */
void fl__conn_enqueue_front_locked(fl__conn_t *c, fl__obuf_t *b);

/* Write what is queued straight to the socket from the calling thread
 * (under c->mu). True when the queue is empty afterwards. See the write
 * path in conn_write.c. */
bool fl__conn_write_queue_locked(fl__conn_t *c);

/* Socket options of a connection's socket fd, once it is connected: the
 * unsent bytes the kernel holds are bounded, so that a small frame queued
 * during a large one's fragments finds little ahead of it (conn_write.c).
 * I/O thread. */
void fl__conn_socket_tune(int fd);

/* Write everything queued in one uv_write (I/O thread). */
void fl__conn_flush(fl__conn_t *c);

/* Refuse a frame of len bytes for a reason (under c->mu): FL_OK, or
 * FL_ECLOSED or FL_ELIMIT with msg. */
int fl__conn_refuse_locked(fl__conn_t *c, size_t len, char *msg, size_t cap);

/* A frame was queued on c (under c->mu, which this releases): see that it
 * goes out (the write path, conn_write.c). */
void fl__conn_queued_locked(fl__conn_t *c, bool lone, bool must_kick);

/* Queue the answers the I/O thread held back on c (under c->mu); returns
 * what is to be freed once the lock is let go. */
fl__obuf_t *fl__conn_queue_held_locked(fl__conn_t *c);

/* ---- conn_read.c --------------------------------------------------------- */

/* Start reading c's socket (I/O thread). 0 or a libuv error. */
int fl__conn_read_start(fl__conn_t *c);

/* Handle what a thread waiting for its answer read and left (I/O thread,
 * kicked by it). */
void fl__conn_rx_take_left(fl__conn_t *c);

/* Handle the frames in c's read buffer while rx_left says there are
 * some (I/O thread, holding the read side): what a TLS connection
 * decrypted into it. */
void fl__conn_rx_more(fl__conn_t *c);

/* Complete f, taken off its table, with the answer fr (REPLY, ERROR or
 * CONNECTED), then let go of the request's reference. Any thread. */
void fl__answer_settle(const fl__rx_frame_t *fr, fl_future_t *f,
                       const fl__req_call_t *call);

/* ---- inbound.c ----------------------------------------------------------- */

/* Read c again once each reason it stopped for is clear: its calls
 * drained to half the inbound budget (if that stopped it), the mailbox
 * over its bound drained to half its bound (if one did); the frames
 * already read first (I/O thread, from fl__conn_process). */
void fl__conn_inbound_resume(fl__conn_t *c);

/* c closes: cancel the wait for a mailbox, if armed (before c can be
 * freed: the wait's callback uses c). I/O thread, from fl__conn_close. */
void fl__conn_inbound_closed(fl__conn_t *c);
/* ---- asks.c -------------------------------------------------------------- */

/* Note the peer's ask corr (non-zero) on c (under c->mu): FL_OK, FL_EPROTO
 * when an ask with that id is still in flight (not answered yet), or
 * FL_ENOMEM. */
int fl__asks_add_locked(fl__conn_t *c, uint64_t corr);

/* The ask corr on c is answered (under c->mu): forget it (nothing when it
 * is not there). */
void fl__asks_del_locked(fl__conn_t *c, uint64_t corr);

/* An answer frame b (REPLY or ERROR, with its corr) is being queued on c
 * (under c->mu): its ask is no longer in flight. Other frames: nothing. */
void fl__asks_answered_locked(fl__conn_t *c, const fl__obuf_t *b);

/* Admit the peer's ask INVOKE corr on c before it is dispatched (I/O
 * thread): true, or false having refused it: a duplicate of an ask in
 * flight is a protocol error (c closes), and out of memory answers it
 * with FL_ENOMEM. */
bool fl__asks_admit(fl__conn_t *c, uint64_t corr);

/* Free what the set holds (the connection's last reference). */
void fl__asks_fini(fl__asks_t *s);
/* ---- owed.c ------------------------------------------------------------- */

/* The answer to request corr (an INVOKE's or CONNECT's) could not be built
 * for lack of memory: logs it and has the I/O thread close c with
 * fl__conn_close_owing, so that the peer's calls fail instead of waiting
 * for their timeouts. Any thread; not under c->mu. */
void fl__conn_answer_lost(fl__conn_t *c, uint64_t corr);

/* Close c, which owes answers it could not build: an accepted connection
 * writes what is queued, then a connection-level ERROR FL_ENOMEM, then
 * closes (at once if even that ERROR cannot be built); an outbound one
 * closes at once, failing its own requests with FL_ENOMEM. I/O thread. */
void fl__conn_close_owing(fl__conn_t *c);

/* ---- wake.c -------------------------------------------------------------- */

/* Initialise the net's wake-up timer (fl__net_start, before the loop). */
void fl__net_wake_init(fl__net_t *n);

/* c has a deadline at `at` (ns, 0: none): see that the I/O thread looks
 * at c by then (a lower key only; a later one waits for the key). I/O
 * thread, not under c->mu. */
void fl__conn_wake_lower(fl__conn_t *c, uint64_t at);

/* c leaves the net (an accepted connection closed): off the heap. I/O
 * thread. */
void fl__conn_wake_forget(fl__conn_t *c);

/* pending.c's calls. */
#include "remote/pending.h"

#endif /* FL_REMOTE_CONN_H */
