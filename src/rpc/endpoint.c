/*
 * endpoint.c - RPC endpoints: references, creation and registration, the
 * life cycle their main thread runs (start, stop, terminate with on_stop's
 * future), and termination (the result claimed once, the id freed, the
 * termination future completed). Calls are dispatch.c's.
 */
#include "rpc/endpoint.h"

#include "actor/future.h"
#include "rpc/call.h"
#include "rpc/dispatch.h"
#include "rpc/flat.h"
#include "rpc/local.h"
#include "rpc/service.h"
#include "rpc/tcp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ID_MAX 200

/* ---- references --------------------------------------------------------- */

void fl__rpc_ep_release(fl_rpc_endpoint_t *ep)
{
    /* acq_rel: the last holder sees every other holder's writes (pairs
     * with the other holders' fetch_sub; fl__rpc_ep_retain orders
     * nothing). */
    if (atomic_fetch_sub_explicit(&ep->refs, 1, memory_order_acq_rel) != 1)
        return;
    fl_future_release(ep->termination);
    fl__free(ep->services);
    fl__free(ep->tells);
    fl__free(ep->id);
    fl__free(ep->address);
    fl__free(ep->term_msg);
    fl__free(ep);
}

void fl_rpc_endpoint_free(fl_rpc_endpoint_t *ep)
{
    if (ep != NULL)
        fl__rpc_ep_release(ep);
}

/* ---- termination -------------------------------------------------------- */

/* Any thread, first call wins: record the result and stop the actor. Its
 * termination (observed in on_actor_gone) frees the id and completes the
 * termination future. The stop request publishes the result (acq_rel CAS
 * on the actor's state; the actor's termination is ordered after it). */
static bool finish_claim(fl_rpc_endpoint_t *ep, int err, const char *msg)
{
    int expected = FIN_OPEN;
    /* The claim pairs with the other claimants' CAS (acq_rel); the result
     * is published by the release store below, not by the claim. */
    if (!atomic_compare_exchange_strong_explicit(
            &ep->finished, &expected, FIN_CLAIMED, memory_order_acq_rel,
            memory_order_acquire))
        return false;
    ep->term_err = err;
    if (err != FL_OK)
        ep->term_msg = fl__strdup(msg != NULL ? msg : fl_strerror(err));
    /* Pairs with the acquire loads in on_actor_gone. */
    atomic_store_explicit(&ep->finished, FIN_DONE, memory_order_release);
    return true;
}

static void endpoint_finish(fl_rpc_endpoint_t *ep, int err, const char *msg)
{
    if (finish_claim(ep, err, msg))
        fl_actor_stop(ep->svc->sys, ep->actor);
}

static void on_actor_gone(fl_future_t *f, void *p)
{
    fl_rpc_endpoint_t *ep = p;
    fl_rpc_service_t *svc = ep->svc;
    pthread_mutex_lock(&svc->mu);
    for (fl_rpc_endpoint_t **q = &svc->endpoints; *q != NULL; q = &(*q)->next) {
        if (*q == ep) {
            *q = ep->next;
            break;
        }
    }
    pthread_mutex_unlock(&svc->mu);
    /* The actor is gone. If nobody finished the endpoint, it was stopped
     * from outside (the system shut down): claim that result, so a late
     * on_stop completion does nothing. Otherwise wait for the finisher's
     * result to be published (it is a few stores away). */
    char buf[256];
    snprintf(buf, sizeof buf, "RpcEndpoint %s has not been properly stopped.",
             ep->id);
    if (!finish_claim(ep, FL_EUNREACHABLE, buf)) {
        /* Acquire: pairs with finish_claim's release store. */
        while (atomic_load_explicit(&ep->finished, memory_order_acquire) !=
               FIN_DONE)
            fl__cpu_relax();
    }
    /* An on_stop future still pending will never matter now: let it go (if
     * nobody else holds it, its drop hook releases the endpoint). */
    /* acq_rel: pairs with the release store in fl__rpc_ep_handle_terminate
     * and with the other exchanges (on_stop_done). */
    fl_future_release(
        atomic_exchange_explicit(&ep->stop_future, NULL, memory_order_acq_rel));
    if (ep->term_err == FL_OK)
        fl_future_complete(ep->termination, NULL, NULL);
    else
        fl_future_fail(ep->termination, ep->term_err, "%s",
                       ep->term_msg ? ep->term_msg : "");
    fl__rpc_ep_release(ep);
}

/* ---- creating endpoints ------------------------------------------------- */

