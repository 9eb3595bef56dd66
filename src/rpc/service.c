/*
 * service.c - the RPC service: its life (alloc, close, shutdown, free),
 * its registry of live endpoints (svc->endpoints under svc->mu) and its
 * accessors. Closing terminates every endpoint; shutting down then cancels
 * the scheduled tasks (tasks.c) and stops the transport (tcp.c).
 */
#include "rpc/service.h"

#include "rpc/call.h"
#include "rpc/endpoint.h"
#include "rpc/tasks.h"
#include "rpc/tcp.h"

#include <stdio.h>
#include <string.h>

fl_rpc_endpoint_t *fl__rpc_find_ep(fl_rpc_service_t *svc, const char *id)
{
    for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

int fl_rpc_service_alloc(const fl_rpc_service_opts_t *o, fl_rpc_service_t **out)
{
    if (out == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_service_alloc refused: out is NULL");
    *out = NULL;
    fl_rpc_service_opts_t opts = {0};
    if (o != NULL)
        opts = *o;
    if (opts.default_timeout_ms < 0)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_service_alloc refused: "
                              "default_timeout_ms is %lld; pass a timeout > 0, "
                              "or 0 for %d ms",
                              (long long)opts.default_timeout_ms,
                              FL_RPC_DEFAULT_TIMEOUT_MS);
    fl_rpc_service_t *svc = fl__calloc(1, sizeof *svc);
    if (svc == NULL)
        return FL_ENOMEM;
    svc->timeout_ms = opts.default_timeout_ms ? opts.default_timeout_ms
                                              : FL_RPC_DEFAULT_TIMEOUT_MS;
    if (opts.system != NULL) {
        svc->sys = opts.system;
    } else {
        fl_system_opts_t so = {0};
        so.workers = opts.workers;
        int rc = fl_system_alloc(&so, &svc->sys);
        if (rc != FL_OK) {
            fl__free(svc);
            return fl__rpc_refuse(rc,
                                  "fl_rpc_service_alloc: could not create its "
                                  "actor system (workers %u): %s",
                                  opts.workers, fl_strerror(rc));
        }
        svc->own_sys = true;
    }
    pthread_mutex_init(&svc->mu, NULL);
    pthread_cond_init(&svc->cv, NULL);
    char why[512] = "";
    int rc = fl__rpc_tcp_init(svc, &opts, why, sizeof why);
    if (rc != FL_OK) {
        /* Returned (fl_rpc_last_message): debug only. */
        FL_LOG(FL_LOG_DEBUG, "could not create the service: %s", why);
        fl__rpc_set_last(rc, why);
        fl__rpc_tcp_free(svc);
        if (svc->own_sys) {
            fl_system_shutdown(svc->sys);
            fl_system_free(svc->sys);
        }
        pthread_mutex_destroy(&svc->mu);
        pthread_cond_destroy(&svc->cv);
        fl__free(svc);
        return rc;
    }
    *out = svc;
    return FL_OK;
}

/* Completes dst when every input is done; fails with the first failure. */
typedef struct settle_ctx {
    _Atomic size_t left;
    _Atomic int first_err;
    pthread_mutex_t mu;
    char msg[256];
    fl_future_t *dst;
} settle_ctx_t;

static void on_settle(fl_future_t *f, void *p)
{
    settle_ctx_t *c = p;
    int err = fl_future_error(f);
    if (err != FL_OK) {
        int zero = FL_OK;
        /* acq_rel: pairs with the other inputs' CAS; the message is
         * under c->mu. */
        if (atomic_compare_exchange_strong_explicit(&c->first_err, &zero, err,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            pthread_mutex_lock(&c->mu);
            snprintf(c->msg, sizeof c->msg, "%s", fl_future_message(f));
            pthread_mutex_unlock(&c->mu);
        }
    }
    /* acq_rel: the last input sees every other input's first_err (pairs
     * with their fetch_sub, each after its CAS). */
    if (atomic_fetch_sub_explicit(&c->left, 1, memory_order_acq_rel) == 1) {
        /* Relaxed: ordered by the fetch_sub above. */
        int e = atomic_load_explicit(&c->first_err, memory_order_relaxed);
        if (e == FL_OK)
            fl_future_complete(c->dst, NULL, NULL);
        else
            fl_future_fail(c->dst, e, "%s", c->msg);
        fl_future_release(c->dst);
        pthread_mutex_destroy(&c->mu);
        fl__free(c);
    }
}

fl_future_t *fl_rpc_service_close(fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return NULL;
    pthread_mutex_lock(&svc->mu);
    if (svc->close_future != NULL) {
        fl_future_t *f = fl_future_retain(svc->close_future);
        pthread_mutex_unlock(&svc->mu);
        return f;
    }
    svc->closed = true;
    fl_future_t *dst = fl_future_alloc();
    settle_ctx_t *c = fl__calloc(1, sizeof *c);
    size_t n = 0;
    for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next)
        n++;
    fl_rpc_endpoint_t **eps = fl__calloc(n + 1, sizeof *eps);
    if (dst == NULL || c == NULL || eps == NULL) {
        svc->closed = false;
        pthread_mutex_unlock(&svc->mu);
        fl_future_release(dst);
        fl__free(c);
        fl__free(eps);
        return NULL;
    }
    size_t i = 0;
    for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next) {
        fl__rpc_ep_retain(e);
        eps[i++] = e;
    }
    svc->close_future = fl_future_retain(dst);
    pthread_mutex_unlock(&svc->mu);

    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->left, n + 1);
    c->dst = fl_future_retain(dst);
    for (i = 0; i < n; i++) {
        fl_future_t *t = fl_rpc_endpoint_close(eps[i]);
        fl_future_on_complete(t, on_settle, c);
        fl_future_release(t);
        fl__rpc_ep_release(eps[i]);
    }
    fl__free(eps);
    /* The +1: complete now if there were no endpoints. */
    fl_future_t *done = fl_future_alloc();
    if (done != NULL) {
        fl_future_complete(done, NULL, NULL);
        on_settle(done, c);
        fl_future_release(done);
    }
    return dst;
}

