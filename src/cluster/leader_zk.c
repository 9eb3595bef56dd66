/*
 * src/cluster/leader_zk.c - leader election and retrieval on ZooKeeper: the
 * session, its events, and the requests in flight. The latch, the
 * publication and the retrieval are in leader_zk_flow.c.
 *
 * Layout under base = <root>/<cluster-id>/leader/<component>:
 *   base/latch/latch-<guid>-NNNNNNNNNN  ephemeral sequential, one per
 *                                contender (guid: 32 hex digits, random
 *                                per session); the lowest number leads
 *   base/connection_info         ephemeral, "<address>\n<token hex>",
 *                                written by the leader, watched by
 *                                retrievers
 *
 * Threads. NOTHING ON THE OWNER'S MAIN THREAD WAITS FOR ZOOKEEPER, except
 * fl_leader_*_free (zookeeper_close) and the replacement of an expired
 * handle (its threads are joined; an expired handle sends nothing). Every
 * request is asynchronous (zoo_a*): the client calls its completion, and
 * our watcher, on its completion thread; both only post the result to the
 * main thread (fl_rpc_run_async), where the flows run. Results of an old
 * handle (gen) or an old connection (epoch) are dropped there.
 *
 * No two leaders by this layer's account:
 * - A grant happens only on the main thread, when the answer to a latch
 *   listing of the current connection (same epoch) shows our node lowest:
 *   the server held our session and our node then, and no other contender
 *   can be lowest while our node exists.
 * - Our node goes only when we delete it (and we revoke before: a leave
 *   follows a suspension, which revoked) or when the server expires our
 *   session, after the whole session timeout without hearing from us.
 * - The client reports the connection suspended after 2/3 of the session
 *   timeout without an answer (at once when the TCP connection drops), on
 *   the same completion thread, AFTER any answer it received before; the
 *   main thread revokes on that event. So the revoke comes at least 1/3 of
 *   the session timeout, less the main thread's queueing delay, before the
 *   server can let another contender lead. A grant whose answer lost the
 *   race with the suspension is followed at once by the revoke, in that
 *   order, as the two events arrive.
 * - The confirmation is a multi-op that checks our latch node still exists,
 *   so a contender that lost its session cannot publish.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "leader_zk.h"

typedef struct zk_event {
    fl__leader_obj_t *o;
    unsigned gen;
    int type;
    int state;
} zk_event_t;

static void zk_open(fl__leader_obj_t *o);

const char *fl__zk_what(const fl__leader_obj_t *o)
{
    return o->is_election ? "leader election" : "leader retrieval";
}

void fl__zk_warn(fl__leader_obj_t *o, const char *action, int rc)
{
    FL_LOG_KV(
        FL_LOG_WARN,
        FL_KV(FL_F("component", o->component), FL_F("quorum", o->zk_quorum)),
        "Could not %s for the %s of '%s' on ZooKeeper %s: %s; retrying "
        "on the next connection event",
        action, fl__zk_what(o), o->component, o->zk_quorum, zerror(rc));
}

/* ---- requests in flight -------------------------------------------------- */

static void op_free(void *arg)
{
    zk_op_t *op = arg;
    fl__leader_unref(op->o);
    fl__free(op->payload);
    fl__free(op);
}

zk_op_t *fl__zk_op_new(fl__leader_obj_t *o, zk_op_kind_t kind)
{
    zk_t *z = o->impl;
    zk_op_t *op = fl__malloc(sizeof *op);
    if (op == NULL) {
        FL_LOG(FL_LOG_ERROR,
               "ZooKeeper request of the %s of '%s' not sent: out of memory",
               fl__zk_what(o), o->component);
        return NULL;
    }
    memset(op, 0, offsetof(zk_op_t, path));
    op->path[0] = '\0';
    op->len = -1;
    op->o = o;
    op->kind = kind;
    op->gen = z->gen;
    op->epoch = z->epoch;
    fl__leader_ref(o);
    pthread_mutex_lock(&z->mu);
    op->next = z->ops;
    if (z->ops != NULL)
        z->ops->prev = op;
    z->ops = op;
    pthread_mutex_unlock(&z->mu);
    return op;
}

void fl__zk_op_failed(zk_op_t *op, const char *action, int rc)
{
    op->abandoned = true;
    fl__zk_warn(op->o, action, rc);
}

static void op_task(fl_rpc_endpoint_t *ep, void *state, void *arg);

