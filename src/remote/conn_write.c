/*
 * conn_write.c - frames out: building them (obuf), queueing them on a
 * connection, and writing them. This is the one place the write path is
 * explained; the other files point here.
 *
 * THE WRITE PATH. Any thread queues frames on c's queue (out_head) under
 * c->mu. Whoever writes takes frames from the head of that queue under the
 * same lock, with one non-blocking sendmsg (fl__conn_write_queue_locked),
 * so frames keep their order; the I/O thread marks its uv_write in flight
 * (`writing`) before it lets go of the lock, and nobody else writes until
 * that completes (on_written then takes the queue). Who writes depends on
 * who queued (fl__conn_queued_locked):
 * - a worker in an actor's turn holds the connection back (tls_defer) to a
 *   message boundary of its turn (fl__tls_flush), so the frames of several
 *   messages go out in one write; at most DEFER_NS while more of the
 *   turn's messages are queued;
 * - the I/O thread writes at once (fl__conn_kick, fl__conn_process),
 *   except while it handles a read: then it marks the connection dirty and
 *   writes once the read's frames are dispatched and what they made ready
 *   has run (run_frames, conn_read.c); the answers it makes meanwhile on
 *   an accepted connection wait without the lock (held_head,
 *   fl__conn_send) and join the queue under one hold of it
 *   (fl__conn_queue_held_locked);
 * - any other thread writes a lone frame (nothing else of its kind in
 *   flight) at once, when the I/O thread is not writing;
 * - otherwise, or when the socket does not take it all, the thread kicks
 *   the connection (fl__conn_kick): it goes on the net's kick list and one
 *   uv_async_send wakes the loop, which connects or writes
 *   (fl__conn_flush: straight to the socket first, a uv_write for what the
 *   socket does not take).
 * Writing from the calling thread saves the I/O thread's wake-up on the
 * path of a lone call, a lone reply, or the replies of a worker's turn.
 *
 * LARGE FRAMES. The queue has two lanes: the small frames (out_head) and
 * the big lane (big_head): frames above FL__FRAG_SIZE, and the frames
 * queued behind one of them that must stay behind it (an INVOKE to the
 * same endpoint, BYE; fl__conn_enqueue_big_locked). Only the I/O thread
 * writes the big lane (take_write_locked): each of its uv_writes takes
 * the small frames first, then one FRAGMENT of the large frame at the
 * head (fragment.c; no copy: a header and a slice of the frame), or the
 * whole frames that followed it. So a small frame waits behind at most
 * one fragment, not a whole large frame, and a small call to another
 * endpoint overtakes a large one (docs/wire-protocol.md, Fragments).
 */
#include "remote/conn.h"
#include "remote/tls_io.h"

#include "actor/system.h"
#include "common/pool.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define WRITE_BATCH 1024u /* frames per uv_write */
#define DIRECT_IOV 64     /* frames per direct sendmsg */
#define DEFER_CONNS 16    /* connections a worker's turn holds back */
/* How long a worker holds frames back while its actor has more queued. */
#define DEFER_NS 20000u

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

void fl__obuf_free_list(fl__obuf_t *b)
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

fl__obuf_t *fl__obuf_hello(fl__net_t *n)
{
    fl__frame_meta_t m = {.max_frame = n->max_frame,
                          .service_name = str_of(n->name, FL__NAME_MAX),
                          .incarnation = n->incarnation};
    return fl__obuf_frame(FL__K_HELLO,
                          n->incarnation != 0 ? FL__F_INCARNATION : 0, 0, &m, 0,
                          NULL);
}

fl__obuf_t *fl__obuf_error(uint64_t corr, int code, const char *msg)
{
    fl__frame_meta_t m = {.code = (uint32_t)code,
                          .message = str_of(msg ? msg : "", FL__ERRMSG_MAX)};
    return fl__obuf_frame(FL__K_ERROR, 0, corr, &m, 0, NULL);
}

void fl__conn_enqueue_front_locked(fl__conn_t *c, fl__obuf_t *b)
{
    FL__ASSERT_LOCKED(c);
    b->next = c->out_head;
    c->out_head = b;
    if (c->out_tail == NULL)
        c->out_tail = b;
    c->queued += b->len - b->off;
    /* The frames queued already move back by b's bytes: done catches up
     * once b is written. */
    c->done[FL__LANE_SMALL] -= b->len - b->off;
}

