/*
 * wire_raw.h - the raw peer of the remote tests (hostile_test.c,
 * backpressure_test.c, the client_*_test.c programs): a plain POSIX socket
 * (blocking, with SO_RCVTIMEO and SO_SNDTIMEO so nothing hangs) that
 * speaks docs/wire-protocol.md frame by frame, built and checked with the
 * codec of src/remote/frame.h; the raw sockets it runs on, tracked so that
 * a group teardown can close what a failed case left open.
 *
 * Header-only (static inline), like wire_client.h (whose calc endpoint and
 * constants it uses), because every test is its own program. Helpers fail
 * the test on anything unexpected and belong to the test's thread.
 */
#ifndef WIRE_RAW_H
#define WIRE_RAW_H

#include "wire_client.h"

#include "common/internal.h"
#include "remote/fragment.h"

/* SO_RCVTIMEO / SO_SNDTIMEO of the raw sockets. */
#define IO_TIMEOUT_MS 10000

/* ---- raw sockets --------------------------------------------------------- */

/* Raw sockets still open, so that a group teardown can close what a failed
 * case left open. */
#define RAW_MAX_FDS 16
typedef struct raw_fds {
    int fd[RAW_MAX_FDS];
    size_t n;
} raw_fds_t;

static inline raw_fds_t *raw_fds(void)
{
    static raw_fds_t fds;
    return &fds;
}

/* Closes fd and forgets it. -1 is a no-op. */
static inline void raw_fd_close(int fd)
{
    if (fd < 0)
        return;
    raw_fds_t *s = raw_fds();
    for (size_t i = 0; i < s->n; i++) {
        if (s->fd[i] == fd) {
            s->fd[i] = s->fd[--s->n];
            break;
        }
    }
    close(fd);
}

/* Closes every raw socket still open. */
static inline void raw_fd_close_all(void)
{
    raw_fds_t *s = raw_fds();
    while (s->n > 0)
        raw_fd_close(s->fd[0]);
}

/* Gives fd send and receive timeouts of IO_TIMEOUT_MS and remembers it. */
static inline void raw_fd_adopt(int fd)
{
    raw_fds_t *s = raw_fds();
    assert_true(s->n < RAW_MAX_FDS);
    s->fd[s->n++] = fd;
    struct timeval tv = {IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000};
    assert_int_equal(0,
                     setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    assert_int_equal(0,
                     setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
}

/* A TCP socket with timeouts; rcvbuf > 0 sets SO_RCVBUF (before connect or
 * listen, so that the window is small from the start). */
static inline int raw_socket(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    raw_fd_adopt(fd);
    if (rcvbuf > 0)
        assert_int_equal(
            0, setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf));
    return fd;
}

static inline struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* A raw connection to 127.0.0.1:port with timeouts and TCP_NODELAY. */
static inline int raw_connect(int port, int rcvbuf)
{
    int fd = raw_socket(rcvbuf);
    int one = 1;
    assert_int_equal(
        0, setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    struct sockaddr_in sa = loopback(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect 127.0.0.1:%d: %s", port, strerror(errno));
    return fd;
}

/* A raw listening socket on 127.0.0.1, any free port (*port); rcvbuf as
 * raw_socket (accepted sockets inherit it). accept() on it is bounded by
 * its SO_RCVTIMEO. */
static inline int raw_listen(int rcvbuf, int *port)
{
    int fd = raw_socket(rcvbuf);
    struct sockaddr_in sa = loopback(0);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&sa, sizeof sa));
    assert_int_equal(0, listen(fd, 4));
    socklen_t len = sizeof sa;
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &len));
    *port = ntohs(sa.sin_port);
    return fd;
}

/* The local port of a socket. */
static inline int raw_local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &len));
    return ntohs(sa.sin_port);
}

/* ---- the raw peer: frames ------------------------------------------------ */

/* What a raw connection's bytes go through instead of the socket itself
 * (tls_raw.h's TLS): send and recv as send(2) and recv(2) (-1 and errno
 * on failure, recv 0 at the end of the stream); close frees arg (the
 * socket is raw_close's). */
typedef struct raw_io {
    ssize_t (*send)(void *arg, const void *p, size_t n);
    ssize_t (*recv)(void *arg, void *p, size_t n);
    void (*close)(void *arg);
} raw_io_t;