/* Client thread: off the list, to the main thread. */
static void op_post(zk_op_t *op)
{
    zk_t *z = op->o->impl;
    pthread_mutex_lock(&z->mu);
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        z->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    pthread_mutex_unlock(&z->mu);
    /* Consumes op: op_free runs if the owner is gone. */
    (void)fl_rpc_run_async(op->o->owner, op_task, op, op_free);
}

void fl__zk_string_done(int rc, const char *value, const void *data)
{
    zk_op_t *op = (zk_op_t *)data;
    op->rc = rc;
    if (rc == ZOK && value != NULL)
        snprintf(op->path, sizeof op->path, "%s", value);
    op_post(op);
}

/* The 10-digit sequence number that ends a latch node's name. */
static const char *seq_of(const char *name)
{
    return name + strlen(name) - 10;
}

/* Finds our node (op->path on the way in) among the latch's children, the
 * one just ahead of it by sequence number (op->path on the way out, ""
 * when we lead), and another node of this session (named with our prefix,
 * op->mine on the way in; its name on the way out, or ""): the node of a
 * create whose answer was lost, which would stand ahead of us for as long
 * as the session lives. */
void fl__zk_strings_done(int rc, const struct String_vector *strings,
                         const void *data)
{
    zk_op_t *op = (zk_op_t *)data;
    op->rc = rc;
    if (rc == ZOK && strings != NULL) {
        char prefix[sizeof op->mine];
        memcpy(prefix, op->mine, sizeof prefix);
        size_t plen = strlen(prefix);
        op->mine[0] = '\0';
        const char *mine = seq_of(op->path), *pred = NULL;
        for (int i = 0; i < strings->count; i++) {
            const char *k = strings->data[i];
            if (strlen(k) < 10)
                continue; /* not a latch node */
            if (strcmp(k, op->path) == 0) {
                op->found = true;
            } else if (strncmp(k, prefix, plen) == 0) {
                if (strlen(k) < sizeof op->mine)
                    memcpy(op->mine, k, strlen(k) + 1);
            } else if (strcmp(seq_of(k), mine) < 0 &&
                       (pred == NULL || strcmp(seq_of(k), seq_of(pred)) > 0)) {
                pred = k;
            }
        }
        snprintf(op->path, sizeof op->path, "%s", pred != NULL ? pred : "");
    }
    op_post(op);
}

void fl__zk_stat_done(int rc, const struct Stat *stat, const void *data)
{
    zk_op_t *op = (zk_op_t *)data;
    op->rc = rc;
    op_post(op);
}

void fl__zk_data_done(int rc, const char *value, int value_len,
                      const struct Stat *stat, const void *data)
{
    zk_op_t *op = (zk_op_t *)data;
    op->rc = rc;
    if (rc == ZOK) {
        if (value == NULL || value_len < 0) {
            op->len = -1;
        } else if ((size_t)value_len > sizeof op->buf) {
            op->len = -2;
        } else {
            memcpy(op->buf, value, (size_t)value_len);
            op->len = value_len;
        }
        if (stat != NULL)
            op->version = stat->version;
    }
    op_post(op);
}

void fl__zk_ignore(int rc, const void *data) {}

void fl__zk_ignore_string(int rc, const char *value, const void *data) {}

void fl__zk_void_done(int rc, const void *data)
{
    zk_op_t *op = (zk_op_t *)data;
    op->rc = rc;
    op_post(op);
}

/* Main thread: hands op to its flow unless it is of an old handle or
 * connection. A task that ran owns its arg. */
static void op_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    zk_op_t *op = arg;
    fl__leader_obj_t *o = op->o;
    zk_t *z = o->impl;
    bool current = !fl__leader_closed(o) && z->zh != NULL &&
                   op->gen == z->gen && !op->abandoned;
    if (current && op->epoch == z->epoch) {
        fl__zk_flow_done(o, op);
    } else if (current && op->kind == OP_JOIN && op->rc == ZOK) {
        /* Created on a connection since lost: the session still holds
         * the node, and it would stand ahead of the one we make next. */
        (void)zoo_adelete(z->zh, op->path, -1, fl__zk_ignore, NULL);
    }
    op_free(op);
}

/* After zookeeper_close: frees the requests it never completed. */
static void ops_reap(zk_t *z)
{
    pthread_mutex_lock(&z->mu);
    zk_op_t *op = z->ops;
    z->ops = NULL;
    pthread_mutex_unlock(&z->mu);
    while (op != NULL) {
        zk_op_t *next = op->next;
        op_free(op);
        op = next;
    }
}

/* ---- events: ZooKeeper's thread to the main thread ----------------------- */

