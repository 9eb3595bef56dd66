/*
 * io.c - the I/O thread of a service's transport: starting it, its libuv
 * loop, kicks (how other threads hand it a connection), and stopping (BYE,
 * flush, close, join; the tick is the stop's flush deadline). Deadlines:
 * wake.c.
 *
 * One libuv loop on one I/O thread per service; it owns every libuv
 * handle and request. Who owns which field: conn.h. Who writes frames:
 * conn_write.c.
 */
#include "remote/conn.h"

#include "actor/system.h"

#include <pthread.h>
#include <signal.h>

/* How long a stop lets BYE and what is queued drain before it closes. */
#define STOP_FLUSH_MS 1000

_Thread_local fl__net_t *fl__tls_net; /* set on the I/O thread */

bool fl__net_on_io_thread(void)
{
    return fl__tls_net != NULL;
}

void fl__conn_kick(fl__conn_t *c)
{
    /* On the I/O thread: now, or after the read (see the write path in
     * conn_write.c); elsewhere: the kick list, one wake-up for many. */
    fl__net_t *n = c->net;
    if (fl__tls_net == n) {
        if (!n->in_read) {
            fl__conn_process(c);
        } else if (!c->dirty) {
            /* Frames made while handling what was read (answers, the
             * next calls) go out together once the read is handled. */
            c->dirty = true;
            fl__conn_retain(c);
            c->dnext = n->dirty;
            n->dirty = c;
        }
        return;
    }
    fl__conn_kick_async(c);
}

void fl__conn_kick_async(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    bool wake = false;
    pthread_mutex_lock(&n->kmu);
    if (!c->kicked && !n->loop_gone) {
        c->kicked = true;
        fl__conn_retain(c);
        c->knext = n->kick_head;
        n->kick_head = c;
        wake = true;
    }
    if (wake)
        uv_async_send(&n->async); /* under kmu: the handle is still open */
    pthread_mutex_unlock(&n->kmu);
}

void fl__conn_process(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    fl__conn_lock(c);
    /* Even when stopping: the answers join the queue the stop flushes. */
    fl__obuf_t *dropped = fl__conn_queue_held_locked(c);
    if (n->stopping) {
        fl__conn_unlock(c);
        fl__obuf_free_list(dropped);
        return;
    }
    int st = c->state;
    bool overflow = c->overflow;
    c->overflow = false;
    bool lost = c->answer_lost;
    c->answer_lost = false;
    fl__hnode_t *top = fl__heap_top(&c->dl);
    uint64_t first = top != NULL ? top->key : 0;
    fl__conn_unlock(c);
    fl__obuf_free_list(dropped);
    fl__conn_wake_lower(c, first);
    if (overflow && st == C_OPEN)
        fl__conn_close(c, 0, "outbound queue full: the peer is not reading");
    else if (lost && st == C_OPEN)
        fl__conn_close_owing(c);
    else if (st == C_IDLE && c->outbound)
        fl__conn_connect(c);
    else if (st == C_OPEN)
        fl__conn_flush(c);
    fl__conn_inbound_resume(c);
}

void fl__net_for_each_conn(fl__net_t *n, void (*fn)(fl__conn_t *, void *),
                           void *arg)
{
    FL__ASSERT_IO(n);
    pthread_mutex_lock(&n->mu);
    size_t count = HASH_COUNT(n->peers), i = 0;
    fl__conn_t **snap = fl__calloc(count + 1, sizeof *snap);
    fl__conn_t *c, *tmp;
    HASH_ITER(hh, n->peers, c, tmp)
    {
        if (snap != NULL) {
            fl__conn_retain(c);
            snap[i++] = c;
        }
    }
    pthread_mutex_unlock(&n->mu);
    for (size_t k = 0; k < i; k++) {
        fn(snap[k], arg);
        fl__conn_release(snap[k]);
    }
    fl__free(snap);
    for (c = n->accepted; c != NULL; c = tmp) {
        tmp = c->next;
        fn(c, arg);
    }
}

static int conn_state(fl__conn_t *c)
{
    fl__conn_lock(c);
    int st = c->state;
    fl__conn_unlock(c);
    return st;
}

/* Stopping: say BYE behind what is queued and close once it is written
 * (bye), or close at once. */
static void stop_conn(fl__conn_t *c, void *arg)
{
    bool bye = *(const bool *)arg;
    int st = conn_state(c);
    if (st == C_RESOLVING) {
        uv_cancel((uv_req_t *)&c->gai);
        return;
    }
    if (bye && st == C_OPEN && c->rx.got_hello) {
        fl__obuf_t *b = fl__obuf_frame(FL__K_BYE, 0, 0, NULL, 0, NULL);
        if (b != NULL) {
            fl__conn_lock(c);
            fl__conn_enqueue_locked(c, b);
            fl__conn_unlock(c);
            c->close_when_flushed = true;
            fl__conn_flush(c);
            return;
        }
    }
    fl__conn_close(c, FL_ECLOSED, "rpc service shut down");
}

