/*
 * listen.c - the listener of a service's transport: binding it to the
 * first free port of a range (on the thread that starts the net), and
 * accepting connections (I/O thread), which then run as any other
 * (conn.c).
 */
#include "remote/conn.h"

#include <stdio.h>
#include <string.h>

/* A peer connected to our listener: take it, name it, open it. */
static void on_connection(uv_stream_t *server, int status)
{
    fl__net_t *n = server->data;
    FL__ASSERT_IO(n);
    if (status < 0) {
        FL_LOG(FL_LOG_WARN, "remote: accept failed: %s", uv_strerror(status));
        return;
    }
    fl__conn_t *c = fl__conn_new(n, false);
    if (c == NULL || uv_tcp_init(&n->loop, &c->tcp) != 0) {
        /* Take the connection off the backlog and drop it. */
        uv_tcp_t *t = fl__malloc(sizeof *t);
        if (t != NULL && uv_tcp_init(&n->loop, t) == 0) {
            uv_accept(server, (uv_stream_t *)t);
            uv_close((uv_handle_t *)t, (uv_close_cb)fl__free);
        } else {
            fl__free(t);
        }
        if (c != NULL)
            fl__conn_release(c);
        FL_LOG(FL_LOG_ERROR, "remote: out of memory accepting a connection");
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
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(c->name, sizeof c->name, "unknown peer");
    if (rc == 0 &&
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[64] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            port = ntohs(a->sin6_port);
            snprintf(c->name, sizeof c->name, "[%s]:%d", ip, port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            port = ntohs(a->sin_port);
            snprintf(c->name, sizeof c->name, "%s:%d", ip, port);
        }
    }
    fl__net_count(&n->st_accepted, 1);
    if (rc == 0)
        rc = fl__conn_opened(c);
    if (rc < 0)
        fl__conn_close(c, 0, uv_strerror(rc));
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