/* One end of a raw connection and what its HELLOs say. */
typedef struct raw {
    int fd;
    const raw_io_t *io; /* NULL: the socket itself */
    void *io_arg;
    bool hello_seen;    /* the peer's HELLO has been read */
    uint32_t max_frame; /* the maximum we announce in HELLO */
    const char *name;   /* the name we announce */
    uint32_t peer_max;  /* what the peer's HELLO must announce */
    const char *peer_name;
    const char *endpoint; /* where send_num and expect_usable call */
    /* The peer's frames in fragments, put together by read_frame unless
     * keep_fragments (then it returns each FRAGMENT as it comes). */
    bool keep_fragments;
    fl__frag_t frag;
} raw_t;

/* A raw end on fd: we announce max_frame and name, the peer's HELLO must
 * announce peer_max and peer_name, calls go to endpoint. */
static inline raw_t raw_of(int fd, uint32_t max_frame, const char *name,
                           uint32_t peer_max, const char *peer_name,
                           const char *endpoint)
{
    raw_t r;
    memset(&r, 0, sizeof r);
    r.fd = fd;
    r.max_frame = max_frame;
    r.name = name;
    r.peer_max = peer_max;
    r.peer_name = peer_name;
    r.endpoint = endpoint;
    return r;
}

static inline void raw_close(raw_t *r)
{
    if (r->io != NULL)
        r->io->close(r->io_arg);
    r->io = NULL;
    r->io_arg = NULL;
    raw_fd_close(r->fd);
    r->fd = -1;
    fl__frag_reset(&r->frag);
}

typedef struct frame {
    fl__frame_hdr_t h;
    fl__frame_meta_t m; /* its strings point into meta */
    uint8_t *meta;      /* h.meta_len bytes */
    uint8_t *body;      /* h.body_len bytes */
} frame_t;

static inline void frame_clear(frame_t *f)
{
    free(f->meta);
    free(f->body);
    memset(f, 0, sizeof *f);
}

static inline fl__str_t str_of(const char *s)
{
    fl__str_t r = {s, (uint16_t)strlen(s)};
    return r;
}

/* Copies a frame string into buf as a C string. */
static inline const char *str_copy(fl__str_t s, char *buf, size_t n)
{
    snprintf(buf, n, "%.*s", (int)s.len, s.p ? s.p : "");
    return buf;
}

static inline const char *kind_name(unsigned k)
{
    static const char *const names[] = {
        "?",     "HELLO", "CONNECT", "CONNECTED", "INVOKE",  "REPLY",
        "ERROR", "PING",  "PONG",    "BYE",       "FRAGMENT"};
    return k <= FL__K_FRAGMENT ? names[k] : "?";
}

/* A one-line description of a received frame, for failure messages. */
static inline const char *describe(const frame_t *f, char *buf, size_t n)
{
    if (f->h.kind == FL__K_ERROR) {
        char msg[FL__ERRMSG_MAX + 1];
        snprintf(buf, n, "ERROR %s (%u) corr %llu \"%s\"",
                 fl_err_name((int)f->m.code), (unsigned)f->m.code,
                 (unsigned long long)f->h.corr,
                 str_copy(f->m.message, msg, sizeof msg));
    } else {
        snprintf(buf, n, "%s corr %llu (meta %u, body %u bytes)",
                 kind_name(f->h.kind), (unsigned long long)f->h.corr,
                 (unsigned)f->h.meta_len, (unsigned)f->h.body_len);
    }
    return buf;
}

/* Sends all n bytes (fails the test on error or timeout). */
static inline void raw_send(raw_t *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t rc = r->io != NULL ? r->io->send(r->io_arg, b, n)
                                   : send(r->fd, b, n, MSG_NOSIGNAL);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            fail_msg("send: %s", rc < 0 ? strerror(errno) : "sent nothing");
        b += rc;
        n -= (size_t)rc;
    }
}

/* Reads up to n bytes: returns n, or fewer if the peer closed first (EOF
 * or ECONNRESET). Fails the test on a timeout or another error. */
static inline size_t raw_recv_upto(raw_t *r, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t rc = r->io != NULL ? r->io->recv(r->io_arg, buf + got, n - got)
                                   : recv(r->fd, buf + got, n - got, 0);
        if (rc > 0) {
            got += (size_t)rc;
            continue;
        }
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            fail_msg("nothing from the peer in %d ms (%zu of %zu bytes "
                     "read)",
                     IO_TIMEOUT_MS, got, n);
        if (rc < 0 && errno != ECONNRESET)
            fail_msg("recv: %s", strerror(errno));
        break;
    }
    return got;
}

