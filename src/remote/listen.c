/*
 * listen.c - the listener of a service's transport: binding it to the
 * first free port of a range (on the thread that starts the net), and
 * accepting connections (I/O thread), which then run as any other
 * (conn.c).
 */
#include "remote/conn.h"

#include <stdio.h>
#include <string.h>

static void drop_pending(fl__net_t *n);

/* The spare handle is closed: free for the next connection to drop, and
 * one may be waiting (the listener is paused until it is taken). */
static void on_spare_closed(uv_handle_t *h)
{
    fl__net_t *n = h->data;
    n->spare_busy = false;
    if (n->spare_owed) {
        n->spare_owed = false;
        if (n->listening && !uv_is_closing((uv_handle_t *)&n->listener))
            drop_pending(n);
    }
}

/*
 * Take the pending connection off the listener and close it, allocating
 * nothing (libuv's EMFILE trick, for memory): through the net's spare
 * handle, or, while the spare is still closing, once it is free. Until
 * then libuv does not poll the listener (a connection it accepted is not
 * taken), so none is lost and the listener serves again right after.
 */
static void drop_pending(fl__net_t *n)
{
    if (n->spare_busy) {
        n->spare_owed = true;
        return;
    }
    char name[FL__HOST_MAX + 16] = "unknown peer";
    if (uv_tcp_init(&n->loop, &n->spare) != 0)
        return; /* cannot happen (no socket is made); paused for good */
    n->spare.data = n;
    n->spare_busy = true;
    if (uv_accept((uv_stream_t *)&n->listener, (uv_stream_t *)&n->spare) == 0)
        fl__net_peer_name(&n->spare, name, sizeof name);
    uv_close((uv_handle_t *)&n->spare, on_spare_closed);
    FL_LOG_RATELIMITED_KV(FL_LOG_ERROR, FL__LOG_BURST,
                          FL_KV(FL_F("peer", name)),
                          "out of memory accepting a connection from %s: "
                          "closed it",
                          name);
}

/* A peer connected to our listener: take it, name it, open it. */
static void on_connection(uv_stream_t *server, int status)
{
    fl__net_t *n = server->data;
    FL__ASSERT_IO(n);
    if (status < 0) {
        FL_LOG_RATELIMITED(FL_LOG_WARN, "accept failed: %s",
                           uv_strerror(status));
        return;
    }
    fl__conn_t *c = fl__conn_new(n, false);
    if (c == NULL || uv_tcp_init(&n->loop, &c->tcp) != 0) {
        if (c != NULL)
            fl__conn_release(c);
        drop_pending(n);
        return;
    }
    c->tcp_open = true;
    n->open_handles++;
    c->state = C_OPEN;
    c->next = n->accepted;
    if (n->accepted)
        n->accepted->prev = c;
    n->accepted = c;
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    snprintf(c->name, sizeof c->name, "unknown peer");
    if (rc == 0)
        fl__net_peer_name(&c->tcp, c->name, sizeof c->name);
    fl__net_count(&n->st_accepted, 1);
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("peer", c->name)),
              "connection from %s accepted", c->name);
    if (rc == 0)
        rc = fl__conn_opened(c);
    if (rc < 0)
        fl__conn_close(c, 0, uv_strerror(rc));
}

void fl__net_addr_name(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    char ip[64] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(buf, cap, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(buf, cap, "%s:%d", ip, ntohs(a->sin_port));
    }
}

void fl__net_peer_name(uv_tcp_t *t, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0)
        fl__net_addr_name(&ss, buf, cap);
}

/* Close a failed listener and let libuv finish with it. */
static void drop_listener(fl__net_t *n)
{
    uv_close((uv_handle_t *)&n->listener, NULL);
    uv_run(&n->loop, UV_RUN_NOWAIT);
}

int fl__net_bind(fl__net_t *n, const char *host, const char *spec, char *why,
                 size_t why_len)
{
    fl__port_range_t r;
    char reason[200];
    if (fl__port_range_parse(spec, &r, reason, sizeof reason) != FL_OK) {
        fl__say(why, why_len, "%s", reason);
        return FL_EINVAL;
    }
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    uv_getaddrinfo_t req;
    const char *h = strcmp(host, "[::]") == 0 ? "::" : host;
    int rc = uv_getaddrinfo(&n->loop, &req, NULL, h, NULL, &hints);
    if (rc < 0) {
        fl__say(why, why_len, "could not resolve bind host %s: %s", host,
                uv_strerror(rc));
        return FL_ECONNECT;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    uint32_t count = fl__port_range_count(&r);
    for (uint32_t i = 0; i < count; i++) {
        uint16_t port = fl__port_range_at(&r, i);
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        else
            ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        if (uv_tcp_init(&n->loop, &n->listener) != 0) {
            fl__say(why, why_len, "could not create a socket");
            return FL_ESYSTEM;
        }
        n->listener.data = n;
        rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&n->listener, 511, on_connection);
        if (rc == 0) {
            int len = sizeof ss;
            uv_tcp_getsockname(&n->listener, (struct sockaddr *)&ss, &len);
            n->port = ntohs(ss.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                : ((struct sockaddr_in *)&ss)->sin_port);
            n->listening = true;
            return FL_OK;
        }
        drop_listener(n);
        if (rc != UV_EADDRINUSE) {
            fl__say(why, why_len, "could not bind %s:%u: %s", host, port,
                    uv_strerror(rc));
            return rc == UV_EADDRNOTAVAIL || rc == UV_EACCES ? FL_ECONNECT
                                                             : FL_ESYSTEM;
        }
    }
    fl__say(why, why_len,
            "could not bind %s to any port of the range %s: every port is in "
            "use",
            host, spec);
    return FL_EADDRINUSE;
}

int fl__net_port(const fl__net_t *n)
{
    return n ? n->port : -1;
}