/* FL_OK, or FL_EINVAL through fl__rpc_refuse naming what is wrong with
 * id: empty, too long, or which character at which offset. */
static int id_check(const char *id)
{
    size_t n = strlen(id);
    if (n == 0)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_endpoint_create refused: the id is "
                              "empty; pass NULL for a generated one");
    if (n > ID_MAX)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_endpoint_create refused: the id is %zu "
                              "bytes long, over the %d allowed",
                              n, ID_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
              ch == '.')) {
            char shown[8];
            if (ch > 0x20 && ch < 0x7f)
                snprintf(shown, sizeof shown, "'%c'", ch);
            else
                snprintf(shown, sizeof shown, "0x%02x", ch);
            return fl__rpc_refuse(FL_EINVAL,
                                  "fl_rpc_endpoint_create refused: id '%s' "
                                  "has %s at offset %zu; an id is made of "
                                  "[A-Za-z0-9_.-]",
                                  id, shown, i);
        }
    }
    return FL_OK;
}

/* The checks of fl_rpc_endpoint_create's arguments, each refusal saying
 * why (fl__rpc_refuse). */
static int create_check(fl_rpc_service_t *svc, const fl_rpc_endpoint_opts_t *o,
                        fl_rpc_endpoint_t **out)
{
    if (svc == NULL || o == NULL || out == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_endpoint_create refused: %s is NULL",
                              svc == NULL ? "svc"
                              : o == NULL ? "opts"
                                          : "out");
    if (o->services == NULL || o->nservices == 0)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_endpoint_create refused: no services "
                              "(opts.services %s, opts.nservices %zu); an "
                              "endpoint implements at least one",
                              o->services == NULL ? "NULL" : "set",
                              o->nservices);
    for (size_t i = 0; i < o->nservices; i++)
        if (o->services[i] == NULL || o->services[i]->descriptor == NULL)
            return fl__rpc_refuse(FL_EINVAL,
                                  "fl_rpc_endpoint_create refused: "
                                  "opts.services[%zu] %s",
                                  i,
                                  o->services[i] == NULL
                                      ? "is NULL"
                                      : "has no descriptor (initialise it "
                                        "with the generated ..._INIT macro)");
    return o->id != NULL ? id_check(o->id) : FL_OK;
}

/* The bytes of the fields of a request of type in in an RPC_TELL
 * (dispatch.h), or UINT32_MAX when its tells cannot be one: the struct
 * copies as it is (FL__FLAT_PLAIN), in at most FL__RPC_TELL_MAX bytes and
 * a whole number of words (as any struct with the base's pointers is). */
static uint32_t tell_fields(const ProtobufCMessageDescriptor *in)
{
    return fl__rpc_flat_kind(in) == FL__FLAT_PLAIN &&
                   in->sizeof_message <= FL__RPC_TELL_MAX &&
                   in->sizeof_message % 8 == 0
               ? (uint32_t)FL__RPC_TELL_FIELDS(in->sizeof_message)
               : UINT32_MAX;
}

/* A service descriptor's method table, built once per service and shared
 * by its endpoints: it depends on the descriptor alone, and 32 bytes a
 * method in every endpoint were a third of an idle endpoint's memory. */
struct fl__rpc_tell_table {
    const ProtobufCServiceDescriptor *d;
    struct fl__rpc_tell_table *next;
    fl__rpc_tell_method_t methods[];
};

/* d's table in svc, made if new; NULL when out of memory. Under svc->mu. */
static const fl__rpc_tell_method_t *
tell_table(fl_rpc_service_t *svc, const ProtobufCServiceDescriptor *d)
{
    struct fl__rpc_tell_table *t;
    for (t = svc->tell_tables; t != NULL; t = t->next)
        if (t->d == d)
            return t->methods;
    t = fl__malloc(sizeof *t + d->n_methods * sizeof t->methods[0]);
    if (t == NULL)
        return NULL;
    t->d = d;
    for (unsigned k = 0; k < d->n_methods; k++) {
        fl__rpc_tell_method_t *m = &t->methods[k];
        m->md = &d->methods[k];
        m->in = d->methods[k].input;
        m->fields = tell_fields(m->in);
        m->tell_in = m->fields != UINT32_MAX ? m->in : NULL;
    }
    t->next = svc->tell_tables;
    svc->tell_tables = t;
    return t->methods;
}

void fl__rpc_tell_tables_free(fl_rpc_service_t *svc)
{
    while (svc->tell_tables != NULL) {
        struct fl__rpc_tell_table *t = svc->tell_tables;
        svc->tell_tables = t->next;
        fl__free(t);
    }
}

