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
 * - writing (conn_write.c fl__conn_flush): the frames of a write are
 *   sealed into one ciphertext buffer (fl__tls_io_seal) and written with
 *   the connection's uv_write, so the write path's accounting is the
 *   same. What the engine makes on its own (handshake messages, alerts,
 *   a KeyUpdate's answer) goes out at once, in order (send_out).
 * - failing: a handshake that fails or times out fails the connection
 *   with FL_ETLS naming the peer and OpenSSL's reason (the client), or
 *   logs one rate-limited warn line (the server); the last words (an
 *   alert; to a plaintext client its HELLO and ERROR) are written to the
 *   socket before it closes.
 *
 * For now every TLS connection is the I/O thread's alone: c->fd and
 * c->rx_fd stay -1, which turns the direct write and the caller's read
 * off (conn_write.c, await.c).
 */
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
/* Room kept free in c->rbuf for the next record's plaintext. */
#define RECORD_ROOM 16384u
/* Bytes the last words drain from the socket before closing it: what the
 * peer sent that we did not read would turn the close into a reset, and
 * the reset could beat our alert to the peer. */
#define DRAIN_MAX 65536u

struct fl__tls_io {
    fl__tls_t *eng;
    int fd;       /* the socket, for the last words */
    bool started; /* a client's ClientHello is made */
    bool ready;   /* the handshake is done: frames may go */
    bool failed;  /* failed: what comes is dropped */
    uint8_t *cbuf;
    size_t ccap;
    bool cbig;
    uint8_t *wbuf; /* the ciphertext of the write in flight */
    size_t wcap;
    uint8_t stage[STAGE];
    size_t staged;
};

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
    fl__free(tio->wbuf);
    fl__free(tio);
}

static void on_out_written(uv_write_t *req, int status)
{
    (void)status; /* the data write's completion deals with errors */
    out_req_t *o = fl__container_of(req, out_req_t, req);
    fl__free(o);
}

/* Write what the engine made on its own (I/O thread), behind every write
 * made before. FL_OK, FL_ENOMEM. */
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
    uv_buf_t b = uv_buf_init((char *)o->data, (unsigned)o->len);
    if (uv_write(&o->req, (uv_stream_t *)&c->tcp, &b, 1, on_out_written) < 0)
        fl__free(o); /* the socket failed: its read says so */
    return FL_OK;
}

/*
 * Our last bytes before c closes (I/O thread): buf, or what the engine
 * has to send when buf is NULL (an alert), straight to the socket when
 * nothing is queued before them in libuv (a uv_write would be cancelled
 * by the close); then what the peer sent is read and dropped, so that
 * the close is not a reset that could overtake them.
 */
static void last_words(fl__conn_t *c, const uint8_t *buf, size_t len)
{
    fl__tls_io_t *tio = c->tls;
    uint8_t alert[512];
    if (buf == NULL) {
        len = fl__tls_out_take(tio->eng, alert, sizeof alert);
        buf = alert;
    }
    if (!c->tcp_open || tio->fd < 0)
        return;
    if (len > 0 && c->tcp.write_queue_size == 0)
        (void)send(tio->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
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
    char ip[64] = "?";
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(buf, cap, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(buf, cap, "%s:%d", ip, ntohs(a->sin_port));
    }
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
    const char *why = fl__tls_why(c->tls->eng);
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
    uint8_t *nb = fl__realloc(c->rbuf, want);
    if (nb == NULL)
        return false;
    c->rbuf = nb;
    c->rcap = want;
    return true;
}

/* The handshake is done (I/O thread): the frames queued (HELLO first)
 * may go. */
static void became_ready(fl__conn_t *c)
{
    c->tls->ready = true;
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)),
              "TLS handshake with %s done", c->name);
    fl__conn_flush(c);
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
        if (send_out(c) != FL_OK) {
            fl__conn_close(c, 0, "out of memory");
            return;
        }
        if (rc == FL_EPENDING)
            return;
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
    if (send_out(c) != FL_OK) {
        fl__conn_close(c, 0, "out of memory");
        return;
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
    if (rc == FL_ECLOSED) {
        fl__conn_close(c, 0, "the peer closed the connection");
    } else if (rc == FL_ETLS) {
        const char *why = fl__tls_why(tio->eng);
        FL_LOG_RATELIMITED_KV(
            FL_LOG_WARN, FL__LOG_BURST, FL_KV(FL_F("peer", c->name)),
            "%s: TLS: %s; closing the connection", c->name, why);
        char reason[FL__TLS_WHY_MAX + 8];
        snprintf(reason, sizeof reason, "TLS: %s", why);
        tio->failed = true;
        fl__conn_close(c, 0, reason);
    }
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

int fl__tls_io_seal(fl__conn_t *c, const uv_buf_t *bufs, size_t n,
                    uv_buf_t *out)
{
    fl__tls_io_t *tio = c->tls;
    int rc = FL_OK;
    tio->staged = 0;
    for (size_t i = 0; i < n && rc == FL_OK; i++) {
        const uint8_t *p = (const uint8_t *)bufs[i].base;
        size_t len = bufs[i].len;
        /* Small frames share records; a large one goes as it is. */
        if (tio->staged + len > STAGE && tio->staged > 0) {
            rc = fl__tls_write(tio->eng, tio->stage, tio->staged);
            tio->staged = 0;
        }
        if (rc != FL_OK)
            break;
        if (len >= STAGE) {
            rc = fl__tls_write(tio->eng, p, len);
        } else {
            memcpy(tio->stage + tio->staged, p, len);
            tio->staged += len;
        }
    }
    if (rc == FL_OK && tio->staged > 0)
        rc = fl__tls_write(tio->eng, tio->stage, tio->staged);
    tio->staged = 0;
    if (rc != FL_OK)
        return rc;
    size_t len = fl__tls_out_len(tio->eng);
    if (tio->wcap < len) {
        uint8_t *nb = fl__realloc(tio->wbuf, len);
        if (nb == NULL)
            return FL_ENOMEM;
        tio->wbuf = nb;
        tio->wcap = len;
    }
    len = fl__tls_out_take(tio->eng, tio->wbuf, len);
    *out = uv_buf_init((char *)tio->wbuf, (unsigned)len);
    return FL_OK;
}

void fl__tls_io_written(fl__conn_t *c)
{
    fl__tls_io_t *tio = c->tls;
    /* A large write's buffer is not kept for an idle connection. */
    if (tio != NULL && tio->wcap > CBUF_BIG) {
        fl__free(tio->wbuf);
        tio->wbuf = NULL;
        tio->wcap = 0;
    }
}

void fl__tls_io_proto_error(fl__conn_t *c, const fl__obuf_t *e)
{
    fl__tls_io_t *tio = c->tls;
    if (!tio->ready || tio->failed || e == NULL)
        return;
    /* Sealed after everything queued before it: the close drops what a
     * write in flight still holds, as on a plaintext connection. */
    if (fl__tls_write(tio->eng, e->data, e->len) != FL_OK)
        return;
    uint8_t buf[FL__ERRMSG_MAX + 512];
    size_t len = fl__tls_out_take(tio->eng, buf, sizeof buf);
    tio->failed = true;
    last_words(c, buf, len);
}
