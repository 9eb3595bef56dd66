/*
 * gateway.c - gateways: their allocation and release, self gateways,
 * fl_rpc_connect (a local endpoint found in the registry, or a fling.tcp://
 * or fling.ssl:// address handed to tcp_client.c), and their accessors. Calls
 * through a gateway are call.c's.
 */
#include "rpc/gateway.h"

#include "rpc/call.h"
#include "rpc/endpoint.h"
#include "rpc/fencing.h"
#include "rpc/local.h"
#include "rpc/service.h"
#include "rpc/tcp.h"

#include <stdio.h>
#include <string.h>

fl_rpc_gateway_t *
fl__rpc_gw_alloc(fl_rpc_service_t *svc, const fl__rpc_tran_t *tran,
                 const ProtobufCServiceDescriptor *desc, const char *address,
                 uint32_t service_index, uint8_t fence,
                 const fl_fencing_token_t *token, bool has_token)
{
    fl_rpc_gateway_t *gw = fl__calloc(1, sizeof *gw);
    if (gw == NULL || (gw->address = fl__strdup(address)) == NULL) {
        fl__free(gw);
        return NULL;
    }
    gw->base.descriptor = desc;
    gw->base.invoke = fl__rpc_gw_invoke;
    gw->base.destroy = NULL;
    gw->svc = svc;
    gw->tran = tran;
    gw->service_index = service_index;
    gw->fence = fence;
    if (token != NULL) {
        gw->token = *token;
        gw->has_token = has_token;
    }
    gw->timeout_ms = svc->timeout_ms;
    return gw;
}

void fl_rpc_gateway_free(fl_rpc_gateway_t *gw)
{
    if (gw == NULL)
        return;
    fl__free(gw->address);
    fl__free(gw->remote_id);
    fl__free(gw->host);
    gw->tran->gw_fini(gw);
    fl__free(gw);
}

void fl__rpc_gw_free_cb(void *p)
{
    fl_rpc_gateway_free(p);
}

int fl_rpc_self_gateway(fl_rpc_endpoint_t *ep,
                        const ProtobufCServiceDescriptor *desc,
                        fl_rpc_gateway_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (ep == NULL || desc == NULL || out == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_self_gateway refused: %s is NULL",
                              ep == NULL     ? "ep"
                              : desc == NULL ? "desc"
                                             : "out");
    int i = fl__rpc_service_index(ep, desc->name);
    if (i < 0) {
        char have[512];
        size_t n = 0;
        have[0] = '\0';
        for (size_t k = 0; k < ep->nservices && n < sizeof have; k++)
            n += (size_t)snprintf(have + n, sizeof have - n, "%s%s",
                                  k ? ", " : "",
                                  ep->services[k]->descriptor->name);
        return fl__rpc_refuse(FL_ENOTSUP,
                              "rpc endpoint '%s' does not implement %s: it "
                              "implements %s",
                              ep->id, desc->name, have);
    }
    *out = fl__rpc_local_gw(ep->svc, ep, (uint32_t)i, FENCE_SELF, &ep->token);
    return *out ? FL_OK : FL_ENOMEM;
}

bool fl__rpc_connect_parse(const char *address, bool ssl, fl__address_t *a,
                           fl_future_t *f)
{
    char why[768];
    if (fl__address_parse_as(address, ssl, a, why, sizeof why) == FL_OK)
        return true;
    fl_future_fail(f, FL_ECONNECT,
                   "Could not connect to rpc endpoint under address %.300s: %s",
                   address, why);
    return false;
}

/* The transports by scheme (tran.h). An address of none of their schemes goes
 * to the local transport, whose parser says what is wrong with it
 * (FL_ECONNECT). */
static const fl__rpc_tran_t *const trans[] = {
    &fl__rpc_tran_tcp, &fl__rpc_tran_tls, &fl__rpc_tran_local};

