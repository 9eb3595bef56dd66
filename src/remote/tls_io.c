/*
 * tls_io.c - TLS on a connection (docs/remote.md, "TLS";
 * docs/wire-protocol.md, "TLS"): the seams of src/remote where bytes meet
 * the socket call in here when c->tls is set, and the frame code above
 * (rx_run, fragments, lanes, the pending table) does not change.
 *
 * - opening (fl__conn_opened): an engine per socket, a client when we
 *   dialed; the client's ClientHello goes out at once. The HELLO frame
 *   waits in the queue until the handshake is done (fl__tls_io_hold).
 * - reading (conn_read.c): libuv reads ciphertext into tio->cbuf; it is
 *   fed to the engine, which drives the handshake, then decrypts into
 *   c->rbuf, and rx_run cuts frames as on a plaintext connection.
 * - writing: the frames of a write are sealed into records and the
 *   ciphertext joins tio->pend, which is written in order: straight to
 *   the socket by the thread that queued them (fl__tls_io_write_locked,
 *   under c->mu, once the handshake is done), or with the connection's
 *   uv_write (fl__conn_flush, fl__tls_io_seal), so the write path and its
 *   accounting are the same as on a plaintext connection. Records are
 *   numbered: ciphertext must reach the socket in the order it was made,
 *   so it is only ever taken from the engine by whoever may write (c->mu,
 *   or the I/O thread while `writing`). In the handshake what the engine
 *   makes goes out with its own uv_writes (send_out); after it, what a
 *   read makes it say (an alert, a KeyUpdate's answer) waits in the engine
 *   for the next write.
 * - failing: a handshake that fails or times out fails the connection
 *   with FL_ETLS naming the peer and OpenSSL's reason (the client), or
 *   logs one rate-limited warn line (the server); the last words (an
 *   alert; to a plaintext client its HELLO and ERROR) are written to the
 *   socket before it closes.
 *
 * - the direct paths: c->fd and c->rx_fd stay -1 until the handshake is
 *   done and none of its writes is in flight in libuv (direct_on); then a
 *   thread writes its frames itself, and a thread blocked in a call reads
 *   and decrypts its own answer (fl__tls_io_recv, await.c). The engine
 *   takes its own mutex inside every call (tls.h): c->mu -> engine,
 *   rx_lk -> engine.
 */
