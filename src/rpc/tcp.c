/*
 * tcp.c - the service's TCP transport (src/remote/, docs/wire-protocol.md):
 * set up from the service's options (listening if asked) or started on
 * first use, shut down and freed with the service; endpoint addresses; and
 * the checks of protobuf bytes from the wire (nesting depth) that both
 * sides make before unpacking.
 */
#include "rpc/tcp.h"

#include "common/internal.h"
#include "remote/address.h"
#include "remote/pbdepth.h"
#include "rpc/service.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static bool wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
           strcmp(host, "[::]") == 0;
}

/* A random id for this life of svc (getrandom; the clock and the
 * address if that fails), never 0. */
static uint64_t new_incarnation(const fl_rpc_service_t *svc)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = fl_clock_now_ns() * 0x9E3779B97F4A7C15ull ^
            (uint64_t)(uintptr_t)svc ^ (uint64_t)getpid() << 32;
    return v != 0 ? v : 1;
}

static fl__net_opts_t net_opts(fl_rpc_service_t *svc, const char *bind,
                               const char *port)
{
    fl__net_opts_t o = {.bind_host = bind,
                        .port = port,
                        .max_frame = svc->max_frame,
                        .max_queued = svc->max_queued,
                        .max_inbound = svc->max_inbound,
                        .name = svc->name,
                        .handshake_timeout_ms = svc->handshake_ms,
                        .max_handshaking = svc->max_handshaking,
                        .incarnation = svc->incarnation,
                        .hooks = {svc, fl__rpc_tcp_on_connect,
                                  fl__rpc_tcp_on_invoke, fl__rpc_tcp_on_frames,
                                  fl__rpc_tcp_name_call},
                        .tls = svc->tls};
    return o;
}

int fl__rpc_tcp_init(fl_rpc_service_t *svc, const fl_rpc_service_opts_t *o,
                     char *why, size_t why_len)
{
    svc->port = -1;
    if (o->tls != NULL) {
        /* The files are read here, once. */
        int rc = fl__tls_ctx_new(o->tls, &svc->tls, why, why_len);
        if (rc != FL_OK)
            return rc;
    }
    svc->max_frame =
        o->max_frame_size ? o->max_frame_size : FL__FRAME_DEFAULT_MAX;
    svc->max_queued =
        o->max_queued_bytes ? o->max_queued_bytes : FL__NET_DEFAULT_QUEUED;
    svc->max_inbound =
        o->max_inbound_bytes ? o->max_inbound_bytes : FL__NET_DEFAULT_INBOUND;
    if (svc->max_frame < FL__FRAME_MIN_MAX) {
        fl__say(why, why_len, "max_frame_size %u is below the minimum of %u",
                svc->max_frame, FL__FRAME_MIN_MAX);
        return FL_EINVAL;
    }
    const char *name = o->name ? o->name : "fling";
    if (strlen(name) > FL__NAME_MAX) {
        fl__say(why, why_len, "service name of %zu bytes (limit %u)",
                strlen(name), FL__NAME_MAX);
        return FL_EINVAL;
    }
    svc->name = fl__strdup(name);
    if (svc->name == NULL)
        return FL_ENOMEM;
    svc->io_turns = !o->no_io_turns;
    if (o->handshake_timeout_ms < 0) {
        fl__say(why, why_len, "handshake_timeout_ms %lld is negative",
                (long long)o->handshake_timeout_ms);
        return FL_EINVAL;
    }
    svc->handshake_ms = o->handshake_timeout_ms;
    svc->incarnation = new_incarnation(svc);
    svc->max_handshaking = o->max_handshaking;
    if (o->bind_host != NULL && o->bind_host[0] == '\0') {
        fl__say(why, why_len,
                "bind_host is empty (NULL: a local-only "
                "service; \"0.0.0.0\": every interface)");
        return FL_EINVAL;
    }
    if (o->bind_host == NULL) {
        if (o->port != NULL || o->external_host != NULL) {
            fl__say(why, why_len,
                    "port or external_host given without "
                    "bind_host");
            return FL_EINVAL;
        }
        return FL_OK; /* local-only: the transport starts on demand */
    }
    char host[FL__HOST_MAX + 1];
    const char *ext = o->external_host;
    if (ext == NULL && wildcard(o->bind_host)) {
        if (gethostname(host, sizeof host) != 0) {
            fl__say(why, why_len, "could not get the host name");
            return FL_ESYSTEM;
        }
        host[sizeof host - 1] = '\0';
        ext = host;
    } else if (ext == NULL) {
        ext = o->bind_host;
    }
    /* The external host must make valid addresses. */
    fl__address_t a = {.kind = FL__ADDR_TCP, .port = 1};
    snprintf(a.endpoint, sizeof a.endpoint, "x");
    size_t elen = strlen(ext);
    if (elen >= 2 && ext[0] == '[' && ext[elen - 1] == ']')
        snprintf(a.host, sizeof a.host, "%.*s", (int)(elen - 2), ext + 1);
    else if (elen <= FL__HOST_MAX)
        snprintf(a.host, sizeof a.host, "%s", ext);
    char buf[FL__HOST_MAX + 64];
    fl__address_t back;
    if (elen == 0 || elen > FL__HOST_MAX + 2 ||
        fl__address_format(&a, buf, sizeof buf) != FL_OK ||
        fl__address_parse(buf, &back, NULL, 0) != FL_OK) {
        fl__say(why, why_len, "invalid external host '%s'", ext);
        return FL_EINVAL;
    }
    svc->host = fl__strdup(a.host);
    if (svc->host == NULL)
        return FL_ENOMEM;
    fl__net_opts_t no = net_opts(svc, o->bind_host, o->port);
    int rc = fl__net_start(&no, &svc->net, why, why_len);
    if (rc != FL_OK)
        return rc;
    svc->port = fl__net_port(svc->net);
    FL_LOG(FL_LOG_INFO,
           "service %s listening on %s:%d (addresses "
           "%s%s:%d/...)",
           svc->name, o->bind_host, svc->port,
           svc->tls != NULL ? "fling.ssl://" : "fling.tcp://", svc->host,
           svc->port);
    return FL_OK;
}

