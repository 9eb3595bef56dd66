/*
 * src/cluster/registration_conn.c - the registered connection (contract
 * 3.2): one retrying registration at a time, its outcome reported through
 * callbacks on the owner's main thread, the gateway of the last success
 * kept until the next one.
 */
#include <fling/registration.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "common/internal.h"

struct fl_registered_connection {
    atomic_uint refs; /* the handle's, one per pending outcome */
    fl_rpc_endpoint_t *owner;
    fl_registration_spec_t spec; /* address, token, opts: copies below */
    char *address;
    fl_fencing_token_t token;
    fl_registration_opts_t opts;
    fl_registered_connection_cbs_t cbs;
    void *arg;

    pthread_mutex_t lk; /* guards the fields below */
    bool started;
    bool closed;
    fl_registration_t *pending;          /* the latest registration */
    fl_registration_response_t *current; /* the last success */
};

/* One registration's outcome on its way to the main thread. */
typedef struct outcome_hop {
    fl_registered_connection_t *c;
    fl_registration_t *reg; /* compared with c->pending: stale or not */
    bool refused;           /* under c->lk: its start was refused */
} outcome_hop_t;

static void conn_unref(fl_registered_connection_t *c)
{
    /* acq_rel: the last release sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    fl_registration_free(c->pending);
    fl_registration_response_free(c->current);
    pthread_mutex_destroy(&c->lk);
    fl__free(c->address);
    fl__free(c);
}

static void hop_free(void *p)
{
    outcome_hop_t *h = p;
    conn_unref(h->c);
    fl__free(h);
}

static void on_outcome(fl_future_t *f, void *arg)
{
    outcome_hop_t *h = arg;
    fl_registered_connection_t *c = h->c;
    pthread_mutex_lock(&c->lk);
    bool live = !c->closed && !h->refused && c->pending == h->reg;
    fl_registration_response_t *resp = NULL;
    int err = fl_future_error(f);
    if (live && err == FL_OK) {
        resp = fl_future_take_value(f);
        if (resp != NULL && resp->outcome == FL_REGISTRATION_SUCCESS) {
            fl_registration_response_free(c->current);
            c->current = resp;
        }
    }
    pthread_mutex_unlock(&c->lk);
    if (!live) {
        FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("target", c->address)),
                  "Ignoring the outcome of a replaced or closed registration "
                  "at %s",
                  c->address);
    } else if (err == FL_ECANCELED) {
        FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("target", c->address)), "%s",
                  fl_future_message(f));
    } else if (err != FL_OK) {
        if (c->cbs.on_failure != NULL)
            c->cbs.on_failure(c, err, fl_future_message(f), c->arg);
    } else if (resp != NULL && resp->outcome == FL_REGISTRATION_SUCCESS) {
        if (c->cbs.on_success != NULL)
            c->cbs.on_success(c, resp, c->arg);
    } else if (resp != NULL) {
        if (c->cbs.on_rejection != NULL)
            c->cbs.on_rejection(c, resp, c->arg);
        fl_registration_response_free(resp);
    }
    hop_free(h);
}

/* Makes and starts a registration as c's pending one; c->lk held. The
 * previous one is cancelled and freed, but only once the new one is under
 * way: a refusal (FL_ENOMEM ...) leaves c as it was and reaches no
 * callback. */
static int begin(fl_registered_connection_t *c)
{
    fl_registration_t *reg = NULL;
    int rc = fl_registration_alloc(c->owner, &c->spec, &reg, NULL, 0);
    if (rc != FL_OK)
        return rc;
    outcome_hop_t *h = fl__malloc(sizeof *h);
    if (h == NULL) {
        fl_registration_free(reg);
        return FL_ENOMEM;
    }
    /* Relaxed: taken while the handle's reference is held. */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    h->c = c;
    h->reg = reg;
    h->refused = false;
    /* Awaited before it starts, so that nothing is sent for a start that
     * returns a refusal. A refused start fails the result; h->refused
     * (read under c->lk, which the caller holds) keeps that from every
     * callback: the caller has rc. */
    rc = fl_rpc_on_complete(c->owner, fl_registration_future(reg), on_outcome,
                            h, hop_free); /* on failure h is freed */
    if (rc != FL_OK) {
        fl_registration_free(reg);
        return rc;
    }
    rc = fl_registration_start(reg);
    if (rc != FL_OK) {
        h->refused = true;
        fl_registration_free(reg);
        return rc;
    }
    fl_registration_free(c->pending);
    c->pending = reg;
    return FL_OK;
}

int fl_registered_connection_alloc(fl_rpc_endpoint_t *owner,
                                   const fl_registration_spec_t *spec,
                                   const fl_registered_connection_cbs_t *cbs,
                                   void *arg, fl_registered_connection_t **out,
                                   char *why, size_t why_len)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL) {
        fl__say(why, why_len, "out must not be NULL");
        return FL_EINVAL;
    }
    /* The same checks as the registrations it will make. */
    fl_registration_t *probe = NULL;
    int rc = fl_registration_alloc(owner, spec, &probe, why, why_len);
    if (rc != FL_OK)
        return rc;
    fl_registration_free(probe);
    fl_registered_connection_t *c = fl__calloc(1, sizeof *c);
    if (c == NULL || (c->address = fl__strdup(spec->address)) == NULL) {
        fl__free(c);
        fl__say(why, why_len, "out of memory making the connection to %s",
                spec->address);
        return FL_ENOMEM;
    }
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->lk, NULL);
    c->owner = owner;
    c->spec = *spec;
    c->spec.address = c->address;
    if (spec->token != NULL) {
        c->token = *spec->token;
        c->spec.token = &c->token;
    }
    if (spec->opts != NULL)
        c->opts = *spec->opts;
    else
        fl_registration_opts_default(&c->opts);
    c->spec.opts = &c->opts;
    if (cbs != NULL)
        c->cbs = *cbs;
    c->arg = arg;
    *out = c;
    return FL_OK;
}