static void event_free(void *arg)
{
    zk_event_t *ev = arg;
    fl__leader_unref(ev->o);
    fl__free(ev);
}

static void on_event(fl_rpc_endpoint_t *ep, void *state, void *arg);

/* Client thread: post the event, nothing else. */
void fl__zk_watcher(zhandle_t *zh, int type, int state, const char *path,
                    void *wctx)
{
    zk_ctx_t *ctx = wctx;
    fl__leader_obj_t *o = ctx->o;
    if (fl__leader_closed(o))
        return;
    zk_event_t *ev = fl__malloc(sizeof *ev);
    if (ev == NULL) {
        FL_LOG(FL_LOG_ERROR,
               "ZooKeeper event of the %s of '%s' lost: out of memory",
               fl__zk_what(o), o->component);
        return;
    }
    fl__leader_ref(o);
    ev->o = o;
    ev->gen = ctx->gen;
    ev->type = type;
    ev->state = state;
    (void)fl_rpc_run_async(o->owner, on_event, ev, event_free);
}

/* Closes zh (blocks while the session closes) and frees what hung on it. */
static void handle_close(zk_t *z)
{
    zookeeper_close(z->zh);
    z->zh = NULL;
    ops_reap(z);
    fl__free(z->ctx);
    z->ctx = NULL;
}

static void on_session_event(fl__leader_obj_t *o, zk_t *z, int state)
{
    if (state == ZOO_CONNECTED_STATE) {
        if (z->connected)
            return;
        z->connected = true;
        z->epoch++;
        FL_LOG(FL_LOG_INFO, "The %s of '%s' connected to ZooKeeper %s",
               fl__zk_what(o), o->component, o->zk_quorum);
        fl__zk_flow_connected(o);
    } else if (state == ZOO_EXPIRED_SESSION_STATE) {
        FL_LOG(FL_LOG_WARN,
               "ZooKeeper session of the %s of '%s' expired; starting a new "
               "one",
               fl__zk_what(o), o->component);
        z->connected = false;
        z->epoch++;
        if (o->is_election)
            fl__leader_revoke(o);
        else
            fl__leader_notify(o, NULL, NULL);
        /* The callback may have freed o (leader.h allows it): zk_close has
         * closed the handle then, and nothing may be opened again. */
        if (fl__leader_closed(o))
            return;
        /* Expired: the client sends nothing more; this joins its threads. */
        handle_close(z);
        fl__free(z->latch_node);
        z->latch_node = NULL;
        fl__free(z->published);
        z->published = NULL;
        zk_open(o);
    } else if (z->connected) {
        /* Suspended (connecting again): revoke before anyone else can be
         * elected. */
        z->connected = false;
        z->epoch++;
        FL_LOG(FL_LOG_WARN,
               "Connection of the %s of '%s' to ZooKeeper %s suspended",
               fl__zk_what(o), o->component, o->zk_quorum);
        if (o->is_election)
            fl__leader_revoke(o);
        else
            fl__leader_notify(o, NULL, NULL);
    }
}

/* A task that ran owns its arg: free the event after handling it. */
static void on_event(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    zk_event_t *ev = arg;
    fl__leader_obj_t *o = ev->o;
    zk_t *z = o->impl;
    if (!fl__leader_closed(o) && ev->gen == z->gen && z->zh != NULL) {
        if (ev->type == ZOO_SESSION_EVENT)
            on_session_event(o, z, ev->state);
        else if (z->connected)
            fl__zk_flow_kick(o); /* a watched znode changed */
    }
    event_free(ev);
}

/* ---- the handle ---------------------------------------------------------- */

/* The ZooKeeper client's own log lines (connection refused, and so on):
 * debug lines of ours, so that a server outage does not flood stderr. */
static void zk_log(const char *message)
{
    FL_LOG(FL_LOG_DEBUG, "ZooKeeper client: %s", message);
}

static void open_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    fl__leader_obj_t *o = arg;
    if (!fl__leader_closed(o))
        zk_open(o);
    fl__leader_unref(o); /* a task that ran owns its arg */
}

static void unref_cb(void *arg)
{
    fl__leader_unref(arg);
}

/* A client that could not start (out of memory, a quorum that did not
 * resolve) is started again later, so that an expired session never leaves
 * the contender or retriever out for good. If even that cannot be queued
 * the owner is gone or out of memory, and the line says so. */
