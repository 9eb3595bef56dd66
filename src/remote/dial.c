/*
 * dial.c - outbound connections: the net's table of peers (one connection
 * per host:port, made on first use), resolving and connecting when a
 * request finds the connection idle (fl__conn_process), and the backoff
 * after a failed attempt (set by fl__conn_close, checked here).
 */
#include "remote/conn.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int fl__net_peer(fl__net_t *n, const char *host, uint16_t port,
                 fl__conn_t **out)
{
    *out = NULL;
    /* Acquire: pairs with fl__net_shutdown's release store. */
    if (atomic_load_explicit(&n->closed, memory_order_acquire))
        return FL_ECLOSED;
    char name[FL__HOST_MAX + 16];
    if (strchr(host, ':') != NULL)
        snprintf(name, sizeof name, "[%s]:%u", host, (unsigned)port);
    else
        snprintf(name, sizeof name, "%s:%u", host, (unsigned)port);
    pthread_mutex_lock(&n->mu);
    fl__conn_t *c = NULL;
    HASH_FIND_STR(n->peers, name, c);
    if (c == NULL) {
        c = fl__conn_new(n, true);
        if (c == NULL) {
            pthread_mutex_unlock(&n->mu);
            return FL_ENOMEM;
        }
        snprintf(c->name, sizeof c->name, "%s", name);
        snprintf(c->host, sizeof c->host, "%s", host);
        c->port = port;
        c->state = C_IDLE;
        HASH_ADD_STR(n->peers, name, c);
    }
    fl__conn_retain(c);
    pthread_mutex_unlock(&n->mu);
    *out = c;
    return FL_OK;
}

bool fl__conn_backing_off_locked(const fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    return (c->state == C_IDLE || c->state == C_CLOSING) &&
           c->retry_at_ms != 0 && fl__net_now_ms() < c->retry_at_ms;
}

int fl__backoff_next(int backoff_ms)
{
    if (backoff_ms <= 0)
        return FL__NET_BACKOFF_MIN_MS;
    return backoff_ms > FL__NET_BACKOFF_MAX_MS / 2 ? FL__NET_BACKOFF_MAX_MS
                                                   : backoff_ms * 2;
}

int fl__backoff_jitter(int backoff_ms, uint32_t rnd)
{
    int spread = backoff_ms * FL__NET_BACKOFF_JITTER_PCT / 100;
    int wait = backoff_ms - spread + (int)(rnd % (uint32_t)(2 * spread + 1));
    return wait > FL__NET_BACKOFF_MAX_MS ? FL__NET_BACKOFF_MAX_MS : wait;
}

/* The next random value of n's generator (xorshift64*, seeded from the
 * system's random source on first use). I/O thread. */
static uint32_t net_random(fl__net_t *n)
{
    FL__ASSERT_IO(n);
    if (n->rng == 0) {
        if (getrandom(&n->rng, sizeof n->rng, GRND_NONBLOCK) !=
            (ssize_t)sizeof n->rng)
            n->rng = fl_clock_now_ns() ^ (uint64_t)(uintptr_t)n;
        n->rng |= 1; /* xorshift never leaves 0 */
    }
    n->rng ^= n->rng >> 12;
    n->rng ^= n->rng << 25;
    n->rng ^= n->rng >> 27;
    return (uint32_t)((n->rng * 0x2545F4914F6CDD1Dull) >> 32);
}

void fl__conn_back_off_locked(fl__conn_t *c)
{
    FL__ASSERT_LOCKED(c);
    c->backoff_ms = fl__backoff_next(c->backoff_ms);
    c->retry_wait_ms = fl__backoff_jitter(c->backoff_ms, net_random(c->net));
    c->retry_at_ms = fl__net_now_ms() + c->retry_wait_ms;
}

/* uv_tcp_connect's end: open the connection, or fail it. */
static void on_connected(uv_connect_t *req, int status)
{
    fl__conn_t *c = req->data;
    FL__ASSERT_IO(c->net);
    if (status == UV_ECANCELED)
        return; /* closing */
    if (status < 0) {
        fl__conn_close(c, 0, uv_strerror(status));
        return;
    }
    fl__net_count(&c->net->st_opened, 1);
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)), "connected to %s",
              c->name);
    int rc = fl__conn_opened(c);
    if (rc < 0)
        fl__conn_close(c, 0, uv_strerror(rc));
}

/* uv_getaddrinfo's end: connect to the first address, or fail. */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    fl__conn_t *c = req->data;
    FL__ASSERT_IO(c->net);
    fl__net_t *n = c->net;
    char reason[FL__HOST_MAX + 200];
    if (status < 0 || ai == NULL) {
        if (status == UV_ECANCELED)
            snprintf(reason, sizeof reason, "%s",
                     n->stopping ? "rpc service shut down"
                                 : "connect timed out while resolving");
        else
            snprintf(reason, sizeof reason, "could not resolve host %s: %s",
                     c->host, uv_strerror(status));
        uv_freeaddrinfo(ai);
        /* No socket yet: fail here (fl__conn_close needs a state to leave). */
        fl__conn_lock(c);
        c->state = C_CONNECTING;
        fl__conn_unlock(c);
        fl__conn_close(c, n->stopping ? FL_ECLOSED : 0, reason);
        fl__conn_release(c); /* the resolver's */
        return;
    }
    int rc = uv_tcp_init(&n->loop, &c->tcp);
    if (rc == 0) {
        c->tcp_open = true;
        n->open_handles++;
        fl__conn_lock(c);
        c->state = C_CONNECTING;
        fl__conn_unlock(c);
        rc = uv_tcp_connect(&c->creq, &c->tcp, ai->ai_addr, on_connected);
    } else {
        fl__conn_lock(c);
        c->state = C_CONNECTING;
        fl__conn_unlock(c);
    }
    uv_freeaddrinfo(ai);
    if (rc < 0)
        fl__conn_close(c, 0, uv_strerror(rc));
    fl__conn_release(c); /* the resolver's */
}

void fl__conn_connect(fl__conn_t *c)
{
    fl__net_t *n = c->net;
    FL__ASSERT_IO(n);
    fl__conn_lock(c);
    if (c->state != C_IDLE || !fl__conn_has_queue_locked(c)) {
        fl__conn_unlock(c);
        return;
    }
    c->state = C_RESOLVING;
    fl__conn_unlock(c);
    c->rx.got_hello = false;
    fl__rx_init(&c->rx, n->max_frame);
    c->peer_err = 0;
    c->peer_msg[0] = '\0';
    c->close_when_flushed = false;
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)), "connecting to %s",
              c->name);
    fl__hs_begin(c);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)c->port);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    fl__conn_retain(c); /* the resolver's */
    int rc =
        uv_getaddrinfo(&n->loop, &c->gai, on_resolved, c->host, port, &hints);
    if (rc < 0) {
        char reason[FL__HOST_MAX + 200];
        snprintf(reason, sizeof reason, "could not resolve host %s: %s",
                 c->host, uv_strerror(rc));
        fl__conn_lock(c);
        c->state = C_CONNECTING;
        fl__conn_unlock(c);
        fl__conn_close(c, 0, reason);
        fl__conn_release(c);
    }
}