static const fl__rpc_tran_t *tran_of(const char *address)
{
    for (size_t i = 0; i < sizeof trans / sizeof *trans; i++)
        if (strncmp(address, trans[i]->scheme, strlen(trans[i]->scheme)) == 0)
            return trans[i];
    return &fl__rpc_tran_local;
}

int fl_rpc_connect(fl_rpc_service_t *svc, const char *address,
                   const ProtobufCServiceDescriptor *desc,
                   const fl_fencing_token_t *token, fl_future_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (svc == NULL)
        return fl__rpc_refuse(FL_EINVAL, "fl_rpc_connect: svc is NULL; pass "
                                         "the service to connect from");
    if (address == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_connect: address is NULL; pass an "
                              "endpoint's address, fling://local/<id> or "
                              "%s<host>:<port>/<id>",
                              svc->tls != NULL ? "fling.ssl://"
                                               : "fling.tcp://");
    if (desc == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_connect: desc is NULL; pass the "
                              "gateway's generated service descriptor");
    if (out == NULL)
        return fl__rpc_refuse(FL_EINVAL, "fl_rpc_connect: out is NULL; pass "
                                         "where to put the connect future");
    const fl__rpc_tran_t *tran = tran_of(address);
    /* No plaintext fallback, and no TLS without its options. */
    if (tran == &fl__rpc_tran_tcp && svc->tls != NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "Could not connect to rpc endpoint under address "
                              "%.300s: this service uses TLS "
                              "(fl_rpc_service_opts_t.tls) and connects to "
                              "fling.ssl:// addresses only; there is no "
                              "plaintext fallback",
                              address);
    if (tran == &fl__rpc_tran_tls && svc->tls == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "Could not connect to rpc endpoint under address "
                              "%.300s: this service has no TLS configured "
                              "(fl_rpc_service_opts_t.tls, or "
                              "security.ssl.internal.enabled)",
                              address);
    fl_future_t *f = fl_future_alloc();
    if (f == NULL)
        return fl__rpc_refuse(FL_ENOMEM, "fl_rpc_connect: out of memory");
    int rc = tran->connect(svc, address, desc, token, f);
    if (rc != FL_OK) {
        fl_future_release(f);
        return fl__rpc_refuse(rc,
                              "Could not connect to rpc endpoint under address "
                              "%.300s: %s",
                              address,
                              rc == FL_ECLOSED ? "the rpc service is closed"
                                               : fl_strerror(rc));
    }
    *out = f;
    return FL_OK;
}

ProtobufCService *fl_rpc_gateway_service(fl_rpc_gateway_t *gw)
{
    return gw ? &gw->base : NULL;
}

const char *fl_rpc_gateway_address(const fl_rpc_gateway_t *gw)
{
    return gw ? gw->address : NULL;
}

const char *fl_rpc_gateway_hostname(const fl_rpc_gateway_t *gw)
{
    if (gw == NULL)
        return NULL;
    return gw->host ? gw->host : "localhost";
}

int fl_rpc_gateway_set_timeout(fl_rpc_gateway_t *gw, int64_t timeout_ms)
{
    if (gw == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_gateway_set_timeout refused: gw is NULL");
    if (timeout_ms <= 0)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_gateway_set_timeout refused: timeout_ms "
                              "is %lld; a gateway's timeout must be > 0",
                              (long long)timeout_ms);
    gw->timeout_ms = timeout_ms;
    return FL_OK;
}

int fl_rpc_method_index(const ProtobufCServiceDescriptor *desc,
                        const char *name)
{
    if (desc == NULL || name == NULL) {
        fl__rpc_refuse(FL_EINVAL, "fl_rpc_method_index refused: %s is NULL",
                       desc == NULL ? "desc" : "name");
        return -1;
    }
    for (unsigned i = 0; i < desc->n_methods; i++)
        if (strcmp(desc->methods[i].name, name) == 0)
            return (int)i;
    char methods[600];
    fl__rpc_refuse(FL_EINVAL, "no method %s: %s", name,
                   fl__rpc_say_methods(desc, methods, sizeof methods));
    return -1;
}
