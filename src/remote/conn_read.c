/*
 * conn_read.c - frames in (I/O thread): the read buffer, cutting it into
 * frames (rx.c) and putting fragments together (fragment.c), settling the
 * answers to our requests (the replies of a read together, under one hold
 * of the lock), handing CONNECT and INVOKE to the RPC layer's hooks, and
 * what a read leaves to do: run what the frames made ready, then write
 * what that queued (flush_dirty).
 *
 * The read side belongs to whoever holds rx_lk (conn.h); a caller may
 * read its own answer instead (await.c).
 */
#include "remote/conn.h"
#include "remote/tls_io.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define READ_CHUNK 65536u
/* The buffer of a connection whose reads never filled it (the handshake,
 * an idle peer): what an idle connection holds. */
#define READ_FIRST 4096u
#define SHRINK_ABOVE (1u << 20)

/* libuv reads into the buffer this gives, then calls on_read: the read
 * side is held from here to the end of on_read. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fl__conn_t *c = h->data;
    fl__conn_rx_hold(c);
    if (c->tls != NULL) {
        fl__tls_io_alloc(c, buf); /* ciphertext */
        return;
    }
    size_t chunk = c->rbig ? READ_CHUNK : READ_FIRST;
    size_t want = c->rneed > chunk ? c->rneed : chunk;
    if (c->rlen + chunk / 4 > want && c->rneed <= c->rlen)
        want = c->rlen + chunk; /* room for more frames behind */
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

/* Complete f (still pending, taken off its table) with
 * call->decode(body), then let go of it. */
static void settle_decoded(fl_future_t *f, const fl__req_call_t *call,
                           const uint8_t *body, size_t len)
{
    void *v = NULL;
    fl_free_cb v_free = NULL;
    char why[FL_FUTURE_MESSAGE_MAX + 1];
    int rc = call->decode(call, body, len, &v, &v_free, why, sizeof why);
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
        fl__req_call_t call;
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
        fl__conn_lock(c);
        b->locked = true;
    }
    fl__pending_t *p = fl__pending_find_locked(c, fr->h.corr);
    if (p == NULL || p->kind != FL__REQ_INVOKE || p->call.decode == NULL ||
        b->n == FL__NET_RUN_FRAMES)
        return false;
    b->a[b->n].f = fl__pending_answered_locked(c, p, &b->a[b->n].call);
    b->a[b->n].body = fr->body;
    b->a[b->n].len = fr->h.body_len;
    b->n++;
    return true;
}

/* Let go of c's lock if b holds it, and complete the calls b took. */
static void answers_settle(fl__conn_t *c, answers_t *b)
{
    if (b->locked) {
        fl__conn_unlock(c);
        b->locked = false;
    }
    for (unsigned i = 0; i < b->n; i++) {
        fl_future_t *f = b->a[i].f;
        if (fl_future_done(f)) /* timed out meanwhile */
            fl_future_release(f);
        else
            settle_decoded(f, &b->a[i].call, b->a[i].body, b->a[i].len);
    }
    b->n = 0;
}

/* Complete f, taken off its table, with the answer fr (REPLY, ERROR or
 * CONNECTED), then let go of the request's reference. */
void fl__answer_settle(const fl__rx_frame_t *fr, fl_future_t *f,
                       const fl__req_call_t *call)
{
    if (fr->h.kind == FL__K_ERROR) {
        int code = fr->m.code >= 1 && fr->m.code <= INT_MAX ? (int)fr->m.code
                                                            : FL_EPROTO;
        fl_future_fail(f, code, "%.*s", (int)fr->m.message.len,
                       fr->m.message.p);
    } else if (fl_future_done(f)) {
        /* Timed out meanwhile: nobody looks at the answer. */
    } else if (fr->h.kind == FL__K_REPLY && call->decode != NULL) {
        settle_decoded(f, call, fr->body, fr->h.body_len);
        return; /* it let go of f */
    } else {
        size_t len = fr->h.kind == FL__K_REPLY ? fr->h.body_len
                                               : sizeof(fl__connected_t);
        fl_msg_t *m = fl_msg_alloc(FL__MSG_ANSWER, len);
        if (m == NULL) {
            fl_future_fail(f, FL_ENOMEM, "could not hold the answer");
        } else {
            if (fr->h.kind == FL__K_REPLY) {
                memcpy(fl_msg_data(m), fr->body, len);
            } else {
                fl__connected_t *cd = fl_msg_data(m);
                cd->service_index = fr->m.service_index;
                cd->has_instance = (fr->h.flags & FL__F_INSTANCE) != 0;
                cd->instance = fr->m.instance;
                /* The decoder checked it: a valid id, <= FL__ID_MAX. */
                if (fr->m.endpoint.len != 0)
                    memcpy(cd->resolved, fr->m.endpoint.p, fr->m.endpoint.len);
                cd->resolved[fr->m.endpoint.len] = '\0';
            }
            /* Consumes m, also when the call timed out meanwhile. */
            fl_future_complete(f, m, fl_msg_free_cb);
        }
    }
    fl_future_release(f);
}