/* ep->tells for ep's services: FL_OK, or FL_ENOMEM. */
static int tells_make(fl_rpc_endpoint_t *ep)
{
    fl__rpc_tell_service_t *t = fl__malloc(ep->nservices * sizeof *t);
    if (t == NULL)
        return FL_ENOMEM;
    pthread_mutex_lock(&ep->svc->mu);
    for (size_t i = 0; i < ep->nservices; i++) {
        const ProtobufCServiceDescriptor *d = ep->services[i]->descriptor;
        t[i].methods = tell_table(ep->svc, d);
        t[i].n = d->n_methods;
        if (t[i].methods == NULL) {
            pthread_mutex_unlock(&ep->svc->mu);
            fl__free(t);
            return FL_ENOMEM;
        }
    }
    pthread_mutex_unlock(&ep->svc->mu);
    ep->tells = t;
    return FL_OK;
}

static int send_control(fl_rpc_endpoint_t *ep, uint32_t type)
{
    fl_msg_t *m = fl_msg_alloc(type, 0);
    if (m == NULL)
        return FL_ENOMEM;
    return fl_tell(ep->svc->sys, ep->actor, m);
}

int fl_rpc_endpoint_create(fl_rpc_service_t *svc,
                           const fl_rpc_endpoint_opts_t *o,
                           fl_rpc_endpoint_t **out)
{
    if (out != NULL)
        *out = NULL;
    int rc = create_check(svc, o, out);
    if (rc != FL_OK)
        return rc;
    fl_rpc_endpoint_t *ep = fl__calloc(1, sizeof *ep);
    if (ep == NULL)
        return FL_ENOMEM;
    atomic_init(&ep->refs, 2);
    ep->svc = svc;
    ep->services = fl__malloc(o->nservices * sizeof *ep->services);
    ep->termination = fl_future_alloc();
    if (ep->services == NULL || ep->termination == NULL)
        goto nomem;
    memcpy(ep->services, o->services, o->nservices * sizeof *ep->services);
    ep->nservices = o->nservices;
    if (tells_make(ep) != FL_OK)
        goto nomem;
    ep->state = o->state;
    ep->on_start = o->on_start;
    ep->on_stop = o->on_stop;
    if (o->fencing_token != NULL) {
        ep->fenced = true;
        ep->token = *o->fencing_token;
    }

    pthread_mutex_lock(&svc->mu);
    char anon[48];
    if (svc->closed) {
        rc = FL_ECLOSED;
    } else if (o->id == NULL) {
        /* Skip names a caller chose explicitly. */
        do {
            snprintf(anon, sizeof anon, "endpoint_%llu",
                     (unsigned long long)svc->anon++);
        } while (fl__rpc_find_ep(svc, anon) != NULL);
        ep->id = fl__strdup(anon);
    } else if (fl__rpc_find_ep(svc, o->id) != NULL) {
        rc = FL_EEXIST;
    } else {
        ep->id = fl__strdup(o->id);
    }
    if (rc == FL_OK && ep->id != NULL)
        ep->address = fl__rpc_endpoint_address(svc, ep->id);
    if (rc == FL_OK && (ep->id == NULL || ep->address == NULL))
        rc = FL_ENOMEM;
    if (rc == FL_OK)
        rc = fl_actor_spawn(svc->sys, fl__rpc_ep_receive, ep, NULL, &ep->actor);
    if (rc == FL_OK) {
        /* Registered (the id is taken) before anyone can observe its end. */
        ep->next = svc->endpoints;
        svc->endpoints = ep;
        fl__rpc_ep_retain(ep); /* ours, for the rest of create */
    }
    pthread_mutex_unlock(&svc->mu);
    if (rc == FL_EEXIST)
        fl__rpc_refuse(rc,
                       "fl_rpc_endpoint_create refused: id '%s' is taken by "
                       "a live endpoint; it is free again once that one has "
                       "terminated",
                       o->id);
    else if (rc == FL_ECLOSED)
        fl__rpc_refuse(rc, "fl_rpc_endpoint_create refused: the rpc service "
                           "is closed");
    if (rc != FL_OK)
        goto fail;

    /* Outside the lock: if the actor is already gone (a concurrent system
     * close), on_actor_gone runs right here and takes svc->mu itself. */
    fl_future_t *gone = NULL;
    rc = fl_actor_termination(svc->sys, ep->actor, &gone);
    if (rc == FL_OK)
        rc = fl_future_on_complete(gone, on_actor_gone, ep);
    fl_future_release(gone);
    if (rc != FL_OK) {
        /* Nothing will observe the actor's end (no memory, or the system
         * is past stopping its actors, so the actor is gone): stop it and
         * unregister now. The endpoint's own reference is kept (leaked) if
         * the actor might still run with it. */
        fl_actor_stop(svc->sys, ep->actor);
        pthread_mutex_lock(&svc->mu);
        for (fl_rpc_endpoint_t **q = &svc->endpoints; *q != NULL;
             q = &(*q)->next) {
            if (*q == ep) {
                *q = ep->next;
                break;
            }
        }
        pthread_mutex_unlock(&svc->mu);
        /* Returned to the creator: debug only. */
        FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("endpoint", ep->id)),
                  "endpoint %s: cannot watch its actor: %s", ep->id,
                  fl_strerror(rc));
        /* A concurrent service close may already wait on it. */
        fl_future_fail(ep->termination, rc,
                       "RpcEndpoint %s could not be started: %s", ep->id,
                       fl_strerror(rc));
        fl__rpc_ep_release(ep); /* ours */
        fl__rpc_ep_release(ep); /* the creator's: the call fails */
        return rc;
    }
    fl__rpc_ep_release(ep); /* ours; the creator's and the endpoint's remain */
    *out = ep;
    return FL_OK;