static void close_all(fl__net_t *n, bool say_bye)
{
    fl__net_for_each_conn(n, stop_conn, &say_bye);
}

void fl__net_finish_stop(fl__net_t *n)
{
    FL__ASSERT_IO(n);
    pthread_mutex_lock(&n->kmu);
    if (n->loop_gone) {
        pthread_mutex_unlock(&n->kmu);
        return;
    }
    n->loop_gone = true;
    pthread_mutex_unlock(&n->kmu);
    if (n->listening)
        uv_close((uv_handle_t *)&n->listener, NULL);
    uv_close((uv_handle_t *)&n->tick, NULL);
    uv_close((uv_handle_t *)&n->dtimer, NULL);
    uv_close((uv_handle_t *)&n->async, NULL);
    fl__hs_fini(n);
}

/* The stop's flush deadline: close what is left at once. */
static void on_tick(uv_timer_t *t)
{
    fl__net_t *n = t->data;
    if (n->stopping)
        close_all(n, false);
}

static void on_async(uv_async_t *a)
{
    fl__net_t *n = a->data;
    pthread_mutex_lock(&n->kmu);
    fl__conn_t *list = n->kick_head;
    n->kick_head = NULL;
    bool stop = n->stop_asked && !n->stopping;
    pthread_mutex_unlock(&n->kmu);
    while (list != NULL) {
        /* Read the link before clearing `kicked`: from then on a new kick
         * may put c on the next list and overwrite it. */
        pthread_mutex_lock(&n->kmu);
        fl__conn_t *c = list;
        list = c->knext;
        c->kicked = false;
        pthread_mutex_unlock(&n->kmu);
        fl__conn_rx_take_left(c);
        fl__conn_process(c);
        fl__conn_release(c);
    }
    if (stop) {
        n->stopping = true;
        n->stop_deadline_ms = fl__net_now_ms() + STOP_FLUSH_MS;
        uv_timer_stop(&n->dtimer); /* the connections close: no deadlines */
        uv_timer_start(&n->tick, on_tick, STOP_FLUSH_MS, 0);
        if (n->listening && !uv_is_closing((uv_handle_t *)&n->listener)) {
            uv_close((uv_handle_t *)&n->listener, NULL);
            n->listening = false;
        }
        close_all(n, true);
        if (n->open_handles == 0)
            fl__net_finish_stop(n);
    }
}

static void *net_main(void *p)
{
    fl__net_t *n = p;
    fl__tls_net = n;
    fl__tls_no_block = true; /* a blocking wait here stalls every peer */
    /* libuv writes with writev, which raises SIGPIPE when the peer has
     * reset the connection; that default action would end the process.
     * Blocked on this thread the write fails with EPIPE instead, and the
     * connection closes (the process's own disposition is left alone). */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    fl__tls_net = NULL;
    return NULL;
}

int fl__net_start(const fl__net_opts_t *o, fl__net_t **out, char *why,
                  size_t why_len)
{
    *out = NULL;
    /* The RPC layer validated the options (fl__rpc_remote_init). */
    fl__net_t *n = fl__calloc(1, sizeof *n);
    if (n == NULL)
        return FL_ENOMEM;
    n->max_frame = o->max_frame ? o->max_frame : FL__FRAME_DEFAULT_MAX;
    n->max_queued = o->max_queued ? o->max_queued : FL__NET_DEFAULT_QUEUED;
    n->max_inbound = o->max_inbound ? o->max_inbound : FL__NET_DEFAULT_INBOUND;
    n->name = fl__strdup(o->name ? o->name : "fling");
    n->hooks = o->hooks;
    n->tls = o->tls;
    n->incarnation = o->incarnation;
    n->port = -1;
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->kmu, NULL);
    int rc = n->name ? FL_OK : FL_ENOMEM;
    if (rc == FL_OK && uv_loop_init(&n->loop) != 0) {
        fl__say(why, why_len, "could not create the event loop");
        rc = FL_ESYSTEM;
    }
    bool loop_ok = rc == FL_OK;
    if (rc == FL_OK && o->bind_host != NULL)
        rc = fl__net_bind(n, o->bind_host, o->port ? o->port : "0", why,
                          why_len);
    if (rc == FL_OK) {
        uv_async_init(&n->loop, &n->async, on_async);
        n->async.data = n;
        uv_timer_init(&n->loop, &n->tick);
        n->tick.data = n;
        uv_unref((uv_handle_t *)&n->tick);
        fl__net_wake_init(n);
        fl__hs_init(n, o);
        if (pthread_create(&n->thread, NULL, net_main, n) != 0) {
            fl__say(why, why_len, "could not start the I/O thread");
            uv_close((uv_handle_t *)&n->async, NULL);
            uv_close((uv_handle_t *)&n->tick, NULL);
            uv_close((uv_handle_t *)&n->dtimer, NULL);
            fl__hs_fini(n);
            if (n->listening)
                uv_close((uv_handle_t *)&n->listener, NULL);
            rc = FL_ESYSTEM;
        } else {
            n->thread_started = true;
        }
    }
    if (rc != FL_OK) {
        if (loop_ok) {
            uv_run(&n->loop, UV_RUN_DEFAULT);
            uv_loop_close(&n->loop);
        }
        pthread_mutex_destroy(&n->mu);
        pthread_mutex_destroy(&n->kmu);
        fl__free(n->name);
        fl__free(n);
        return rc;
    }
    *out = n;
    return FL_OK;
}

