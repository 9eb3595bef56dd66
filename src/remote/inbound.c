/*
 * inbound.c - the budget of inbound calls per connection
 * (docs/wire-protocol.md, "Flow control"): the bytes of the INVOKE frames
 * the RPC layer kept past on_invoke (queued calls) and has not finished.
 * Over the net's max_inbound the connection stops being read, so TCP
 * pushes back on the peer; it is read again once its calls drain to half
 * of the budget, starting with the frames already in its read buffer.
 *
 * in_held is added to on the I/O thread and taken from on any thread;
 * in_paused is set and cleared by the I/O thread. A finishing call that
 * leaves in_held at the low-water mark or below while in_paused is set
 * kicks the I/O thread, which resumes (fl__conn_inbound_resume from
 * fl__conn_process). Both sides use sequentially consistent operations:
 * the I/O thread stores in_paused and then loads in_held, a finishing call
 * subtracts from in_held and then loads in_paused, so at least one of them
 * sees the other and a drain is never missed.
 */
#include "remote/conn.h"

/* Reading resumes at or below this. */
static size_t low_water(const fl__net_t *n)
{
    return n->max_inbound / 2;
}

/* Stop reading c: over the budget (I/O thread, in a read). */
static void inbound_stop(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    c->in_stopped = true;
    atomic_store(&c->in_paused, true);
    uv_read_stop((uv_stream_t *)&c->tcp);
    fl__net_count(&n->st_in_pauses, 1);
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)),
              "%s: %zu bytes of calls queued (budget %zu): not reading",
              c->name, atomic_load(&c->in_held), n->max_inbound);
    /* The calls may have drained between the add and the store above,
     * with nobody to see the pause: look again once the read is done. */
    if (atomic_load(&c->in_held) <= low_water(n))
        fl__conn_kick(c);
}

size_t fl__conn_inbound_keep(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    size_t len = c->in_frame;
    fl__conn_retain_io(c);
    size_t held = atomic_fetch_add(&c->in_held, len) + len;
    /* Relaxed: a statistic, written by this thread only. */
    if (held > atomic_load_explicit(&n->st_in_peak, memory_order_relaxed))
        atomic_store_explicit(&n->st_in_peak, held, memory_order_relaxed);
    if (held > n->max_inbound && !c->in_stopped)
        inbound_stop(c);
    return len;
}

void fl__conn_inbound_done(fl__conn_t *c, size_t n)
{
    size_t held = atomic_fetch_sub(&c->in_held, n) - n;
    if (held <= low_water(c->net) && atomic_load(&c->in_paused))
        fl__conn_kick(c);
    fl__conn_release_turn(c);
}

void fl__conn_inbound_resume(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    if (!c->in_stopped || atomic_load(&c->in_held) > low_water(n))
        return;
    c->in_stopped = false;
    atomic_store(&c->in_paused, false);
    if (c->state != C_OPEN)
        return;
    int rc = fl__conn_read_start(c);
    if (rc != 0) {
        fl__conn_close(c, 0, uv_strerror(rc));
        return;
    }
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)),
              "%s: calls drained: reading again", c->name);
    /* The frames read before the stop come first. Inside c's own read
     * (the frames' turns drained it), on_read goes round again. */
    if (c->io_rx) {
        c->rx_left = true;
    } else {
        fl__conn_rx_hold(c);
        c->rx_left = true;
        fl__conn_rx_take_left(c); /* lets go of the read side */
    }
}