#include "remote/tls_io.h"
#include "remote/conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Ciphertext read buffer: what a handshake needs, then more for a busy
 * connection (as conn_read.c's READ_FIRST and READ_CHUNK). */
#define CBUF_FIRST 4096u
#define CBUF_BIG 65536u
/* Plaintext gathered into one record before it is sealed. */
#define STAGE 16384u
/* At most this many bytes the engine made on its own (what reads made
 * it say: KeyUpdate answers, alerts) wait unsent, or max_queued if lower
 * (out_bounded). */
#define OUT_MAX (1024u * 1024u)
/* Room kept free in c->rbuf for the next record's plaintext. */
#define RECORD_ROOM 16384u
/* Bytes the last words drain from the socket before closing it: what the
 * peer sent that we did not read would turn the close into a reset, and
 * the reset could beat our alert to the peer. */
#define DRAIN_MAX 65536u

struct fl__tls_io {
    /* Every call into it takes its own mutex (tls.h). */
    fl__tls_t *eng;
    int fd; /* the socket */

    /* I/O thread. */
    bool started;   /* a client's ClientHello is made */
    bool ready;     /* the handshake is done: frames may go */
    bool failed;    /* failed: what comes is dropped */
    int ctl_writes; /* handshake writes in flight (send_out) */

    /* The read side (rx_lk's holder, conn.h): the ciphertext read
     * buffer, and a TLS failure a caller's read met (FL_ETLS,
     * FL_ECLOSED), left to the I/O thread. */
    uint8_t *cbuf;
    size_t ccap;
    bool cbig;
    int rx_rc;

    /* The write side: c->mu, or the I/O thread while `writing` is set.
     * pend is the ciphertext sealed and not yet written, in order: what a
     * direct write's socket did not take, then the I/O thread's write in
     * flight. */
    uint8_t *pend;
    size_t pend_off, pend_len, pend_cap;
    /* Plaintext bytes of the small lane a direct write sealed into pend
     * and the socket has not taken: still counted in c->queued (and not
     * in c->done) until they are written, so max_queued bounds them. */
    size_t held;
    /* A seal failed (seal_failed): never sealed again; the reason the
     * connection closes with. */
    int seal_rc;
    char seal_why[FL__TLS_WHY_MAX + 8];
};

/* Small frames gathered into one record before they are sealed (seal):
 * the engine copies them at once, so one buffer per thread serves every
 * connection. */
static _Thread_local uint8_t stage[STAGE];

/* A write of what the engine made on its own (send_out). */
typedef struct out_req {
    uv_write_t req;
    size_t len;
    uint8_t data[];
} out_req_t;

int fl__tls_io_open(fl__conn_t *c, int fd)
{
    fl__net_t *n = c->net;
    fl__tls_io_t *tio = fl__calloc(1, sizeof *tio);
    if (tio == NULL)
        return FL_ENOMEM;
    if (fl__tls_new(n->tls, c->outbound, c->outbound ? c->host : NULL,
                    &tio->eng) != FL_OK) {
        fl__free(tio);
        return FL_ENOMEM;
    }
    tio->fd = fd;
    c->tls = tio;
    return FL_OK;
}

void fl__tls_io_free(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    if (tio == NULL)
        return;
    c->tls = NULL;
    fl__tls_free(tio->eng);
    fl__free(tio->cbuf);
    fl__free(tio->pend);
    fl__free(tio);
}

/*
 * Once the handshake is done and none of its writes is in flight in
 * libuv, any thread may write c's ciphertext straight to the socket
 * (under c->mu) and the thread waiting for its answer may read it (under
 * rx_lk): c->fd and c->rx_fd get the socket. Not before: a direct write
 * would overtake a handshake write libuv still holds. I/O thread.
 */
static void direct_on(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    if (!tio->ready || tio->failed || tio->ctl_writes > 0)
        return;
    fl__conn_lock(c);
    bool open = c->state == C_OPEN;
    if (open)
        c->fd = tio->fd;
    fl__conn_unlock(c);
    if (!open)
        return;
    bool held = c->io_rx;
    fl__conn_rx_hold(c);
    c->rx_fd = tio->fd;
    if (!held)
        fl__conn_rx_let_go(c);
}

static void on_out_written(uv_write_t *req, int status)
{
    (void)status; /* the data write's completion deals with errors */
    out_req_t *o = fl__container_of(req, out_req_t, req);
    fl__conn_t *c = req->data;
    fl__free(o);
    if (status == UV_ECANCELED || c->tls == NULL)
        return; /* closing */
    if (--c->tls->ctl_writes == 0 && c->tls->ready) {
        direct_on(c);
        fl__conn_flush(c); /* what waited for it */
    }
}

/* Write what the engine made on its own in the handshake (I/O thread),
 * behind every write made before. FL_OK, FL_ENOMEM. After the handshake
 * such bytes (an alert, a KeyUpdate's answer) go with the next write
 * instead (fl__tls_io_write_locked, fl__tls_io_seal), in order. */
static int send_out(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    size_t len = fl__tls_out_len(tio->eng);
    if (len == 0 || !c->tcp_open || uv_is_closing((uv_handle_t *)&c->tcp))
        return FL_OK;
    out_req_t *o = fl__malloc(sizeof *o + len);
    if (o == NULL)
        return FL_ENOMEM;
    o->len = fl__tls_out_take(tio->eng, o->data, len);
    o->req.data = c;
    uv_buf_t b = uv_buf_init((char *)o->data, (unsigned)o->len);
    if (uv_write(&o->req, (uv_stream_t *)&c->tcp, &b, 1, on_out_written) < 0)
        fl__free(o); /* the socket failed: its read says so */
    else
        tio->ctl_writes++;
    return FL_OK;
}

/*
 * Our last bytes before c closes (I/O thread): buf, or what the engine
 * has to send when buf is NULL (an alert), straight to the socket when
 * nothing is queued before them in libuv (a uv_write would be cancelled
 * by the close); then what the peer sent is read and dropped, so that
 * the close is not a reset that could overtake them. Under c->mu, and
 * direct writes turned off first: a thread writing its frames straight
 * to the socket (fl__tls_io_write_locked) would interleave its records
 * with these bytes; while the I/O thread's write is in flight they are
 * not sent.
 */
static void last_words(fl__conn_t *c, const uint8_t *buf, size_t len)
{
    fl__tls_io_t *tio = c->tls;
    uint8_t alert[512];
    fl__conn_lock(c);
    c->fd = -1;
    bool writing = c->writing;
    if (buf == NULL) {
        len = writing ? 0 : fl__tls_out_take(tio->eng, alert, sizeof alert);
        buf = alert;
    }
    if (c->tcp_open && tio->fd >= 0 && len > 0 && !writing &&
        tio->pend_off == tio->pend_len && c->tcp.write_queue_size == 0)
        (void)send(tio->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    fl__conn_unlock(c);
    if (!c->tcp_open || tio->fd < 0)
        return;
    uint8_t sink[4096];
    for (size_t drained = 0; drained < DRAIN_MAX;) {
        ssize_t r = recv(tio->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r <= 0)
            break;
        drained += (size_t)r;
    }
}

/* The client's handshake failed (why: the reason): fail the connection
 * and what waits on it with FL_ETLS. I/O thread. */
static void client_failed(fl__conn_t *c, const char *why)
{
    char reason[FL__TLS_WHY_MAX + FL__HOST_MAX + 64];
    snprintf(reason, sizeof reason, "TLS handshake with %s failed: %s", c->name,
             why);
    c->tls->failed = true;
    last_words(c, NULL, 0);
    fl__conn_close(c, FL_ETLS, reason);
}

/* "<host>:<port>" of our end of c (the address the peer dialed). */
static void local_name(fl__conn_t *c, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(buf, cap, "this service");
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    fl__net_addr_name(&ss, buf, cap);
}

/*
 * A plaintext fling client on our TLS port: it is told in its own
 * protocol, plaintext HELLO then a connection-level ERROR FL_ETLS (its
 * decoder wants HELLO first), and the connection closes. I/O thread.
 */
static void refuse_plaintext(fl__conn_t *c)
{
    char where[FL__HOST_MAX + 16], msg[FL__HOST_MAX + 96];
    local_name(c, where, sizeof where);
    snprintf(msg, sizeof msg,
             "%s requires TLS: connect with fling.ssl:// and a client "
             "certificate",
             where);
    fl__obuf_t *hello = fl__obuf_hello(c->net);
    fl__obuf_t *err = fl__obuf_error(0, FL_ETLS, msg);
    if (hello != NULL && err != NULL) {
        uint8_t buf[4096];
        size_t k = 0;
        if (hello->len + err->len <= sizeof buf) {
            memcpy(buf, hello->data, hello->len);
            memcpy(buf + hello->len, err->data, err->len);
            k = hello->len + err->len;
        }
        last_words(c, buf, k);
    }
    fl__obuf_free(hello);
    fl__obuf_free(err);
}

/* The server's handshake failed (why: the reason): log it, say the last
 * words, close. I/O thread. */
static void server_failed(fl__conn_t *c, const char *why)
{
    c->tls->failed = true;
    FL_LOG_RATELIMITED_KV(FL_LOG_WARN, FL__LOG_BURST,
                          FL_KV(FL_F("peer", c->name)),
                          "TLS handshake with %s failed: %s", c->name, why);
    if (fl__tls_peer_plaintext(c->tls->eng))
        refuse_plaintext(c);
    else
        last_words(c, NULL, 0);
    fl__conn_close(c, FL_ETLS, why);
}

/* The handshake (or, on a client, the peer's verdict on it) failed with
 * the engine's reason. */
static void handshake_failed(fl__conn_t *c)
{
    char why[FL__TLS_WHY_MAX + 1];
    fl__tls_why_copy(c->tls->eng, why, sizeof why);
    if (c->outbound)
        client_failed(c, why);
    else
        server_failed(c, why);
}

bool fl__tls_io_hold(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    if (tio->ready)
        return false;
    if (!tio->started && c->outbound) {
        /* The client speaks first: its ClientHello. */
        tio->started = true;
        if (fl__tls_handshake(tio->eng) == FL_ETLS) {
            handshake_failed(c);
            return true;
        }
    }
    if (send_out(c) != FL_OK)
        fl__conn_close(c, 0, "out of memory");
    return true;
}

void fl__tls_io_alloc(fl__conn_t *c, uv_buf_t *buf)
{
    fl__tls_io_t *tio = c->tls;
    size_t want = tio->cbig ? CBUF_BIG : CBUF_FIRST;
    if (tio->ccap < want) {
        uint8_t *nb = fl__realloc(tio->cbuf, want);
        if (nb == NULL) {
            *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
            return;
        }
        tio->cbuf = nb;
        tio->ccap = want;
    }
    *buf = uv_buf_init((char *)tio->cbuf, (unsigned)tio->ccap);
}

/* Room for at least `room` more bytes in c's read buffer (and for the
 * frame rx_run waits for). */
static bool rbuf_room(fl__conn_t *c, size_t room)
{
    size_t want = c->rlen + room;
    if (want < c->rneed)
        want = c->rneed;
    if (c->rcap >= want)
        return true;
    if (want < 2 * c->rcap && c->rneed <= c->rlen)
        want = 2 * c->rcap; /* a long read: not a realloc per record */
    uint8_t *nb = fl__realloc(c->rbuf, want);
    if (nb == NULL)
        return false;
    c->rbuf = nb;
    c->rcap = want;
    return true;
}

/* The handshake is done (I/O thread): the frames queued (HELLO first)
 * may go, behind the handshake's last flight (in the engine still: the
 * write takes it first). */
static void became_ready(fl__conn_t *c)
{
    c->tls->ready = true;
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)),
              "TLS handshake with %s done", c->name);
    direct_on(c);
    fl__conn_flush(c);
}