int fl_rpc_service_shutdown(fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return FL_EINVAL;
    if (fl_system_current() != NULL)
        return FL_EDEADLK;
    fl_future_t *f = fl_rpc_service_close(svc);
    if (f == NULL)
        return FL_ENOMEM;
    int rc = fl_future_wait(f, FL_INFINITE);
    fl_future_release(f);
    fl__rpc_tasks_shutdown(svc);
    fl__rpc_tcp_shutdown(svc);
    pthread_mutex_lock(&svc->mu);
    bool first = !svc->shut_down;
    svc->shut_down = true;
    pthread_mutex_unlock(&svc->mu);
    if (first && svc->own_sys)
        fl_system_shutdown(svc->sys);
    return rc;
}

void fl_rpc_service_free(fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return;
    if (fl_system_current() != NULL) {
        FL_LOG(FL_LOG_ERROR, "fl_rpc_service_free called on a runtime "
                             "thread: closing the service only (leaked)");
        fl_future_release(fl_rpc_service_close(svc));
        return;
    }
    fl_rpc_service_shutdown(svc);
    fl__rpc_tcp_free(svc);
    if (svc->own_sys)
        fl_system_free(svc->sys);
    fl_future_release(svc->close_future);
    fl__rpc_tell_tables_free(svc);
    pthread_mutex_destroy(&svc->mu);
    pthread_cond_destroy(&svc->cv);
    fl__free(svc);
}

fl_system_t *fl_rpc_service_system(fl_rpc_service_t *svc)
{
    return svc ? svc->sys : NULL;
}

const char *fl_rpc_service_address(const fl_rpc_service_t *svc)
{
    if (svc == NULL)
        return NULL;
    return svc->host ? svc->host : "";
}

int fl_rpc_service_port(const fl_rpc_service_t *svc)
{
    return svc ? svc->port : -1;
}

int64_t fl_rpc_service_timeout(const fl_rpc_service_t *svc)
{
    return svc ? svc->timeout_ms : 0;
}

int fl_rpc_service_lookup(fl_rpc_service_t *svc, const char *id,
                          fl_rpc_endpoint_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (svc == NULL || id == NULL || out == NULL)
        return FL_EINVAL;
    pthread_mutex_lock(&svc->mu);
    fl_rpc_endpoint_t *ep = fl__rpc_find_ep(svc, id);
    pthread_mutex_unlock(&svc->mu);
    *out = ep;
    return ep ? FL_OK : FL_ENOENT;
}
