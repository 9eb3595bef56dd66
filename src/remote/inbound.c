/*
 * inbound.c - the budget of inbound calls per connection
 * (docs/wire-protocol.md, "Flow control"): the bytes of the INVOKE frames
 * the RPC layer kept past on_invoke (queued calls) and has not finished.
 * Over the net's max_inbound the connection stops being read, so TCP
 * pushes back on the peer; it is read again once its calls drain to half
 * of the budget, starting with the frames already in its read buffer.
 *
 * in_held is added to on the I/O thread and taken from on any thread;
 * in_paused (stopped for the budget) is set and cleared by the I/O
 * thread. A finishing call that leaves in_held at the low-water mark or
 * below while in_paused is set kicks the I/O thread, which resumes
 * (fl__conn_inbound_resume from fl__conn_process). Both sides use
 * sequentially consistent operations: the I/O thread stores in_paused and
 * then loads in_held, a finishing call subtracts from in_held and then
 * loads in_paused, so at least one of them sees the other and a drain is
 * never missed.
 *
 * The mailbox bound stops reading too (docs/wire-protocol.md, "Flow
 * control"): a call handed to an actor whose mailbox is then over its
 * bound stops reading c, and arms a drain wait (actor/flow.h) whose
 * callback kicks the I/O thread once that mailbox has drained to half its
 * bound. The two reasons are kept apart: in_paused says the budget,
 * in_mbox the mailbox, and c is read again once neither holds. So a
 * finishing call kicks only a connection stopped for the budget, once
 * per stop; one stopped for a mailbox alone is left to the drain wait.
 * The wait is cancelled when c closes, before c can be freed; the
 * callback sets in_drained before its kick, and the kick list's lock
 * orders the two for the I/O thread.
 */
#include "remote/conn.h"

#include "actor/flow.h"

/* Reading resumes at or below this. */
static size_t low_water(const fl__net_t *n)
{
    return n->max_inbound / 2;
}

/* Stop reading c, for either reason (I/O thread, in a read): the rest
 * of the read waits in the read buffer. */
static void read_stop(fl__conn_t *c)
{
    c->in_stopped = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Stop reading c: over the budget (I/O thread, in a read). */
static void inbound_stop(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    /* seq_cst: before the load of in_held below (the top of this file). */
    atomic_store(&c->in_paused, true);
    if (!c->in_stopped)
        read_stop(c);
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
    /* Relaxed: only this thread writes in_paused. */
    if (held > n->max_inbound &&
        !atomic_load_explicit(&c->in_paused, memory_order_relaxed))
        inbound_stop(c);
    return len;
}

void fl__conn_inbound_done(fl__conn_t *c, size_t n)
{
    size_t held = atomic_fetch_sub(&c->in_held, n) - n;
    if (held <= low_water(c->net) && atomic_load(&c->in_paused)) {
        fl__net_count(&c->net->st_in_kicks, 1);
        fl__conn_kick(c);
    }
    fl__conn_release_turn(c);
}

/* The drain wait's callback: on the thread running the actor, under flow
 * control's lock, so the I/O thread is kicked, never run here. */
static void mailbox_drained(void *arg)
{
    fl__conn_t *c = arg;
    atomic_store(&c->in_drained, true);
    fl__conn_kick_async(c);
}

void fl__conn_inbound_over_bound(fl__conn_t *c, fl_system_t *sys, uint64_t id)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    /* Waiting for a mailbox already: nothing to add (reading stopped).
     * Stopped for the budget alone: the mailbox is waited for too. */
    if (c->in_mbox || c->state != C_OPEN || !fl__actor_over_bound(sys, id))
        return;
    atomic_store(&c->in_drained, false);
    if (fl__drain_wait_arm(sys, id, c->in_wait, mailbox_drained, c) != FL_OK)
        return; /* drained meanwhile, or its actor has stopped */
    c->in_sys = sys;
    c->in_mbox = true;
    if (!c->in_stopped)
        read_stop(c);
    fl__net_count(&n->st_in_mbox_pauses, 1);
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)),
              "%s: a mailbox is over its bound: not reading", c->name);
}

void fl__conn_inbound_closed(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    if (!c->in_mbox)
        return;
    /* When it returns the callback is not running and will not run. */
    fl__drain_wait_cancel(c->in_sys, c->in_wait);
    c->in_mbox = false;
    atomic_store(&c->in_drained, false);
    /* A socket opened again (outbound) is read from its start, unless
     * calls still hold the budget. */
    if (c->in_stopped && (!atomic_load(&c->in_paused) ||
                          atomic_load(&c->in_held) <= low_water(c->net))) {
        c->in_stopped = false;
        atomic_store(&c->in_paused, false);
    }
}

void fl__conn_inbound_resume(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    if (!c->in_stopped)
        return;
    /* The budget's reason ends at its low-water mark, once: from then on
     * no finishing call kicks c. */
    if (atomic_load(&c->in_paused)) {
        if (atomic_load(&c->in_held) > low_water(n))
            return; /* the call that drains it kicks */
        atomic_store(&c->in_paused, false);
        if (c->in_mbox && !atomic_load(&c->in_drained)) {
            FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)),
                      "%s: calls drained, a mailbox not yet: not reading",
                      c->name);
            return;
        }
    }
    if (c->in_mbox) {
        if (!atomic_load(&c->in_drained))
            return;         /* its drain wait kicks */
        c->in_mbox = false; /* the wait fired: it is disarmed */
    }
    c->in_stopped = false;
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