enum { RD_FRAME = 1, RD_CLOSED = 2 };

/* Reads exactly n bytes. Returns RD_FRAME, or RD_CLOSED if the peer closed
 * (EOF or ECONNRESET) before the first byte and at_start; fails the test
 * on a timeout, another error, or a close inside the frame. */
static inline int read_exact(raw_t *r, uint8_t *buf, size_t n, bool at_start)
{
    size_t got = raw_recv_upto(r, buf, n);
    if (got == n)
        return RD_FRAME;
    if (got == 0 && at_start)
        return RD_CLOSED;
    fail_msg("the peer closed the connection inside a frame (%zu of %zu "
             "bytes)",
             got, n);
    return RD_CLOSED;
}

/* The frame f of the whole frame's bytes (fl__frag_put's, freed here). */
static inline void frame_of_whole(raw_t *r, frame_t *f, uint8_t *whole,
                                  size_t len)
{
    char why[256] = "";
    int rc =
        fl__frame_decode_hdr(whole, len, r->max_frame, &f->h, why, sizeof why);
    if (rc != FL_OK)
        fail_msg("the peer sent a bad header in fragments: %s (%s)",
                 fl_err_name(rc), why);
    f->meta = malloc(f->h.meta_len ? f->h.meta_len : 1);
    f->body = malloc(f->h.body_len ? f->h.body_len : 1);
    assert_non_null(f->meta);
    assert_non_null(f->body);
    memcpy(f->meta, whole + FL__FRAME_HDR, f->h.meta_len);
    memcpy(f->body, whole + FL__FRAME_HDR + f->h.meta_len, f->h.body_len);
    fl__free(whole);
}

/* Reads one frame as it comes (fragments put together unless
 * r->keep_fragments). The peer's frames must obey the protocol (our
 * maximum frame size included). */
static inline int read_frame(raw_t *r, frame_t *f)
{
    memset(f, 0, sizeof *f);
    uint8_t hdr[FL__FRAME_HDR];
    char why[256] = "";
    int rc;
    for (;;) {
        if (read_exact(r, hdr, sizeof hdr, true) == RD_CLOSED)
            return RD_CLOSED;
        rc = fl__frame_decode_hdr(hdr, sizeof hdr, r->max_frame, &f->h, why,
                                  sizeof why);
        if (rc != FL_OK)
            fail_msg("the peer sent a bad header: %s (%s)", fl_err_name(rc),
                     why);
        /* Metadata and body in one block: a fragment carries both. */
        f->meta = malloc(f->h.meta_len + (size_t)f->h.body_len + 1);
        assert_non_null(f->meta);
        read_exact(r, f->meta, f->h.meta_len + (size_t)f->h.body_len, false);
        if (f->h.kind != FL__K_FRAGMENT || r->keep_fragments)
            break;
        fl__rx_frame_t fr = {.h = f->h, .body = f->meta + f->h.meta_len};
        uint8_t *whole = NULL;
        size_t len = 0;
        rc = fl__frag_put(&r->frag, &fr, r->max_frame, &whole, &len, why,
                          sizeof why);
        free(f->meta);
        f->meta = NULL;
        if (rc == FL_EPENDING)
            continue;
        if (rc != FL_OK)
            fail_msg("the peer sent bad fragments: %s (%s)", fl_err_name(rc),
                     why);
        frame_of_whole(r, f, whole, len);
        break;
    }
    if (f->body == NULL) {
        f->body = malloc(f->h.body_len ? f->h.body_len : 1);
        assert_non_null(f->body);
        memcpy(f->body, f->meta + f->h.meta_len, f->h.body_len);
    }
    rc = fl__frame_decode_meta(&f->h, f->meta, &f->m, why, sizeof why);
    if (rc != FL_OK)
        fail_msg("the peer sent bad %s metadata: %s (%s)", kind_name(f->h.kind),
                 fl_err_name(rc), why);
    return RD_FRAME;
}

/* Builds a frame's bytes: header, metadata (m NULL: none), body. Caller
 * frees. */
