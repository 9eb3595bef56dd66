/*
 * wake.c - when the I/O thread next looks at a connection for its
 * requests' deadlines: a net-wide heap of connections keyed by their next
 * request deadline, and one timer armed for the nearest. Idle connections
 * (no request pending) are on no heap and cost nothing: while nothing is
 * due the timer does not fire at all. The peer's HELLO deadline has its
 * own list and timer (handshake.c).
 *
 * A connection's key is a lower bound of its next deadline: a request
 * made with a later deadline than the key leaves it alone (no kick), and
 * a request answered leaves it too; when the key comes the I/O thread
 * fails what is due and puts the connection back under its next deadline,
 * or takes it off. A request whose deadline comes before the key (or a
 * connection not on the heap) kicks the I/O thread, which lowers the key
 * (fl__conn_wake_lower from fl__conn_process).
 */
#include "remote/conn.h"

/* Out of memory for the heap: every connection is looked at this often
 * until they all fit again. */
#define WAKE_RETRY_MS 100

/* c's next deadline, ns (I/O thread, under c->mu): its earliest
 * request's; 0: none. */
static uint64_t next_deadline_locked(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    fl__hnode_t *top = fl__heap_top(&c->dl);
    return top != NULL ? top->key : 0;
}

static void on_wake(uv_timer_t *t);

/* Arm the timer for the heap's nearest key unless it fires sooner. */
static void arm(fl__net_t *n)
{
    FL__ASSERT_IO(n);
    fl__hnode_t *top = fl__heap_top(&n->wakes);
    if (n->stopping || (top == NULL && !n->wake_lost))
        return;
    uint64_t now = fl_clock_now_ns();
    uint64_t at = top != NULL ? top->key : UINT64_MAX;
    if (n->wake_lost && at > now + WAKE_RETRY_MS * 1000000ull)
        at = now + WAKE_RETRY_MS * 1000000ull;
    if (n->dtimer_at != 0 && n->dtimer_at <= at)
        return;
    n->dtimer_at = at;
    /* Rounded up: the loop's clock may lag; firing early only re-arms. */
    uint64_t ms = at > now ? (at - now + 999999u) / 1000000u : 0;
    uv_timer_start(&n->dtimer, on_wake, ms, 0);
}

/* Put c on the heap under key at, or (at 0) off it (I/O thread, under
 * c->mu, which publishes the key as wake_at). */
static void wake_set_locked(fl__conn_t *c, uint64_t at)
{
    fl__net_t *n = c->net;
    if (at == 0) {
        if (fl__hnode_queued(&c->wake))
            fl__heap_remove(&n->wakes, &c->wake);
    } else if (fl__hnode_queued(&c->wake)) {
        fl__heap_rekey(&n->wakes, &c->wake, at);
    } else {
        c->wake.key = at;
        c->wake.seq = 0;
        if (fl__heap_push(&n->wakes, &c->wake) != FL_OK) {
            /* Looked at by the retry scan instead. */
            n->wake_lost = true;
            at = 0;
        }
    }
    c->wake_at = at;
}

void fl__conn_wake_lower(fl__conn_t *c, uint64_t at)
{
    FL__ASSERT_IO(c->net);
    if (at == 0 || (fl__hnode_queued(&c->wake) && c->wake.key <= at))
        return;
    fl__conn_lock(c);
    wake_set_locked(c, at);
    fl__conn_unlock(c);
    arm(c->net);
}

void fl__conn_wake_forget(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    if (fl__hnode_queued(&c->wake))
        fl__heap_remove(&c->net->wakes, &c->wake);
}

/* Fail what is due on c, then put it back under its next deadline. */
static void visit(fl__conn_t *c, void *arg)
{
    uint64_t now = *(const uint64_t *)arg;
    fl__net_count(&c->net->st_wake_visits, 1);
    fl__conn_expire(c, now);
    fl__conn_lock(c);
    wake_set_locked(c, next_deadline_locked(c));
    fl__conn_unlock(c);
}

static void on_wake(uv_timer_t *t)
{
    fl__net_t *n = t->data;
    n->dtimer_at = 0;
    fl__net_count(&n->st_wakes, 1);
    uint64_t now = fl_clock_now_ns();
    if (n->wake_lost) {
        n->wake_lost = false;
        fl__net_for_each_conn(n, visit, &now);
    } else {
        /* Take the due ones off first: a visit may put a connection back
         * under a key that is due already (a request made meanwhile). */
        fl__conn_t *due = NULL;
        fl__hnode_t *top;
        while ((top = fl__heap_top(&n->wakes)) != NULL && top->key <= now) {
            fl__conn_t *c = fl__container_of(top, fl__conn_t, wake);
            fl__heap_remove(&n->wakes, top);
            c->wnext = due;
            due = c;
        }
        while (due != NULL) {
            fl__conn_t *c = due;
            due = c->wnext;
            visit(c, &now);
        }
    }
    arm(n);
}

void fl__net_wake_init(fl__net_t *n)
{
    uv_timer_init(&n->loop, &n->dtimer);
    n->dtimer.data = n;
    uv_unref((uv_handle_t *)&n->dtimer);
}