void fl__conn_socket_tune(int fd)
{
    /* Unsent bytes the kernel takes before it reports the socket full:
     * what a small frame may find ahead of it there. */
    int lowat = 2 * FL__FRAG_SIZE;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
}

/* One write that took `frames` whole frames: the stats. */
static void count_writes(fl__net_t *n, uint64_t frames)
{
    fl__net_count(&n->st_writes, 1);
    if (frames > 0)
        fl__net_count(&n->st_out, frames);
}

/* A uv_write completed: the next one takes what was queued meanwhile. */
static void on_written(uv_write_t *req, int status)
{
    fl__conn_t *c = req->data;
    FL__ASSERT_IO(c->net);
    fl__obuf_free_list(c->wflight);
    c->wflight = NULL;
    if (c->tls != NULL)
        fl__tls_io_written(c);
    fl__conn_lock(c);
    fl__conn_dequeued_locked(c, FL__LANE_SMALL, c->wflight_lane[0]);
    fl__conn_dequeued_locked(c, FL__LANE_BIG, c->wflight_lane[1]);
    bool empty = !fl__conn_has_queue_locked(c);
    c->writing = false;
    fl__conn_unlock(c);
    c->wflight_bytes = c->wflight_hdr = 0;
    c->wflight_lane[0] = c->wflight_lane[1] = 0;
    if (status == UV_ECANCELED)
        return; /* closing */
    if (status < 0) {
        fl__conn_close(c, 0, uv_strerror(status));
        return;
    }
    if (c->close_when_flushed && empty) {
        fl__conn_close(c, FL_ECLOSED, "rpc service shut down");
        return;
    }
    fl__conn_flush(c);
}

/* The endpoint bucket of frame b if it is an INVOKE (its endpoint id's
 * FNV-1a hash), else -1. */
static int ep_bucket(const fl__obuf_t *b)
{
    if (b->data[5] != FL__K_INVOKE)
        return -1;
    const uint8_t *p = b->data + FL__FRAME_HDR;
    size_t n = ((size_t)p[0] << 8) | p[1];
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[2 + i]) * 16777619u;
    return (int)(h % FL__BIG_BUCKETS);
}

void fl__conn_enqueue_big_locked(fl__conn_t *c, fl__obuf_t *b)
{
    FL__ASSERT_LOCKED(c);
    int k = ep_bucket(b);
    /* Order is kept where the contract needs it: the calls to one
     * endpoint, and BYE behind everything. A bucket shared by two
     * endpoints only orders more than needed. */
    if (b->len <= FL__FRAG_SIZE && b->data[5] != FL__K_BYE &&
        (k < 0 || c->big_ep[k] == 0)) {
        c->enq[FL__LANE_SMALL] += b->len - b->off;
        fl__obuf_append(&c->out_head, &c->out_tail, b);
        return;
    }
    if (k >= 0)
        c->big_ep[k]++;
    c->enq[FL__LANE_BIG] += b->len - b->off;
    fl__obuf_append(&c->big_head, &c->big_tail, b);
}

/* b leaves c's big lane, at its head (under c->mu). */
static void big_pop_locked(fl__conn_t *c, fl__obuf_t *b)
{
    int k = ep_bucket(b);
    if (k >= 0)
        c->big_ep[k]--;
    c->big_head = b->next;
    if (c->big_head == NULL)
        c->big_tail = NULL;
    b->next = NULL;
}

fl__obuf_t *fl__conn_take_queue_locked(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    for (fl__obuf_t *b = c->out_head; b != NULL; b = b->next)
        fl__conn_dequeued_locked(c, FL__LANE_SMALL, b->len - b->off);
    for (fl__obuf_t *b = c->big_head; b != NULL; b = b->next)
        fl__conn_dequeued_locked(c, FL__LANE_BIG, b->len - b->off);
    fl__obuf_t *out = c->out_head;
    if (c->out_tail != NULL)
        c->out_tail->next = c->big_head;
    else
        out = c->big_head;
    c->out_head = c->out_tail = c->big_head = c->big_tail = NULL;
    memset(c->big_ep, 0, sizeof c->big_ep);
    return out;
}