static void complete_answer(fl__conn_t *c, const fl__rx_frame_t *fr)
{
    fl__conn_lock(c);
    uint64_t corr = fr->h.corr;
    fl__pending_t *p = fl__pending_find_locked(c, corr);
    bool issued = corr != 0 && corr <= c->next_corr;
    /* What the answer needs of the request, which goes back to the pool
     * in this one critical section. */
    fl_future_t *f = NULL;
    fl__req_call_t call = {0};
    if (p != NULL &&
        !(fr->h.kind == FL__K_CONNECTED && p->kind != FL__REQ_CONNECT) &&
        !(fr->h.kind == FL__K_REPLY && p->kind != FL__REQ_INVOKE)) {
        f = fl__pending_answered_locked(c, p, &call);
    } else if (p != NULL) {
        issued = false; /* the wrong kind of answer */
    }
    fl__conn_unlock(c);
    if (f != NULL) {
        fl__answer_settle(fr, f, &call);
        return;
    }
    if (issued) {
        /* A request of ours that timed out: its answer is late. */
        FL_LOG_KV(FL_LOG_DEBUG,
                  FL_KV(FL_F("peer", c->name), FL_FU64("corr", corr)),
                  "%s: late answer to request %llu dropped", c->name,
                  (unsigned long long)corr);
        return;
    }
    if (fr->h.kind == FL__K_ERROR && corr == 0) {
        /* About the connection itself; the peer closes next. */
        c->peer_err = fr->m.code >= 1 && fr->m.code <= INT_MAX ? (int)fr->m.code
                                                               : FL_EPROTO;
        snprintf(c->peer_msg, sizeof c->peer_msg, "%.*s",
                 (int)fr->m.message.len, fr->m.message.p);
        /* The requests pending on c fail with it: debug only. */
        FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)),
                  "%s refused the connection: %s (%s)", c->name, c->peer_msg,
                  fl_err_name(c->peer_err));
        return;
    }
    char why[96];
    snprintf(why, sizeof why, "an answer (kind %u) to no request: corr %llu",
             fr->h.kind, (unsigned long long)corr);
    fl__conn_proto_error(c, FL_EPROTO, why);
}

/* The debug line of the peer's HELLO: the handshake is done. */
static void log_hello(const fl__conn_t *c, const fl__rx_frame_t *fr)
{
    char name[FL__NAME_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)fr->m.service_name.len,
             fr->m.service_name.p);
    FL_LOG_KV(FL_LOG_DEBUG,
              FL_KV(FL_F("peer", c->name), FL_F("service", name),
                    FL_FU64("version", fr->h.version)),
              "handshake with %s done: service %s, protocol version %u",
              c->name, name, (unsigned)fr->h.version);
}

static void dispatch(fl__conn_t *c, const fl__rx_frame_t *fr)
{
    fl__net_t *n = c->net;
    switch (fr->h.kind) {
    case FL__K_HELLO:
        /* Relaxed: a size on its own (fl__conn_peer_max). */
        atomic_store_explicit(&c->peer_max, fr->m.max_frame,
                              memory_order_relaxed);
        fl__hs_end(c);
        /* Relaxed: an id on its own (fl__conn_peer_incarnation). */
        atomic_store_explicit(&c->peer_inc, fr->m.incarnation,
                              memory_order_relaxed);
        fl__conn_lock(c);
        c->backoff_ms = 0;
        c->retry_at_ms = 0;
        fl__conn_unlock(c);
        log_hello(c, fr);
        break;
    case FL__K_CONNECT:
        if (n->hooks.on_connect != NULL)
            n->hooks.on_connect(n->hooks.arg, c, fr->h.corr, &fr->m);
        else
            fl__conn_answer_error(c, fr->h.corr, FL_ECONNECT,
                                  "this service serves no endpoints");
        break;
    case FL__K_INVOKE:
        c->in_frame = fr->size; /* for fl__conn_inbound_keep */
        /* An ask runs at most once: not while one with its id is in
         * flight (asks.c). */
        if (!(fr->h.flags & FL__F_TELL) && !fl__asks_admit(c, fr->h.corr))
            break;
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
        FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)), "%s said BYE",
                  c->name);
        break;
    default:
        break; /* the header decoder refused other kinds */
    }
}

/* Write the connections that frames were queued on while handling a
 * read (I/O thread). */