int fl__rpc_tcp_net(fl_rpc_service_t *svc, fl__net_t **out, char *why,
                    size_t why_len)
{
    pthread_mutex_lock(&svc->mu);
    int rc = FL_OK;
    if (svc->closed)
        rc = FL_ECLOSED;
    else if (svc->net == NULL) {
        fl__net_opts_t no = net_opts(svc, NULL, NULL);
        rc = fl__net_start(&no, &svc->net, why, why_len);
    }
    *out = svc->net;
    pthread_mutex_unlock(&svc->mu);
    return rc;
}

void fl__rpc_tcp_shutdown(fl_rpc_service_t *svc)
{
    pthread_mutex_lock(&svc->mu);
    fl__net_t *n = svc->net;
    pthread_mutex_unlock(&svc->mu);
    fl__net_shutdown(n);
}

void fl__rpc_tcp_free(fl_rpc_service_t *svc)
{
    fl__net_free(svc->net);
    svc->net = NULL;
    fl__free(svc->host);
    fl__free(svc->name);
    fl__tls_ctx_free(svc->tls);
    svc->tls = NULL;
}

char *fl__rpc_endpoint_address(const fl_rpc_service_t *svc, const char *id)
{
    size_t n = strlen(id) + (svc->host ? strlen(svc->host) : 0) + 40;
    char *s = fl__malloc(n);
    if (s == NULL)
        return NULL;
    if (svc->host == NULL) {
        snprintf(s, n, "fling://local/%s", id);
        return s;
    }
    fl__address_t a = {.kind = svc->tls != NULL ? FL__ADDR_SSL : FL__ADDR_TCP,
                       .port = (uint16_t)svc->port};
    snprintf(a.host, sizeof a.host, "%s", svc->host);
    snprintf(a.endpoint, sizeof a.endpoint, "%s", id);
    if (fl__address_format(&a, s, n) != FL_OK) {
        fl__free(s);
        return NULL;
    }
    return s;
}

/* A type none of whose fields is a message cannot nest: nothing to walk. */
static bool flat(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            return false;
    return true;
}

int fl__rpc_check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                       size_t len, char *why, size_t why_len)
{
    if (flat(d))
        return FL_OK;
    return fl__pb_check_depth(d, buf, len, FL__PB_MAX_DEPTH, why, why_len);
}

void fl__rpc_wire_why(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                      size_t len, char *why, size_t why_len)
{
    if (why_len < 3)
        return;
    memcpy(why, ": ", 3);
    if (fl__pb_check_depth(d, buf, len, FL__PB_MAX_DEPTH, why + 2,
                           why_len - 2) == FL_OK)
        memcpy(why, ".", 2);
}