/* A read of c met rc (I/O thread, holding the read side): FL_ECLOSED
 * (close_notify) ends the connection as the stream's end does, FL_ETLS
 * closes it with OpenSSL's reason and a warn line. */
static void rx_failed(fl__conn_t *c, int rc)
{
    fl__tls_io_t *tio = c->tls;
    if (rc == FL_ECLOSED) {
        fl__conn_close(c, 0, "the peer closed the connection");
    } else if (rc == FL_ETLS) {
        char why[FL__TLS_WHY_MAX + 1];
        fl__tls_why_copy(tio->eng, why, sizeof why);
        FL_LOG_RATELIMITED_KV(
            FL_LOG_WARN, FL__LOG_BURST, FL_KV(FL_F("peer", c->name)),
            "%s: TLS: %s; closing the connection", c->name, why);
        char reason[FL__TLS_WHY_MAX + 8];
        snprintf(reason, sizeof reason, "TLS: %s", why);
        tio->failed = true;
        fl__conn_close(c, 0, reason);
    }
}

/*
 * What reads made the engine say waits for the next write, outside the
 * queue's count: a peer that makes it say more (KeyUpdates, renegotiation
 * attempts) while it does not read would grow it without end. Above
 * OUT_MAX or max_queued, c closes as when its queue overflows. True when
 * c is still open. I/O thread.
 */