/*
 * What the I/O thread's next write takes of c's queue (under c->mu): up to
 * WRITE_BATCH small frames, then from the big lane either a run of whole
 * frames (those that follow a large one) or the next fragment of the large
 * frame at its head (header in c->frag_hdr, *frag its bytes). The frames
 * taken whole, and a large one whose last fragment this is, are linked
 * from *first (freed once written); *n counts them, bytes[l] counts what
 * the write takes off c->queued from lane l.
 */
static void take_write_locked(fl__conn_t *c, fl__obuf_t **first, size_t *n,
                              size_t bytes[2], uv_buf_t *frag)
{
    fl__obuf_t *head = NULL, *tail = NULL;
    *n = 0;
    bytes[0] = bytes[1] = 0;
    *frag = uv_buf_init(NULL, 0);
    if (c->out_head != NULL) {
        fl__obuf_t *last = c->out_head;
        *n = 1;
        bytes[0] = last->len - last->off;
        while (last->next != NULL && *n < WRITE_BATCH) {
            last = last->next;
            bytes[0] += last->len - last->off;
            (*n)++;
        }
        head = c->out_head;
        tail = last;
        c->out_head = last->next;
        if (c->out_head == NULL)
            c->out_tail = NULL;
        last->next = NULL;
    }
    fl__obuf_t *b = c->big_head;
    if (b != NULL && b->len > FL__FRAG_SIZE) {
        if (b->off == 0 && ++c->next_stream == 0)
            c->next_stream = 1;
        size_t k = fl__frag_cut(b->len, b->off, c->next_stream, c->frag_hdr);
        *frag = uv_buf_init((char *)b->data + b->off, (unsigned)k);
        b->off += k;
        bytes[1] += k;
        if (b->off == b->len) { /* its last fragment: freed once written */
            big_pop_locked(c, b);
            fl__obuf_append(&head, &tail, b);
        }
    } else {
        while (b != NULL && b->len <= FL__FRAG_SIZE && *n < WRITE_BATCH) {
            big_pop_locked(c, b);
            bytes[1] += b->len - b->off;
            (*n)++;
            fl__obuf_append(&head, &tail, b);
            b = c->big_head;
        }
    }
    *first = head;
}

void fl__conn_flush(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    if (!c->tcp_open || (c->tls != NULL && fl__tls_io_hold(c)))
        return;
    fl__conn_lock(c);
    if (c->writing || c->state != C_OPEN) {
        fl__conn_unlock(c);
        return;
    }
    /* Straight to the socket first: libuv's write request (and its poll
     * registration) is only needed for what the socket does not take. */
    if (fl__conn_write_queue_locked(c)) {
        fl__conn_unlock(c);
        if (c->close_when_flushed) /* the BYE is out */
            fl__conn_close(c, FL_ECLOSED, "rpc service shut down");
        return;
    }
    fl__obuf_t *first;
    size_t n, bytes[2];
    uv_buf_t frag;
    take_write_locked(c, &first, &n, bytes, &frag);
    c->writing = true;
    fl__conn_unlock(c);

    /* A large frame's last fragment is on the list, but not whole. */
    size_t nbufs = frag.base != NULL ? n + 1 : n;
    if (c->wcap < nbufs) {
        size_t cap = c->wcap ? c->wcap : 16;
        while (cap < nbufs)
            cap *= 2;
        uv_buf_t *nb = fl__realloc(c->wbufs, cap * sizeof *nb);
        if (nb == NULL) {
            fl__obuf_free_list(first);
            fl__conn_lock(c);
            fl__conn_dequeued_locked(c, FL__LANE_SMALL, bytes[0]);
            fl__conn_dequeued_locked(c, FL__LANE_BIG, bytes[1]);
            c->writing = false;
            fl__conn_unlock(c);
            fl__conn_close(c, 0, "out of memory");
            return;
        }
        c->wbufs = nb;
        c->wcap = cap;
    }
    size_t i = 0;
    for (fl__obuf_t *b = first; b != NULL && i < n; b = b->next)
        c->wbufs[i++] =
            uv_buf_init((char *)b->data + b->off, (unsigned)(b->len - b->off));
    if (frag.base != NULL) {
        c->wbufs[i++] = uv_buf_init((char *)c->frag_hdr, FL__FRAME_HDR);
        c->wbufs[i++] = frag;
    }
    c->wflight = first;
    c->wflight_bytes = bytes[0] + bytes[1];
    c->wflight_lane[0] = bytes[0];
    c->wflight_lane[1] = bytes[1];
    c->wflight_hdr = frag.base != NULL ? FL__FRAME_HDR : 0;
    count_writes(c->net, frag.base != NULL ? n + 1 : n);
    uv_buf_t *bufs = c->wbufs, sealed;
    int rc = 0;
    const char *why = NULL;
    if (c->tls != NULL) {
        /* One buffer of records for the whole write, behind what a direct
         * write left (tls_io.c). */
        if (fl__tls_io_seal(c, c->wbufs, i, &sealed) != FL_OK) {
            rc = UV_ENOMEM;
            why = fl__tls_io_seal_why(c);
        }
        bufs = &sealed;
        i = 1;
        if (rc == 0 && sealed.len == 0) { /* nothing after all */
            fl__conn_lock(c);
            c->writing = false;
            fl__conn_unlock(c);
            return;
        }
    }
    if (rc == 0)
        rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, (unsigned)i,
                      on_written);
    if (rc < 0) {
        fl__obuf_free_list(first);
        c->wflight = NULL;
        fl__conn_lock(c);
        fl__conn_dequeued_locked(c, FL__LANE_SMALL, bytes[0]);
        fl__conn_dequeued_locked(c, FL__LANE_BIG, bytes[1]);
        c->writing = false;
        fl__conn_unlock(c);
        c->wflight_bytes = c->wflight_hdr = 0;
        c->wflight_lane[0] = c->wflight_lane[1] = 0;
        fl__conn_close(c, 0, why != NULL ? why : uv_strerror(rc));
    }
}

