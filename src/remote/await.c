/*
 * await.c - a caller blocked on its own call reads the answer itself
 * (fl__conn_await): for a short while it polls the connection's socket,
 * and when its answer heads the stream it settles its future on its own
 * thread, sparing the I/O thread's wake-up. Whatever else it reads, or
 * the stream's end, it leaves to the I/O thread, in order.
 *
 * The read side changes owner under rx_lk (conn.h); the waiting thread
 * only ever tries it (fl__spin_trylock), never waits for it.
 */
#include "remote/conn.h"
#include "remote/tls_io.h"

#include <errno.h>
#include <sched.h>
#include <sys/socket.h>

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
    fl__conn_lock(c);
    fl__pending_t *p = fl__pending_find_locked(c, fr.h.corr);
    if (p == NULL || p->f != f || p->kind != FL__REQ_INVOKE) {
        fl__conn_unlock(c);
        return;
    }
    fl__req_call_t call;
    fl_future_t *pf = fl__pending_answered_locked(c, p, &call);
    fl__conn_unlock(c);
    fl__answer_settle(&fr, pf, &call);
    fl__net_count(&c->net->st_in, 1);
    fl__net_count(&c->net->st_caller_answers, 1);
    c->rlen -= fr.size;
    if (c->rlen > 0)
        memmove(c->rbuf, c->rbuf + fr.size, c->rlen);
}

/* await_read on a TLS connection (holding the read side, which this lets
 * go of): the ciphertext read is decrypted into the read buffer
 * (tls_io.c), then as on a plaintext one. */
static bool await_read_tls(fl__conn_t *c, fl_future_t *f)
{
    int e = fl__tls_io_recv(c);
    if (e == UV_EAGAIN || e == UV_EINTR) {
        fl__spin_unlock(&c->rx_lk);
        return false;
    }
    fl__net_count(&c->net->st_caller_reads, 1);
    if (e != 0)
        c->rx_err = e;
    else if (c->rlen > 0)
        await_take(c, f);
    c->rx_left = c->rlen > 0;
    /* What follows its answer, a failure, or what the read made the
     * engine say: the I/O thread's. */
    bool kick = c->rx_left || c->rx_err != 0 || fl__tls_io_must_flush(c);
    if (kick && c->rx_err == 0)
        c->rx_left = true;
    /* Release: pairs with fl__conn_rx_hold's acquire (conn.h). */
    fl__spin_unlock(&c->rx_lk);
    if (kick)
        fl__conn_kick(c);
    return fl_future_done(f);
}

/* One attempt by the thread waiting for f to read f's answer from c's
 * socket itself. True when f is done. */
static bool await_read(fl__conn_t *c, fl_future_t *f)
{
    /* The trylock's acquire exchange pairs with the release store of
     * fl__conn_rx_let_go: what the I/O thread did with the read side
     * happens before this thread looks at it. */
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
    /* rx_fd >= 0: c->tls is the open socket's (tls_io.c). */
    if (c->tls != NULL)
        return await_read_tls(c, f);
    ssize_t r = recv(c->rx_fd, c->rbuf, c->rcap, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        fl__spin_unlock(&c->rx_lk);
        return false;
    }
    fl__net_count(&c->net->st_caller_reads, 1);
    if (r <= 0) {
        c->rx_err = r == 0 ? UV_EOF : uv_translate_sys_error(errno);
    } else {
        c->rlen = (size_t)r;
        await_take(c, f);
        c->rx_left = c->rlen > 0;
    }
    bool kick = c->rx_left || c->rx_err != 0;
    /* Release: pairs with fl__conn_rx_hold's acquire (conn.h). */
    fl__spin_unlock(&c->rx_lk);
    if (kick)
        fl__conn_kick(c); /* the rest is the I/O thread's */
    return fl_future_done(f);
}

int fl__conn_await(fl__conn_t *c, fl_future_t *f)
{
    /* Relaxed: a setting on its own, changed by tests between calls. */
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