static bool out_bounded(fl__conn_t *c)
{
    size_t max = c->net->max_queued < OUT_MAX ? c->net->max_queued : OUT_MAX;
    if (c->state != C_OPEN || fl__tls_out_len(c->tls->eng) <= max)
        return c->state == C_OPEN;
    FL_LOG_RATELIMITED_KV(FL_LOG_WARN, FL__LOG_BURST,
                          FL_KV(FL_F("peer", c->name)),
                          "%s: outbound queue full: the peer is not reading; "
                          "closing the connection",
                          c->name);
    fl__conn_close(c, 0, "outbound queue full: the peer is not reading");
    return false;
}

void fl__tls_io_read(fl__conn_t *c, size_t n)
{
    fl__tls_io_t *tio = c->tls;
    if (tio->failed || c->state != C_OPEN)
        return;
    if (n == tio->ccap)
        tio->cbig = true; /* more may be waiting: read more at a time */
    if (fl__tls_feed(tio->eng, tio->cbuf, n) != FL_OK) {
        fl__conn_close(c, 0, "out of memory for the TLS input");
        return;
    }
    if (!tio->ready) {
        int rc = fl__tls_handshake(tio->eng);
        if (rc == FL_ETLS) {
            handshake_failed(c);
            return;
        }
        if (rc == FL_EPENDING) {
            if (send_out(c) != FL_OK)
                fl__conn_close(c, 0, "out of memory");
            return;
        }
        became_ready(c);
        if (c->state != C_OPEN)
            return;
    }
    size_t before = c->rlen;
    int rc = FL_OK;
    for (;;) {
        if (!rbuf_room(c, RECORD_ROOM)) {
            fl__conn_close(c, 0, "out of memory for the read buffer");
            return;
        }
        size_t got = 0;
        rc = fl__tls_read(tio->eng, c->rbuf + c->rlen, c->rcap - c->rlen, &got);
        c->rlen += got;
        if (rc != FL_OK || got == 0)
            break;
    }
    if (rc == FL_ETLS && !c->rx.got_hello) {
        /* A TLS 1.3 client learns that the server refused its
         * certificate here, after its own side of the handshake. */
        handshake_failed(c);
        return;
    }
    /* The frames decrypted so far come first. */
    if (c->rlen > before) {
        c->rx_left = true;
        fl__conn_rx_more(c);
        if (c->state != C_OPEN)
            return;
    }
    rx_failed(c, rc);
    /* What the read made the engine say (an alert, a KeyUpdate's answer)
     * goes now. */
    if (out_bounded(c) && fl__tls_out_len(tio->eng) > 0)
        fl__conn_kick(c);
}