nomem:
    rc = FL_ENOMEM;
fail:
    fl_future_release(ep->termination);
    fl__free(ep->services);
    fl__free(ep->tells);
    fl__free(ep->id);
    fl__free(ep->address);
    fl__free(ep);
    return rc;
}

/* send_control for fl_rpc_endpoint_<verb>, its refusals saying why. */
static int control(fl_rpc_endpoint_t *ep, uint32_t type, const char *verb)
{
    if (ep == NULL)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_endpoint_%s refused: ep is NULL", verb);
    int rc = send_control(ep, type);
    if (rc == FL_EUNREACHABLE) {
        char why[FL_FUTURE_MESSAGE_MAX];
        return fl__rpc_refuse(
            rc, "%s", fl__rpc_say_terminated(why, sizeof why, ep->id, NULL));
    }
    if (rc == FL_ECLOSED)
        return fl__rpc_refuse(rc,
                              "fl_rpc_endpoint_%s refused: the actor system "
                              "of rpc endpoint '%s' is closed",
                              verb, ep->id);
    return rc;
}

int fl_rpc_endpoint_start(fl_rpc_endpoint_t *ep)
{
    return control(ep, RPC_START, "start");
}

int fl_rpc_endpoint_stop(fl_rpc_endpoint_t *ep)
{
    return control(ep, RPC_STOP, "stop");
}