static inline uint8_t *frame_bytes(uint8_t kind, uint16_t flags, uint64_t corr,
                                   const fl__frame_meta_t *m, const void *body,
                                   size_t body_len, size_t *out_len)
{
    static uint8_t meta[FL__META_MAX];
    size_t meta_len = 0;
    if (m != NULL) {
        meta_len = fl__frame_encode_meta(kind, flags, m, meta, sizeof meta);
        assert_true(meta_len > 0);
    }
    fl__frame_hdr_t h = {
        FL__PROTO_VERSION, kind, flags, corr, (uint32_t)meta_len,
        (uint32_t)body_len};
    size_t n = FL__FRAME_HDR + meta_len + body_len;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    fl__frame_encode_hdr(buf, &h);
    if (meta_len != 0)
        memcpy(buf + FL__FRAME_HDR, meta, meta_len);
    if (body_len != 0)
        memcpy(buf + FL__FRAME_HDR + meta_len, body, body_len);
    *out_len = n;
    return buf;
}

static inline void send_frame(raw_t *r, uint8_t kind, uint16_t flags,
                              uint64_t corr, const fl__frame_meta_t *m,
                              const void *body, size_t body_len)
{
    size_t n;
    uint8_t *buf = frame_bytes(kind, flags, corr, m, body, body_len, &n);
    raw_send(r, buf, n);
    free(buf);
}

/* INVOKE metadata for endpoint/service/method (unfenced). */
static inline fl__frame_meta_t invoke_meta(const char *endpoint,
                                           uint32_t service, uint32_t method)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of(endpoint);
    m.service_index = service;
    m.method_index = method;
    return m;
}

/* A packed Num; caller frees. */
static inline uint8_t *pack_num(int64_t v, const char *text, size_t *len)
{
    Flhostile__Num n = FLHOSTILE__NUM__INIT;
    n.v = v;
    n.text = (char *)text;
    *len = flhostile__num__get_packed_size(&n);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    flhostile__num__pack(&n, b);
    return b;
}

/* The bytes of an INVOKE (flags, corr) of service/method on r->endpoint
 * carrying Num(v, text): *n bytes, of which the last *body_len are the
 * body (body_len may be NULL). Caller frees. */
static inline uint8_t *num_frame(const raw_t *r, uint16_t flags, uint64_t corr,
                                 uint32_t service, uint32_t method, int64_t v,
                                 const char *text, size_t *n, size_t *body_len)
{
    size_t len;
    uint8_t *body = pack_num(v, text, &len);
    fl__frame_meta_t m = invoke_meta(r->endpoint, service, method);
    uint8_t *buf = frame_bytes(FL__K_INVOKE, flags, corr, &m, body, len, n);
    free(body);
    if (body_len != NULL)
        *body_len = len;
    return buf;
}

/* Sends INVOKE (an ask with corr, or a tell with corr 0 and FL__F_TELL). */
static inline void send_invoke(raw_t *r, uint16_t flags, uint64_t corr,
                               const char *endpoint, uint32_t service,
                               uint32_t method, const void *body,
                               size_t body_len)
{
    fl__frame_meta_t m = invoke_meta(endpoint, service, method);
    send_frame(r, FL__K_INVOKE, flags, corr, &m, body, body_len);
}

/* Sends an ask INVOKE of service/method on r->endpoint with Num(v, text). */
static inline void send_num(raw_t *r, uint64_t corr, uint32_t service,
                            uint32_t method, int64_t v, const char *text)
{
    size_t n;
    uint8_t *buf = num_frame(r, 0, corr, service, method, v, text, &n, NULL);
    raw_send(r, buf, n);
    free(buf);
}

/* ---- the raw peer: the protocol ------------------------------------------ */

/* Checks the peer's HELLO: the maximum and name r expects. */
static inline void check_peer_hello(const raw_t *r, const frame_t *f)
{
    char name[FL__NAME_MAX + 1];
    assert_int_equal(FL__K_HELLO, f->h.kind);
    assert_int_equal(r->peer_max, f->m.max_frame);
    assert_string_equal(r->peer_name,
                        str_copy(f->m.service_name, name, sizeof name));
}

/* The next frame that is not the peer's (first) HELLO; a PING from the
 * peer is answered with PONG and skipped. Returns RD_FRAME or
 * RD_CLOSED. */