void fl__tls_io_take_left(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    fl__conn_rx_more(c);
    int rc = tio->rx_rc;
    tio->rx_rc = FL_OK;
    if (rc != FL_OK && c->state == C_OPEN)
        rx_failed(c, rc);
    (void)out_bounded(c);
}

bool fl__tls_io_read_failed(fl__conn_t *c, const char *why)
{
    fl__tls_io_t *tio = c->tls;
    if (tio->failed || c->rx.got_hello)
        return false;
    if (c->outbound) {
        client_failed(c, why);
        return true;
    }
    if (!tio->ready) {
        /* A peer that hangs up in the handshake (a port check, a client
         * that gave up): not worth a warning. */
        tio->failed = true;
        char reason[FL__TLS_WHY_MAX + 64];
        snprintf(reason, sizeof reason, "TLS handshake with %s failed: %s",
                 c->name, why);
        fl__conn_close(c, FL_ETLS, reason);
        return true;
    }
    return false;
}

bool fl__tls_io_expired(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    if (tio->ready || tio->failed)
        return false;
    char why[FL__HOST_MAX + 96];
    snprintf(why, sizeof why, "TLS handshake with %s timed out after %lld ms",
             c->name, (long long)c->net->hs_timeout_ms);
    tio->failed = true;
    if (!c->outbound)
        FL_LOG_RATELIMITED_KV(FL_LOG_WARN, FL__LOG_BURST,
                              FL_KV(FL_F("peer", c->name)), "%s", why);
    fl__conn_close(c, FL_ETLS, why);
    return true;
}

/* Room for n more bytes of ciphertext in tio->pend (c->mu, or the I/O
 * thread while writing). */
static bool pend_room(fl__tls_io_t *tio, size_t n)
{
    if (tio->pend_off > 0 && tio->pend_off == tio->pend_len)
        tio->pend_off = tio->pend_len = 0;
    if (tio->pend_cap - tio->pend_len >= n)
        return true;
    if (tio->pend_off > 0) { /* what was written goes first */
        memmove(tio->pend, tio->pend + tio->pend_off,
                tio->pend_len - tio->pend_off);
        tio->pend_len -= tio->pend_off;
        tio->pend_off = 0;
        if (tio->pend_cap - tio->pend_len >= n)
            return true;
    }
    size_t cap = tio->pend_cap > 0 ? tio->pend_cap : CBUF_FIRST;
    while (cap - tio->pend_len < n)
        cap *= 2; /* not a realloc and a copy per append */
    uint8_t *nb = fl__realloc(tio->pend, cap);
    if (nb == NULL)
        return false;
    tio->pend = nb;
    tio->pend_cap = cap;
    return true;
}