/*
 * Write the small frames queued straight to the socket from the calling
 * thread (under c->mu) unless the I/O thread is writing (the write path,
 * above). Returns true when the queue is empty afterwards; false when
 * something is left (the socket is full, an error the I/O thread finds out
 * about, or the big lane, which is the I/O thread's): kick then.
 */
bool fl__conn_write_queue_locked(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    if (c->state != C_OPEN || c->writing || c->fd < 0)
        return !fl__conn_has_queue_locked(c);
    /* fd >= 0: c->tls is the open socket's (tls_io.c). */
    if (c->tls != NULL)
        return fl__tls_io_write_locked(c);
    if (c->out_head == NULL)
        return c->big_head == NULL;
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
        fl__conn_dequeued_locked(c, FL__LANE_SMALL, left);
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
    return c->big_head == NULL; /* the big lane is the I/O thread's */
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
    fl__conn_lock(c);
    bool done = fl__conn_write_queue_locked(c);
    /* While the I/O thread writes, its completion takes the queue. */
    bool kick = !done && !c->writing;
    fl__conn_unlock(c);
    if (kick)
        fl__conn_kick(c);
}

static void defer_flush_all(void)
{
    unsigned n = tls_defer.n;
    tls_defer.n = 0;
    fl__tls_flush = NULL;
    for (unsigned i = 0; i < n; i++) {
        conn_write_now(tls_defer.e[i].c);
        fl__conn_release_n(tls_defer.e[i].c, tls_defer.e[i].refs);
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
    FL__ASSERT_LOCKED(c);
    if (!fl__in_turn())
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
    if (c != NULL && fl__tls_net == c->net && c->tcp_open) {
        c->io_refs++;
        return;
    }
    int i = c != NULL ? defer_find(c) : -1;
    if (i >= 0)
        tls_defer.e[i].refs++;
    else
        fl__conn_release(c);
}

int fl__conn_refuse_locked(fl__conn_t *c, size_t len, char *msg, size_t cap)
{
    FL__ASSERT_LOCKED(c);
    /* Acquire: pairs with fl__net_shutdown's release store. */
    if (atomic_load_explicit(&c->net->closed, memory_order_acquire) ||
        c->state == C_DEAD) {
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
 * Who writes the frame just queued: the write path, above. lone: nothing
 * else of its kind is in flight; must_kick: kick the I/O thread anyway (a
 * near deadline for it to arm).
 */
void fl__conn_queued_locked(fl__conn_t *c, bool lone, bool must_kick)
{
    FL__ASSERT_LOCKED(c);
    if (fl__tls_net == c->net) {
        fl__conn_unlock(c);
        fl__conn_kick(c);
        return;
    }
    if (defer_write(c)) {
        fl__conn_unlock(c);
        if (must_kick)
            fl__conn_kick(c);
        return;
    }
    bool kick = true;
    if (lone)
        kick = !fl__conn_write_queue_locked(c) && !c->writing;
    fl__conn_unlock(c);
    if (kick || must_kick)
        fl__conn_kick(c);
}

/*
 * Queue the answers the I/O thread held back on c (fl__conn_send; under
 * c->mu) as fl__conn_send would have, one by one and with its checks.
 * Returns what is to be freed once the lock is let go: all of them when
 * the connection is gone or the service closed; from the first that would
 * take the queue past its limit on, with the connection marked to be
 * closed and the same log line.
 */
fl__obuf_t *fl__conn_queue_held_locked(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    FL__ASSERT_IO(c->net);
    fl__obuf_t *h = c->held_head;
    if (h == NULL)
        return NULL;
    c->held_head = c->held_tail = NULL;
    if (c->state != C_OPEN)
        return h; /* the connection is gone: dropped */
    while (h != NULL) {
        char msg[FL__HOST_MAX + 300];
        int rc = fl__conn_refuse_locked(c, h->len - h->off, msg, sizeof msg);
        if (rc != FL_OK) {
            if (rc == FL_ELIMIT) {
                FL_LOG_KV(FL_LOG_WARN, FL_KV(FL_F("peer", c->name)),
                          "%s; closing the connection", msg);
                c->overflow = true;
            }
            return h;
        }
        fl__obuf_t *next = h->next;
        fl__asks_answered_locked(c, h);
        fl__conn_enqueue_locked(c, h);
        h = next;
    }
    return NULL;
}

int fl__conn_send(fl__conn_t *c, fl__obuf_t *fb)
{
    char msg[FL__HOST_MAX + 300];
    if (!c->outbound && fl__tls_net == c->net && c->net->in_read &&
        c->tcp_open) {
        /* An answer the I/O thread made while handling a read (the turns
         * it ran): held back without the lock (the write path, above). */
        fl__obuf_append(&c->held_head, &c->held_tail, fb);
        fl__conn_kick(c);
        return FL_OK;
    }
    fl__conn_lock(c);
    fl__asks_answered_locked(c, fb);
    int rc = fl__conn_refuse_locked(c, fb->len, msg, sizeof msg);
    if (rc == FL_OK && !c->outbound && c->state != C_OPEN)
        rc = FL_ECLOSED; /* an answer for a connection that is gone */
    if (rc == FL_OK && c->outbound && fl__conn_backing_off_locked(c))
        rc = FL_EUNREACHABLE; /* a tell while backing off: dropped */
    if (rc == FL_OK) {
        fl__conn_enqueue_locked(c, fb);
        fl__conn_queued_locked(c, true, false);
        return FL_OK;
    }
    fl__conn_unlock(c);
    fl__obuf_free(fb);
    if (rc == FL_ELIMIT && !c->outbound) {
        /* Our answers pile up: the peer does not read. The I/O thread
         * closes the connection (fl__conn_process). */
        FL_LOG_KV(FL_LOG_WARN, FL_KV(FL_F("peer", c->name)),
                  "%s; closing the connection", msg);
        fl__conn_lock(c);
        c->overflow = true;
        fl__conn_unlock(c);
        fl__conn_kick(c);
    }
    return rc;
}

int fl__conn_answer_error(fl__conn_t *c, uint64_t corr, int code,
                          const char *msg)
{
    fl__obuf_t *b = fl__obuf_error(corr, code, msg);
    if (b == NULL)
        fl__conn_answer_lost(c, corr);
    return b ? fl__conn_send(c, b) : FL_ENOMEM;
}

int fl__conn_answer_connected(fl__conn_t *c, uint64_t corr, uint32_t index,
                              uint64_t instance, const char *resolved)
{
    fl__frame_meta_t m = {.service_index = index, .instance = instance};
    uint16_t flags = FL__F_INSTANCE;
    if (resolved != NULL) {
        m.endpoint = (fl__str_t){resolved, (uint16_t)strlen(resolved)};
        flags |= FL__F_RESOLVED;
    }
    fl__obuf_t *b = fl__obuf_frame(FL__K_CONNECTED, flags, corr, &m, 0, NULL);
    if (b == NULL)
        fl__conn_answer_lost(c, corr);
    return b ? fl__conn_send(c, b) : FL_ENOMEM;
}