int fl_registered_connection_start(fl_registered_connection_t *c)
{
    if (c == NULL)
        return FL_EINVAL;
    pthread_mutex_lock(&c->lk);
    int rc = c->closed ? FL_ECLOSED : c->started ? FL_ESTATE : FL_OK;
    if (rc == FL_OK) {
        rc = begin(c);
        c->started = rc == FL_OK; /* refused: may be started again */
    }
    pthread_mutex_unlock(&c->lk);
    return rc;
}

int fl_registered_connection_try_reconnect(fl_registered_connection_t *c)
{
    if (c == NULL)
        return FL_EINVAL;
    pthread_mutex_lock(&c->lk);
    int rc = c->closed ? FL_ECLOSED : c->current == NULL ? FL_ESTATE : FL_OK;
    if (rc == FL_OK)
        rc = begin(c);
    pthread_mutex_unlock(&c->lk);
    return rc;
}

void fl_registered_connection_close(fl_registered_connection_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lk);
    c->closed = true;
    fl_registration_cancel(c->pending);
    pthread_mutex_unlock(&c->lk);
}

void fl_registered_connection_free(fl_registered_connection_t *c)
{
    if (c == NULL)
        return;
    fl_registered_connection_close(c);
    conn_unref(c);
}

const char *
fl_registered_connection_address(const fl_registered_connection_t *c)
{
    return c == NULL ? NULL : c->address;
}

bool fl_registered_connection_token(const fl_registered_connection_t *c,
                                    fl_fencing_token_t *out)
{
    if (c == NULL || c->spec.token == NULL)
        return false;
    if (out != NULL)
        *out = c->token;
    return true;
}

fl_rpc_gateway_t *
fl_registered_connection_gateway(const fl_registered_connection_t *c)
{
    if (c == NULL)
        return NULL;
    fl_registered_connection_t *m = (fl_registered_connection_t *)c;
    pthread_mutex_lock(&m->lk);
    fl_rpc_gateway_t *gw = c->current != NULL ? c->current->gateway : NULL;
    pthread_mutex_unlock(&m->lk);
    return gw;
}

bool fl_registered_connection_is_connected(const fl_registered_connection_t *c)
{
    if (c == NULL)
        return false;
    fl_registered_connection_t *m = (fl_registered_connection_t *)c;
    pthread_mutex_lock(&m->lk);
    bool r = !c->closed && c->current != NULL;
    pthread_mutex_unlock(&m->lk);
    return r;
}

bool fl_registered_connection_is_closed(const fl_registered_connection_t *c)
{
    if (c == NULL)
        return false;
    fl_registered_connection_t *m = (fl_registered_connection_t *)c;
    pthread_mutex_lock(&m->lk);
    bool r = c->closed;
    pthread_mutex_unlock(&m->lk);
    return r;
}