uint32_t fl__net_max_frame(const fl__net_t *n)
{
    return n->max_frame;
}

void fl__net_shutdown(fl__net_t *n)
{
    if (n == NULL || !n->thread_started)
        return;
    if (fl__tls_net == n) {
        FL_LOG(FL_LOG_ERROR, "the transport cannot be stopped from "
                             "its own I/O thread (a closure that shuts its "
                             "service down?): left running");
        return;
    }
    /* Release: pairs with the acquire loads of fl__net_peer,
     * fl__conn_closed and fl__conn_refuse_locked, which refuse new work
     * from here on. */
    atomic_store_explicit(&n->closed, true, memory_order_release);
    pthread_mutex_lock(&n->kmu);
    bool first = !n->stop_asked;
    n->stop_asked = true;
    if (first && !n->loop_gone)
        uv_async_send(&n->async);
    pthread_mutex_unlock(&n->kmu);
    if (!first)
        return;
    pthread_join(n->thread, NULL);
    n->thread_started = false;
    uv_loop_close(&n->loop);
}

void fl__net_free(fl__net_t *n)
{
    if (n == NULL)
        return;
    if (fl__tls_net == n) {
        FL_LOG(FL_LOG_ERROR, "the transport cannot be freed from its "
                             "own I/O thread: leaked");
        return;
    }
    fl__net_shutdown(n);
    fl__conn_t *c, *tmp;
    HASH_ITER(hh, n->peers, c, tmp)
    {
        HASH_DEL(n->peers, c);
        fl__conn_lock(c);
        c->state = C_DEAD;
        fl__conn_unlock(c);
        fl__conn_release(c);
    }
    /* Kicks queued after the loop ended hold references too. */
    while (n->kick_head != NULL) {
        c = n->kick_head;
        n->kick_head = c->knext;
        fl__conn_release(c);
    }
    fl__heap_fini(&n->wakes);
    pthread_mutex_destroy(&n->mu);
    pthread_mutex_destroy(&n->kmu);
    fl__free(n->name);
    fl__free(n);
}

void fl__net_stats(fl__net_t *n, fl__net_stats_t *out)
{
    /* Relaxed, as the counts are made (fl__net_count): each figure stands
     * on its own. */
    out->conns_accepted =
        atomic_load_explicit(&n->st_accepted, memory_order_relaxed);
    out->conns_opened =
        atomic_load_explicit(&n->st_opened, memory_order_relaxed);
    out->conns_failed =
        atomic_load_explicit(&n->st_failed, memory_order_relaxed);
    out->frames_in = atomic_load_explicit(&n->st_in, memory_order_relaxed);
    out->frames_out = atomic_load_explicit(&n->st_out, memory_order_relaxed);
    out->writes = atomic_load_explicit(&n->st_writes, memory_order_relaxed);
    out->proto_errors =
        atomic_load_explicit(&n->st_proto, memory_order_relaxed);
    out->caller_reads =
        atomic_load_explicit(&n->st_caller_reads, memory_order_relaxed);
    out->caller_answers =
        atomic_load_explicit(&n->st_caller_answers, memory_order_relaxed);
    out->inbound_pauses =
        atomic_load_explicit(&n->st_in_pauses, memory_order_relaxed);
    out->inbound_peak =
        atomic_load_explicit(&n->st_in_peak, memory_order_relaxed);
    out->mailbox_pauses =
        atomic_load_explicit(&n->st_in_mbox_pauses, memory_order_relaxed);
    out->inbound_kicks =
        atomic_load_explicit(&n->st_in_kicks, memory_order_relaxed);
    out->wakes = atomic_load_explicit(&n->st_wakes, memory_order_relaxed);
    out->wake_visits =
        atomic_load_explicit(&n->st_wake_visits, memory_order_relaxed);
}