static void zk_open_later(fl__leader_obj_t *o)
{
    fl__leader_ref(o);
    if (fl_rpc_schedule_run_async(o->owner, open_task, o, unref_cb,
                                  ZK_REOPEN_MS, NULL) != FL_OK)
        FL_LOG(FL_LOG_ERROR, "The %s of '%s' stays off ZooKeeper: %s",
               fl__zk_what(o), o->component, fl_rpc_last_message());
}

/* Main thread. zookeeper_init2 only starts the client's threads; the
 * connection comes as an event. */
static void zk_open(fl__leader_obj_t *o)
{
    zk_t *z = o->impl;
    if (fl__leader_closed(o))
        return;
    z->ctx = fl__malloc(sizeof *z->ctx);
    if (z->ctx == NULL) {
        FL_LOG(FL_LOG_ERROR,
               "Could not start the %s of '%s' on ZooKeeper %s: out of "
               "memory; trying again in %d ms",
               fl__zk_what(o), o->component, o->zk_quorum, ZK_REOPEN_MS);
        zk_open_later(o);
        return;
    }
    z->gen++;
    fl_fencing_token_t guid = {{0}};
    (void)fl__leader_random_token(&guid); /* all zero at worst: still ours */
    fl_fencing_token_hex(&guid, z->guid);
    z->ctx->o = o;
    z->ctx->gen = z->gen;
    z->connected = false;
    z->busy = false;
    z->dirty = false;
    z->zh =
        zookeeper_init2(o->zk_quorum, fl__zk_watcher,
                        (int)o->zk_session_timeout_ms, NULL, z->ctx, 0, zk_log);
    if (z->zh == NULL) {
        FL_LOG(FL_LOG_ERROR,
               "Could not start the %s of '%s': the ZooKeeper client refused "
               "quorum %s: %s; trying again in %d ms",
               fl__zk_what(o), o->component, o->zk_quorum, strerror(errno),
               ZK_REOPEN_MS);
        fl__free(z->ctx);
        z->ctx = NULL;
        zk_open_later(o);
    }
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *p = fl__malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int zk_start(fl__leader_obj_t *o, char *err, size_t errlen)
{
    zk_t *z = fl__calloc(1, sizeof *z);
    if (z == NULL)
        goto oom;
    pthread_mutex_init(&z->mu, NULL);
    o->impl = z;
    size_t n =
        strlen(o->zk_root) + strlen(o->cluster_id) + strlen(o->component) + 16;
    z->base = fl__malloc(n);
    if (z->base == NULL)
        goto oom;
    snprintf(z->base, n, "%s/%s/leader/%s", o->zk_root, o->cluster_id,
             o->component);
    z->latch_dir = path_join(z->base, "latch");
    z->conn_path = path_join(z->base, "connection_info");
    if (z->latch_dir == NULL || z->conn_path == NULL)
        goto oom;
    /* The longest path is a latch node's: latch_dir + "/latch-" + 32 hex
     * digits + "-" + 10 digits of sequence. */
    if (strlen(z->base) > ZK_BASE_MAX) {
        fl__leader_err(err, errlen,
                       "Could not start the %s of '%s': its ZooKeeper path "
                       "%s is longer than %d bytes",
                       fl__zk_what(o), o->component, z->base, ZK_BASE_MAX);
        return FL_EINVAL;
    }
    fl__leader_ref(o);
    int rc = fl_rpc_run_async(o->owner, open_task, o, unref_cb);
    if (rc != FL_OK)
        fl__leader_err(err, errlen, "Could not start the %s of '%s': %s",
                       fl__zk_what(o), o->component, fl_rpc_last_message());
    return rc;
oom:
    fl__leader_err(err, errlen, "Could not start the %s of '%s': out of memory",
                   fl__zk_what(o), o->component);
    return FL_ENOMEM;
}

static void zk_close(fl__leader_obj_t *o)
{
    zk_t *z = o->impl;
    if (z == NULL || z->zh == NULL)
        return;
    /* Closing the session removes our ephemeral znodes at once. */
    handle_close(z);
}

static void zk_destroy(fl__leader_obj_t *o)
{
    zk_t *z = o->impl;
    if (z == NULL)
        return;
    pthread_mutex_destroy(&z->mu);
    fl__free(z->base);
    fl__free(z->latch_dir);
    fl__free(z->conn_path);
    fl__free(z->latch_node);
    fl__free(z->published);
    fl__free(z);
}

const fl__leader_ops_t fl__leader_zk_ops = {
    .start = zk_start,
    .confirm = fl__zk_confirm,
    .close = zk_close,
    .destroy = zk_destroy,
};