/* Seal the n buffers into records, small ones together (up to STAGE
 * bytes a record), and move everything the engine has to send (the
 * records, and before them anything a read made it say) to tio->pend.
 * c->mu, or the I/O thread while writing. FL_OK, FL_ENOMEM, FL_ETLS. */
static int seal(fl__tls_io_t *tio, const uv_buf_t *bufs, size_t n)
{
    int rc = FL_OK;
    size_t staged = 0;
    for (size_t i = 0; i < n && rc == FL_OK; i++) {
        const uint8_t *p = (const uint8_t *)bufs[i].base;
        size_t len = bufs[i].len;
        if (staged + len > STAGE && staged > 0) {
            rc = fl__tls_write(tio->eng, stage, staged);
            staged = 0;
            if (rc != FL_OK)
                break;
        }
        if (len >= STAGE) {
            rc = fl__tls_write(tio->eng, p, len);
        } else {
            memcpy(stage + staged, p, len);
            staged += len;
        }
    }
    if (rc == FL_OK && staged > 0)
        rc = fl__tls_write(tio->eng, stage, staged);
    if (rc != FL_OK)
        return rc;
    size_t len = fl__tls_out_len(tio->eng);
    if (len == 0)
        return FL_OK;
    if (!pend_room(tio, len))
        return FL_ENOMEM;
    tio->pend_len += fl__tls_out_take(tio->eng, tio->pend + tio->pend_len, len);
    return FL_OK;
}

static void seal_failed(fl__conn_t *c, int rc);

int fl__tls_io_seal(fl__conn_t *c, const uv_buf_t *bufs, size_t n,
                    uv_buf_t *out)
{
    fl__tls_io_t *tio = c->tls;
    if (tio->seal_rc != FL_OK)
        return tio->seal_rc;
    int rc = seal(tio, bufs, n);
    if (rc != FL_OK) {
        seal_failed(c, rc);
        return rc;
    }
    /* What a direct write left goes first in this write, and is written
     * when it completes (on_written). */
    c->wflight_lane[FL__LANE_SMALL] += tio->held;
    c->wflight_bytes += tio->held;
    tio->held = 0;
    *out = uv_buf_init((char *)tio->pend + tio->pend_off,
                       (unsigned)(tio->pend_len - tio->pend_off));
    return FL_OK;
}

size_t fl__tls_io_unsent_locked(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    fl__tls_io_t *tio = c->tls;
    if (tio == NULL || c->writing)
        return 0;
    size_t unsent = tio->pend_len - tio->pend_off;
    return unsent > tio->held ? unsent - tio->held : 0;
}

const char *fl__tls_io_seal_why(fl__conn_t *c)
{
    return c->tls->seal_why;
}

void fl__tls_io_written(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    if (tio == NULL)
        return;
    /* The write took everything pending. A large buffer is not kept for
     * an idle connection. */
    tio->pend_off = tio->pend_len = 0;
    if (tio->pend_cap > CBUF_BIG) {
        fl__free(tio->pend);
        tio->pend = NULL;
        tio->pend_cap = 0;
    }
}

/* Frames per direct write, as conn_write.c's DIRECT_IOV. */
#define DIRECT_FRAMES 64

/* Send what is pending straight to the socket (c->mu, fd >= 0, not
 * writing): true when all of it went, and the frames it held are then
 * written (c->done moves); false on EAGAIN or an error (the I/O
 * thread's). */
static bool pend_send(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    while (tio->pend_off < tio->pend_len) {
        ssize_t w =
            send(c->fd, tio->pend + tio->pend_off,
                 tio->pend_len - tio->pend_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w <= 0)
            return false;
        tio->pend_off += (size_t)w;
    }
    tio->pend_off = tio->pend_len = 0;
    fl__conn_dequeued_locked(c, FL__LANE_SMALL, tio->held);
    tio->held = 0;
    return true;
}