static void flush_dirty(fl__net_t *n)
{
    FL__ASSERT_IO(n);
    while (n->dirty != NULL) {
        fl__conn_t *d = n->dirty;
        n->dirty = d->dnext;
        d->dirty = false;
        fl__conn_process(d);
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
    const char *why = err == UV_EOF       ? "the peer closed the connection"
                      : err == UV_ENOBUFS ? "out of memory for the read buffer"
                                          : uv_strerror((int)err);
    if (c->tls != NULL && fl__tls_io_read_failed(c, why))
        return; /* in the TLS handshake */
    fl__conn_close(c, 0, why);
}

/* A TLS client's first bytes (a ClientHello record: 0x16 0x03) on our
 * plaintext port: its own warning line, then refused as any bad frame
 * (the ERROR frame it cannot read). */
static FL__COLD void refuse_tls_client(fl__conn_t *c, int rc, const char *why)
{
    FL_LOG_RATELIMITED_KV(FL_LOG_WARN, FL__LOG_BURST,
                          FL_KV(FL_F("peer", c->name)),
                          "a TLS client %s connected to the plaintext port "
                          "%d; refused",
                          c->name, c->net->port);
    fl__conn_proto_error_quiet(c, rc, why);
}

/* Put the FRAGMENT fr into its frame (fragment.c) and dispatch the frame
 * it completes. FL_OK, or a broken rule (`why`): close. */
static int take_fragment(fl__conn_t *c, const fl__rx_frame_t *fr, char *why,
                         size_t why_len)
{
    uint8_t *whole = NULL;
    size_t len = 0, need = 0;
    int rc =
        fl__frag_put(&c->frag, fr, c->rx.max_frame, &whole, &len, why, why_len);
    if (rc != FL_OK)
        return rc == FL_EPENDING ? FL_OK : rc;
    fl__rx_frame_t wf;
    rc = fl__rx_next(&c->rx, whole, len, &wf, &need, why, why_len);
    if (rc == FL_OK)
        dispatch(c, &wf);
    fl__free(whole);
    return rc;
}

/* Handle the frames in c's read buffer, keep what is left of the last
 * (I/O thread, holding the read side). */
static void rx_run(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    assert(c->io_rx);
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
            if (!c->rx.got_hello && !c->outbound && off == 0 && c->rlen >= 2 &&
                c->rbuf[0] == 0x16 && c->rbuf[1] == 0x03 && c->tls == NULL)
                refuse_tls_client(c, rc, why);
            else
                fl__conn_proto_error(c, rc, why);
            break;
        }
        frames++;
        if (fr.h.kind == FL__K_FRAGMENT) {
            answers_settle(c, &ans);
            rc = take_fragment(c, &fr, why, sizeof why);
            if (rc != FL_OK) {
                fl__conn_proto_error(c, rc, why);
                break;
            }
        } else if (fr.h.kind != FL__K_REPLY || !answer_take(c, &ans, &fr)) {
            answers_settle(c, &ans);
            dispatch(c, &fr);
        }
        off += fr.size;
        if (c->state == C_OPEN && frames % FL__NET_RUN_FRAMES == 0) {
            answers_settle(c, &ans);
            run_frames(n);
            n->in_read = true;
        }
        if (c->state != C_OPEN || c->in_stopped)
            break; /* closed by what it read, or what that ran; or over
                    * the inbound budget (the rest waits, inbound.c) */
    }
    answers_settle(c, &ans);
    fl__net_count(&n->st_in, frames);
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
    fl__conn_rx_hold(c); /* libuv reports some hang-ups without on_alloc */
    if (nread < 0) {
        read_failed(c, nread);
    } else if (c->tls != NULL) {
        if (nread > 0)
            fl__tls_io_read(c, (size_t)nread);
        else
            fl__conn_rx_more(c);
    } else if (nread > 0 || c->rx_left) {
        if (nread > 0 && (size_t)nread == c->rcap - c->rlen)
            c->rbig = true; /* more may be waiting: read more at a time */
        c->rlen += (size_t)nread;
        do /* again when the inbound budget resumed it meanwhile */
            rx_run(c);
        while (c->rx_left && c->state == C_OPEN);
    }
    fl__conn_rx_let_go(c);
}

void fl__conn_rx_more(fl__conn_t *c)
{
    while (c->rx_left && c->state == C_OPEN)
        rx_run(c);
}

/* Handle what a thread waiting for its answer read and left (I/O thread,
 * kicked by it): the frames after its answer, or the stream's end. */
void fl__conn_rx_take_left(fl__conn_t *c)
{
    if (!c->tcp_open)
        return;
    fl__conn_rx_hold(c);
    if (c->rx_err != 0)
        read_failed(c, c->rx_err);
    else if (c->tls != NULL)
        fl__tls_io_take_left(c); /* and a TLS failure it met */
    else
        while (c->rx_left && c->state == C_OPEN)
            rx_run(c);
    fl__conn_rx_let_go(c);
}

int fl__conn_read_start(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}