static inline int next_frame(raw_t *r, frame_t *f)
{
    for (;;) {
        if (read_frame(r, f) == RD_CLOSED)
            return RD_CLOSED;
        if (f->h.kind == FL__K_HELLO && !r->hello_seen) {
            check_peer_hello(r, f);
            r->hello_seen = true;
            frame_clear(f);
            continue;
        }
        if (f->h.kind == FL__K_HELLO)
            fail_msg("the peer sent a second HELLO");
        if (f->h.kind == FL__K_PING) {
            frame_clear(f);
            send_frame(r, FL__K_PONG, 0, 0, NULL, NULL, 0);
            continue;
        }
        return RD_FRAME;
    }
}

/* The next frame; fails the test, saying what was wanted (a `kind` with
 * corr), if the peer closed the connection instead. */
static inline void next_frame_or_fail(raw_t *r, frame_t *f, const char *kind,
                                      uint64_t corr)
{
    if (next_frame(r, f) == RD_CLOSED)
        fail_msg("want %s corr %llu, the peer closed the connection", kind,
                 (unsigned long long)corr);
}

/* Sends our HELLO (announcing r->max_frame and r->name) and reads the
 * peer's unless it has been read. */
static inline void raw_hello(raw_t *r)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.max_frame = r->max_frame;
    m.service_name = str_of(r->name);
    send_frame(r, FL__K_HELLO, 0, 0, &m, NULL, 0);
    if (!r->hello_seen) {
        frame_t f;
        if (read_frame(r, &f) == RD_CLOSED)
            fail_msg("the peer closed the connection instead of HELLO");
        char d[1200];
        if (f.h.kind != FL__K_HELLO)
            fail_msg("want HELLO first, got %s", describe(&f, d, sizeof d));
        check_peer_hello(r, &f);
        r->hello_seen = true;
        frame_clear(&f);
    }
}

static inline void send_connect(raw_t *r, uint64_t corr, const char *endpoint,
                                const char *gateway)
{
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.endpoint = str_of(endpoint);
    m.gateway = str_of(gateway);
    send_frame(r, FL__K_CONNECT, 0, corr, &m, NULL, 0);
}

/* Checks that f is ERROR `code` with a message, and with `corr` unless
 * any_corr; copies the message into msg (may be NULL). */
static inline void check_error(const frame_t *f, int code, uint64_t corr,
                               bool any_corr, char *msg, size_t msg_len)
{
    char d[1200];
    if (f->h.kind != FL__K_ERROR || (int)f->m.code != code ||
        (!any_corr && f->h.corr != corr)) {
        if (any_corr)
            fail_msg("want ERROR %s, got %s", fl_err_name(code),
                     describe(f, d, sizeof d));
        else
            fail_msg("want ERROR %s corr %llu, got %s", fl_err_name(code),
                     (unsigned long long)corr, describe(f, d, sizeof d));
    }
    if (f->m.message.len == 0)
        fail_msg("ERROR %s without a message", fl_err_name(code));
    if (msg != NULL)
        str_copy(f->m.message, msg, msg_len);
}

/* The next frame must be ERROR `code` with `corr`; its message is copied
 * into msg (may be NULL). */
static inline void expect_error(raw_t *r, int code, uint64_t corr, char *msg,
                                size_t msg_len)
{
    frame_t f;
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want ERROR %s corr %llu, the peer closed the connection",
                 fl_err_name(code), (unsigned long long)corr);
    check_error(&f, code, corr, false, msg, msg_len);
    frame_clear(&f);
}

/* The peer must close the connection now: no further frame. */
static inline void expect_closed(raw_t *r)
{
    frame_t f;
    char d[1200];
    if (read_frame(r, &f) != RD_CLOSED)
        fail_msg("want the connection closed, got %s",
                 describe(&f, d, sizeof d));
}

/* A protocol or handshake error: ERROR `code` (any corr: the offending
 * frame may not have a usable one), then the peer closes. */
static inline void expect_error_then_close(raw_t *r, int code, char *msg,
                                           size_t msg_len)
{
    frame_t f;
    if (next_frame(r, &f) == RD_CLOSED)
        fail_msg("want ERROR %s, the peer closed the connection without it",
                 fl_err_name(code));
    check_error(&f, code, 0, true, msg, msg_len);
    frame_clear(&f);
    expect_closed(r);
}

static inline void expect_connected(raw_t *r, uint64_t corr, uint32_t index)
{
    frame_t f;
    char d[1200];
    next_frame_or_fail(r, &f, "CONNECTED", corr);
    if (f.h.kind != FL__K_CONNECTED || f.h.corr != corr ||
        f.m.service_index != index)
        fail_msg("want CONNECTED corr %llu index %u, got %s (index %u)",
                 (unsigned long long)corr, (unsigned)index,
                 describe(&f, d, sizeof d), (unsigned)f.m.service_index);
    frame_clear(&f);
}