/* A seal failed (rc: FL_ENOMEM or FL_ETLS; c->mu, or the I/O thread
 * while writing): some records of the frames may be in the engine, so it
 * is never tried again (a retry would seal them twice); the frames stay
 * queued, direct writes stop, and the I/O thread's write closes the
 * connection with the reason (fl__tls_io_seal, fl__conn_flush). */
static void seal_failed(fl__conn_t *c, int rc)
{
    fl__tls_io_t *tio = c->tls;
    if (tio->seal_rc != FL_OK)
        return;
    tio->seal_rc = rc;
    if (rc == FL_ETLS) {
        char why[FL__TLS_WHY_MAX + 1];
        snprintf(tio->seal_why, sizeof tio->seal_why, "TLS: %s",
                 fl__tls_why_copy(tio->eng, why, sizeof why));
    } else {
        snprintf(tio->seal_why, sizeof tio->seal_why, "out of memory");
    }
}

bool fl__tls_io_write_locked(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    /* fd >= 0: the handshake is done and c->tls is the socket's
     * (direct_on); until then only the I/O thread writes. */
    if (c->state != C_OPEN || c->writing || c->fd < 0)
        return !fl__conn_has_queue_locked(c);
    fl__tls_io_t *tio = c->tls;
    /* What the socket did not take last time goes first; while it does
     * not drain, nothing more is sealed: the frames stay queued, counted
     * against max_queued. */
    if (!pend_send(c))
        return false;
    for (;;) {
        uv_buf_t bufs[DIRECT_FRAMES];
        size_t n = 0, bytes = 0;
        for (fl__obuf_t *b = c->out_head; b != NULL && n < DIRECT_FRAMES;
             b = b->next, n++) {
            bufs[n] = uv_buf_init((char *)b->data + b->off,
                                  (unsigned)(b->len - b->off));
            bytes += b->len - b->off;
        }
        int rc = seal(tio, n > 0 ? bufs : NULL, n);
        if (rc != FL_OK) {
            seal_failed(c, rc);
            c->fd = -1;
            return false; /* the I/O thread's write closes it */
        }
        /* The records go before anything sealed after them; their bytes
         * stay counted until the socket takes them (pend_send). */
        tio->held += bytes;
        for (size_t i = 0; i < n; i++) {
            fl__obuf_t *b = c->out_head;
            c->out_head = b->next;
            fl__obuf_free(b);
        }
        if (c->out_head == NULL)
            c->out_tail = NULL;
        if (n > 0) {
            fl__net_count(&c->net->st_writes, 1);
            fl__net_count(&c->net->st_out, n);
        }
        if (!pend_send(c))
            return false; /* EAGAIN or an error: the I/O thread's */
        if (c->out_head == NULL)
            return c->big_head == NULL; /* the big lane is the I/O thread's */
    }
}

int fl__tls_io_recv(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    if (tio->cbuf == NULL || tio->rx_rc != FL_OK)
        return UV_EAGAIN;
    ssize_t r = recv(c->rx_fd, tio->cbuf, tio->ccap, MSG_DONTWAIT);
    if (r < 0)
        return uv_translate_sys_error(errno);
    if (r == 0)
        return UV_EOF;
    if (fl__tls_feed(tio->eng, tio->cbuf, (size_t)r) != FL_OK)
        return UV_ENOMEM;
    int rc = FL_OK;
    for (;;) {
        if (!rbuf_room(c, RECORD_ROOM))
            return UV_ENOMEM;
        size_t got = 0;
        rc = fl__tls_read(tio->eng, c->rbuf + c->rlen, c->rcap - c->rlen, &got);
        c->rlen += got;
        if (rc != FL_OK || got == 0)
            break;
    }
    /* The I/O thread deals with a failure, after the frames before it. */
    tio->rx_rc = rc;
    return 0;
}

bool fl__tls_io_must_flush(fl__conn_t *c)
{
    return c->tls->rx_rc != FL_OK || fl__tls_out_len(c->tls->eng) > 0;
}