int fl_rpc_start_fail(fl_rpc_endpoint_t *ep, int err, const char *fmt, ...)
{
    if (ep == NULL)
        return fl__rpc_refuse(FL_EINVAL, "fl_rpc_start_fail refused: ep is "
                                         "NULL");
    if (err == FL_OK)
        return fl__rpc_refuse(FL_EINVAL,
                              "fl_rpc_start_fail refused: err is FL_OK; pass "
                              "the code on_start returns");
    if (!fl_rpc_in_main_thread(ep) || !ep->in_on_start)
        return fl__rpc_refuse(FL_ESTATE,
                              "fl_rpc_start_fail refused: not called from "
                              "on_start of rpc endpoint '%s'",
                              ep->id);
    char msg[FL_FUTURE_MESSAGE_MAX];
    msg[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    fl__free(ep->start_msg);
    /* No memory: the code's own text is said instead. */
    ep->start_msg = msg[0] != '\0' ? fl__strdup(msg) : NULL;
    return err;
}

fl_future_t *fl_rpc_endpoint_close(fl_rpc_endpoint_t *ep)
{
    if (ep == NULL)
        return NULL;
    (void)send_control(ep, RPC_TERMINATE); /* gone already: fine */
    return fl_future_retain(ep->termination);
}

fl_future_t *fl_rpc_endpoint_termination(fl_rpc_endpoint_t *ep)
{
    return ep ? fl_future_retain(ep->termination) : NULL;
}

const char *fl_rpc_endpoint_id(const fl_rpc_endpoint_t *ep)
{
    return ep ? ep->id : NULL;
}

const char *fl_rpc_endpoint_address(const fl_rpc_endpoint_t *ep)
{
    return ep ? ep->address : NULL;
}

void *fl_rpc_endpoint_state(const fl_rpc_endpoint_t *ep)
{
    return ep ? ep->state : NULL;
}

fl_rpc_service_t *fl_rpc_endpoint_service(fl_rpc_endpoint_t *ep)
{
    return ep ? ep->svc : NULL;
}

int fl__rpc_service_index(const fl_rpc_endpoint_t *ep, const char *name)
{
    for (size_t i = 0; i < ep->nservices; i++)
        if (strcmp(ep->services[i]->descriptor->name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- the life cycle (main thread) --------------------------------------- */

void fl__rpc_ep_handle_start(fl_rpc_endpoint_t *ep)
{
    if (ep->st == EP_STARTED)
        return;
    if (ep->st != EP_STOPPED) {
        FL_LOG_KV(FL_LOG_ERROR, FL_KV(FL_F("endpoint", ep->id)),
                  "endpoint %s: start while terminating ignored", ep->id);
        return;
    }
    ep->st = EP_STARTED;
    ep->running = true;
    if (ep->on_start == NULL)
        return;
    ep->in_on_start = true;
    int rc = ep->on_start(ep, ep->state);
    ep->in_on_start = false;
    char *said = ep->start_msg;
    ep->start_msg = NULL;
    if (rc != FL_OK) {
        char buf[FL_FUTURE_MESSAGE_MAX];
        snprintf(buf, sizeof buf, "Could not start RpcEndpoint %s: %s", ep->id,
                 said != NULL ? said : fl_strerror(rc));
        ep->running = false;
        ep->st = EP_DONE;
        endpoint_finish(ep, rc, buf);
    }
    fl__free(said); /* said and then returned FL_OK: nothing failed */
}

/* on_stop's future completed, on whatever thread: the endpoint stops right
 * now (what it is handling finishes; what is queued becomes dead letters),
 * not after the calls queued in front of a continuation (FLINK-11629). */
static void on_stop_done(fl_future_t *f, void *p)
{
    fl_rpc_endpoint_t *ep = p;
    int err = fl_future_error(f);
    endpoint_finish(ep, err, err ? fl_future_message(f) : NULL);
    /* acq_rel: pairs with the release store in fl__rpc_ep_handle_terminate
     * and with on_actor_gone's exchange. */
    fl_future_release(
        atomic_exchange_explicit(&ep->stop_future, NULL, memory_order_acq_rel));
    fl__rpc_ep_release(ep);
}

/* on_stop's future was freed without completing: the endpoint stays
 * terminating until the system stops it. */
static void on_stop_dropped(void *p)
{
    fl__rpc_ep_release((fl_rpc_endpoint_t *)p);
}

void fl__rpc_ep_handle_stop(fl_rpc_endpoint_t *ep)
{
    if (ep->st == EP_STARTED) {
        ep->st = EP_STOPPED;
        ep->running = false;
    } else if (ep->st == EP_TERMINATING) {
        FL_LOG_KV(FL_LOG_ERROR, FL_KV(FL_F("endpoint", ep->id)),
                  "endpoint %s: stop while terminating ignored", ep->id);
    }
}

void fl__rpc_ep_handle_terminate(fl_rpc_endpoint_t *ep)
{
    if (ep->st == EP_TERMINATING || ep->st == EP_DONE)
        return; /* on_stop runs once */
    if (ep->st == EP_STOPPED) {
        ep->st = EP_DONE;
        endpoint_finish(ep, FL_OK, NULL);
        return;
    }
    ep->st = EP_TERMINATING;
    fl_future_t *f = ep->on_stop ? ep->on_stop(ep, ep->state) : NULL;
    ep->running = false;
    if (f == NULL) {
        ep->st = EP_DONE;
        endpoint_finish(ep, FL_OK, NULL);
        return;
    }
    /* Serve on until f completes; the callback holds the endpoint. */
    fl__rpc_ep_retain(ep);
    /* Release: publishes f to the exchanges of on_stop_done and
     * on_actor_gone. */
    atomic_store_explicit(&ep->stop_future, f, memory_order_release);
    int rc = fl__future_on_complete_ex(f, on_stop_done, on_stop_dropped, ep);
    if (rc != FL_OK) {
        fl__rpc_ep_release(ep);
        /* acq_rel: as in on_stop_done. */
        fl_future_release(atomic_exchange_explicit(&ep->stop_future, NULL,
                                                   memory_order_acq_rel));
        endpoint_finish(ep, rc, "could not wait for on_stop's future");
    }
}