/* CONNECT to r->endpoint's gateway with corr: CONNECTED with `index`. */
static inline void raw_attach(raw_t *r, uint64_t corr, const char *gateway,
                              uint32_t index)
{
    send_connect(r, corr, r->endpoint, gateway);
    expect_connected(r, corr, index);
}

/* Checks that f is a REPLY with corr carrying Num(v, text). */
static inline void check_num_reply(const frame_t *f, uint64_t corr, int64_t v,
                                   const char *text)
{
    char d[1200];
    if (f->h.kind != FL__K_REPLY || f->h.corr != corr)
        fail_msg("want REPLY corr %llu, got %s", (unsigned long long)corr,
                 describe(f, d, sizeof d));
    Flhostile__Num *n = flhostile__num__unpack(NULL, f->h.body_len, f->body);
    if (n == NULL)
        fail_msg("REPLY corr %llu: the body (%u bytes) is not a Num",
                 (unsigned long long)corr, (unsigned)f->h.body_len);
    assert_int_equal(v, n->v);
    assert_string_equal(text, n->text);
    flhostile__num__free_unpacked(n, NULL);
}

/* The next frame must be a REPLY with corr carrying Num(v, text). */
static inline void expect_num_reply(raw_t *r, uint64_t corr, int64_t v,
                                    const char *text)
{
    frame_t f;
    next_frame_or_fail(r, &f, "REPLY", corr);
    check_num_reply(&f, corr, v, text);
    frame_clear(&f);
}

/* The connection is still usable: Add(v) with corr is answered v + 1. */
static inline void expect_usable(raw_t *r, uint64_t corr, int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "raw-%lld", (long long)v);
    send_num(r, corr, CALC_INDEX, M_ADD, v, text);
    expect_num_reply(r, corr, v + 1, text);
}

/* ---- group setup and teardown around wire_client.h's fixture ------------- */

/* Group setup: fixture_start with server `name` (max_frame: 0 for the
 * default) and endpoint `id` implementing calc_services(); *state gets the
 * fixture. 0, or -1 having printed why. */
static inline int raw_fixture_setup(void **state, const char *name,
                                    uint32_t max_frame, const char *id)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    if (fixture_start(fx, name, max_frame, 0, id, calc_services(), 2) != 0) {
        fixture_end(fx);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

/* Group teardown: closes what a failed case left open, ends the fixture.
 * (The session's verdict is the last case's: cmocka 1.1 does not fail the
 * run for a failed group teardown.) */
static inline int raw_fixture_teardown(void **state)
{
    raw_fd_close_all();
    if (*state != NULL) {
        fixture_end(*state);
        free(*state);
    }
    return 0;
}

/* A session's last case: the good client stops (at least `calls` answers,
 * all right), the endpoint terminates, so every request the server ever
 * dispatched to it has run, and none of them was a poisoned one. */
static inline void raw_session_end(fixture_t *fx, uint64_t calls)
{
    assert_true(fx->good.running);
    good_stop(&fx->good);
    /* Stopped: no waiting, only the checks. */
    good_wait(&fx->good, calls, 0);
    fl_future_t *t = fl_rpc_endpoint_close(fx->ep);
    assert_non_null(t);
    assert_fl_ok(fl_future_wait(t, WAIT_MS));
    fl_future_release(t);
    assert_int_equal(0, atomic_load(&fx->calc.poison_hits));
}

/* ---- the program -------------------------------------------------------- */

/* Runs the group `tests` (n cases) with sink as fling's log sink and cv,
 * the sink's condition, made for the run; teardown after the group.
 * Returns the number of cases failed. Main thread; blocks. */
static inline int raw_run_logged(const char *name,
                                 const struct CMUnitTest *tests, size_t n,
                                 fl_log_cb sink, pthread_cond_t *cv,
                                 CMFixtureFunction teardown)
{
    fl_test_cond_init(cv);
    fl_log_set_handler(sink, NULL);
    int failed = _cmocka_run_group_tests(name, tests, n, NULL, teardown);
    fl_log_set_handler(NULL, NULL);
    pthread_cond_destroy(cv);
    return failed;
}

#endif /* WIRE_RAW_H */
