/*
 * src/cluster/leader_zk.c - leader election and retrieval on ZooKeeper.
 *
 * Layout under base = <root>/<cluster-id>/leader/<component>:
 *   base/latch/latch-NNNNNNNNNN  ephemeral sequential, one per contender;
 *                                the lowest number leads
 *   base/connection_info         ephemeral, "<address>\n<token hex>",
 *                                written by the leader, watched by
 *                                retrievers
 *
 * Threads: the ZooKeeper client (libzookeeper_mt) calls our watcher on its
 * completion thread; the watcher only posts the event to the owner's main
 * thread, where everything else happens, with synchronous requests. Each
 * handle has a generation: events of a closed handle are dropped.
 *
 * No two leaders by this layer's account: the leader revokes on the main
 * thread as soon as the client reports the connection suspended (it does so
 * after 2/3 of the session timeout without an answer, or at once when the
 * TCP connection drops); the server lets the next contender lead only once
 * it expired the session, after the whole timeout. The confirmation is a
 * multi-op that checks our latch node still exists, so a contender that
 * lost its session cannot publish.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The synchronous API of libzookeeper_mt is declared under THREADED. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "common/internal.h"
#include "leader_internal.h"

#define ZK_DATA_MAX 4096

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FL__ZK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(FL__ZK_TSAN)
/* The ZooKeeper client formats endpoint names for its messages into one
 * static buffer from several threads without a lock (libzookeeper_mt
 * 3.8): a race in the client, not ours, reported in every program that
 * uses two handles. ThreadSanitizer reads this at start-up. */
const char *__tsan_default_suppressions(void);
FL_EXTERN const char *__tsan_default_suppressions(void)
{
    return "race:libzookeeper_mt.so\n";
}
#endif

typedef struct zk_ctx {
    fl__leader_obj_t *o;
    unsigned gen;
} zk_ctx_t;

typedef struct zk {
    zhandle_t *zh;
    zk_ctx_t *ctx; /* the watcher context of zh */
    unsigned gen;
    bool connected;
    char *base;
    char *latch_dir;
    char *conn_path;
    char *latch_node; /* our latch znode, or NULL */
    char *published;  /* what we wrote into conn_path, or NULL */
} zk_t;

typedef struct zk_event {
    fl__leader_obj_t *o;
    unsigned gen;
    int type;
    int state;
} zk_event_t;

static void zk_open(fl__leader_obj_t *o);

static const char *what(const fl__leader_obj_t *o)
{
    return o->is_election ? "leader election" : "leader retrieval";
}

/* ---- events: ZooKeeper's thread to the main thread ----------------------- */

static void event_free(void *arg)
{
    zk_event_t *ev = arg;
    fl__leader_unref(ev->o);
    fl__free(ev);
}

static void on_event(fl_rpc_endpoint_t *ep, void *state, void *arg);

/* ZooKeeper's completion thread: post the event, nothing else. */
static void zk_watcher(zhandle_t *zh, int type, int state, const char *path,
                       void *wctx)
{
    zk_ctx_t *ctx = wctx;
    fl__leader_obj_t *o = ctx->o;
    if (fl__leader_closed(o))
        return;
    zk_event_t *ev = fl__malloc(sizeof *ev);
    if (ev == NULL) {
        FL_LOG(FL_LOG_ERROR,
               "ZooKeeper event of the %s of '%s' lost: out of memory", what(o),
               o->component);
        return;
    }
    fl__leader_ref(o);
    ev->o = o;
    ev->gen = ctx->gen;
    ev->type = type;
    ev->state = state;
    (void)fl_rpc_run_async(o->owner, on_event, ev, event_free);
}

/* ---- helpers (main thread) ------------------------------------------------
 */

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *p = fl__malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Creates every missing znode of path (persistent, empty). */
static int ensure_path(zhandle_t *zh, const char *path)
{
    char buf[1024];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return ZBADARGUMENTS;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        int rc =
            zoo_create(zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        buf[i] = c;
        if (rc != ZOK && rc != ZNODEEXISTS)
            return rc;
    }
    return ZOK;
}

static void zk_warn(fl__leader_obj_t *o, const char *action, int rc)
{
    FL_LOG_KV(
        FL_LOG_WARN,
        FL_KV(FL_F("component", o->component), FL_F("quorum", o->zk_quorum)),
        "Could not %s for the %s of '%s' on ZooKeeper %s: %s; retrying "
        "on the next connection event",
        action, what(o), o->component, o->zk_quorum, zerror(rc));
}

/* ---- election (main thread) ---------------------------------------------- */

/* Leaves our latch node and removes what we published, if still ours, in
 * one multi-op, so that retrievers never see our address without our latch
 * node. */
static void election_leave(fl__leader_obj_t *o, zk_t *z)
{
    if (z->latch_node == NULL)
        return;
    zoo_op_t ops[2];
    zoo_op_result_t res[2];
    int k = 0;
    zoo_delete_op_init(&ops[k++], z->latch_node, -1);
    char buf[ZK_DATA_MAX];
    int len = sizeof buf;
    struct Stat st;
    if (z->published != NULL &&
        zoo_get(z->zh, z->conn_path, 0, buf, &len, &st) == ZOK &&
        len == (int)strlen(z->published) &&
        memcmp(buf, z->published, (size_t)len) == 0)
        zoo_delete_op_init(&ops[k++], z->conn_path, st.version);
    int rc = zoo_multi(z->zh, k, ops, res);
    if (rc != ZOK && rc != ZNONODE)
        zk_warn(o, "leave the leader latch", rc);
    fl__free(z->published);
    z->published = NULL;
    fl__free(z->latch_node);
    z->latch_node = NULL;
}

static void election_check(fl__leader_obj_t *o, zk_t *z)
{
    for (int round = 0; round < 16 && z->connected; round++) {
        int rc;
        if (z->latch_node == NULL) {
            rc = ensure_path(z->zh, z->latch_dir);
            if (rc != ZOK) {
                zk_warn(o, "create the latch folder", rc);
                return;
            }
            char *prefix = path_join(z->latch_dir, "latch-");
            char created[1024];
            if (prefix == NULL)
                return;
            rc = zoo_create(z->zh, prefix, o->component,
                            (int)strlen(o->component), &ZOO_OPEN_ACL_UNSAFE,
                            ZOO_EPHEMERAL_SEQUENTIAL, created, sizeof created);
            fl__free(prefix);
            if (rc != ZOK) {
                zk_warn(o, "join the leader latch", rc);
                return;
            }
            z->latch_node = fl__strdup(created);
            if (z->latch_node == NULL) {
                (void)zoo_delete(z->zh, created, -1);
                return;
            }
            FL_LOG(FL_LOG_DEBUG, "Contender of '%s' joined the latch as %s",
                   o->component, created);
        }
        struct String_vector kids = {0};
        rc = zoo_get_children(z->zh, z->latch_dir, 0, &kids);
        if (rc != ZOK) {
            zk_warn(o, "read the leader latch", rc);
            return;
        }
        const char *mine = strrchr(z->latch_node, '/') + 1;
        const char *lowest = NULL, *pred = NULL;
        bool found = false;
        for (int i = 0; i < kids.count; i++) {
            const char *k = kids.data[i];
            /* Same prefix and 10 digits: strcmp orders by sequence. */
            if (lowest == NULL || strcmp(k, lowest) < 0)
                lowest = k;
            if (strcmp(k, mine) == 0)
                found = true;
            else if (strcmp(k, mine) < 0 &&
                     (pred == NULL || strcmp(k, pred) > 0))
                pred = k;
        }
        if (!found) {
            /* Our node is gone (deleted by hand?): join again. */
            deallocate_String_vector(&kids);
            fl__free(z->latch_node);
            z->latch_node = NULL;
            fl__leader_revoke(o);
            continue;
        }
        if (pred == NULL) {
            deallocate_String_vector(&kids);
            if (!o->leader) {
                fl_fencing_token_t t;
                if (fl__leader_random_token(&t) != FL_OK) {
                    FL_LOG(FL_LOG_ERROR,
                           "Leadership of '%s' not taken: no random token "
                           "from getrandom",
                           o->component);
                    return;
                }
                fl__leader_grant(o, &t);
            }
            return;
        }
        char *pred_path = path_join(z->latch_dir, pred);
        deallocate_String_vector(&kids);
        if (pred_path == NULL)
            return;
        fl__leader_revoke(o);
        rc = zoo_wexists(z->zh, pred_path, zk_watcher, z->ctx, NULL);
        fl__free(pred_path);
        if (rc == ZOK)
            return; /* wait for it to go */
        if (rc != ZNONODE) {
            zk_warn(o, "watch the contender ahead", rc);
            return;
        }
    }
}

static int zk_confirm(fl__leader_obj_t *o, const char *address, char *err,
                      size_t errlen)
{
    zk_t *z = o->impl;
    char hex[33];
    size_t n = strlen(address) + 1 + 32 + 1;
    if (n > ZK_DATA_MAX) {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s': the address is "
                       "%zu bytes, more than %d",
                       o->component, strlen(address), ZK_DATA_MAX - 34);
        return FL_EINVAL;
    }
    char *data = fl__malloc(n);
    if (data == NULL) {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s': out of memory",
                       o->component);
        return FL_ENOMEM;
    }
    snprintf(data, n, "%s\n%s", address, fl_fencing_token_hex(&o->token, hex));
    int rc = ZCONNECTIONLOSS;
    zoo_op_result_t res[3];
    for (int attempt = 0; attempt < 2 && z->latch_node != NULL; attempt++) {
        zoo_op_t ops[3];
        int k = 0;
        zoo_check_op_init(&ops[k++], z->latch_node, -1);
        if (attempt == 1)
            zoo_delete_op_init(&ops[k++], z->conn_path, -1);
        zoo_create_op_init(&ops[k++], z->conn_path, data, (int)n - 1,
                           &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
        rc = zoo_multi(z->zh, k, ops, res);
        if (rc != ZNODEEXISTS)
            break;
    }
    if (rc == ZOK) {
        fl__free(z->published);
        z->published = data;
        FL_LOG_KV(FL_LOG_INFO,
                  FL_KV(FL_F("component", o->component),
                        FL_F("address", address), FL_F("token", hex)),
                  "Leadership of '%s' confirmed: %s with token %s",
                  o->component, address, hex);
        return FL_OK;
    }
    fl__free(data);
    if (z->latch_node == NULL || res[0].err == ZNONODE) {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s' with token %s: "
                       "this contender left the leader latch; wait for the "
                       "next grant",
                       o->component, hex);
        return FL_ESTATE;
    }
    fl__leader_err(err, errlen,
                   "Could not confirm leadership of '%s' with token %s on "
                   "ZooKeeper %s: %s; a revoke follows if the connection is "
                   "lost",
                   o->component, hex, o->zk_quorum, zerror(rc));
    return FL_EUNREACHABLE;
}

/* ---- retrieval (main thread) --------------------------------------------- */

static bool parse_info(const char *buf, int len, char *addr, size_t addrlen,
                       fl_fencing_token_t *t)
{
    const char *nl = memchr(buf, '\n', (size_t)len);
    if (nl == NULL || buf + len - (nl + 1) != 32 || nl == buf ||
        (size_t)(nl - buf) >= addrlen)
        return false;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        char two[3] = {nl[1 + 2 * i], nl[2 + 2 * i], 0};
        if (sscanf(two, "%2x", &v) != 1)
            return false;
        t->bytes[i] = (uint8_t)v;
    }
    memcpy(addr, buf, (size_t)(nl - buf));
    addr[nl - buf] = '\0';
    return true;
}

static void retrieval_read(fl__leader_obj_t *o, zk_t *z)
{
    for (int round = 0; round < 16 && z->connected; round++) {
        char buf[ZK_DATA_MAX];
        int len = sizeof buf;
        int rc =
            zoo_wget(z->zh, z->conn_path, zk_watcher, z->ctx, buf, &len, NULL);
        if (rc == ZOK) {
            char addr[ZK_DATA_MAX];
            fl_fencing_token_t t;
            if (len < 0 || !parse_info(buf, len, addr, sizeof addr, &t)) {
                FL_LOG(FL_LOG_WARN,
                       "Leader of '%s' unknown: %s on ZooKeeper %s does not "
                       "hold '<address>\\n<32 hex digits>'",
                       o->component, z->conn_path, o->zk_quorum);
                fl__leader_notify(o, NULL, NULL);
                return;
            }
            fl__leader_notify(o, addr, &t);
            return;
        }
        if (rc != ZNONODE) {
            zk_warn(o, "read the leader's address", rc);
            return;
        }
        fl__leader_notify(o, NULL, NULL);
        rc = zoo_wexists(z->zh, z->conn_path, zk_watcher, z->ctx, NULL);
        if (rc == ZNONODE)
            return; /* watched: created next */
        if (rc != ZOK) {
            zk_warn(o, "watch the leader's address", rc);
            return;
        }
    }
}

/* ---- session (main thread) ----------------------------------------------- */

static void on_event_do(zk_event_t *ev);

/* A task that ran owns its arg: free the event after handling it. */
static void on_event(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    on_event_do(arg);
    event_free(arg);
}

static void on_event_do(zk_event_t *ev)
{
    fl__leader_obj_t *o = ev->o;
    zk_t *z = o->impl;
    if (fl__leader_closed(o) || ev->gen != z->gen || z->zh == NULL)
        return;
    if (ev->type == ZOO_SESSION_EVENT) {
        if (ev->state == ZOO_CONNECTED_STATE) {
            if (z->connected)
                return;
            z->connected = true;
            FL_LOG(FL_LOG_INFO, "The %s of '%s' connected to ZooKeeper %s",
                   what(o), o->component, o->zk_quorum);
            if (o->is_election) {
                /* A reconnection in the same session: leave the latch and
                 * join it again, as Curator's LeaderLatch does. */
                election_leave(o, z);
                election_check(o, z);
            } else {
                retrieval_read(o, z);
            }
        } else if (ev->state == ZOO_EXPIRED_SESSION_STATE) {
            FL_LOG(FL_LOG_WARN,
                   "ZooKeeper session of the %s of '%s' expired; starting a "
                   "new one",
                   what(o), o->component);
            z->connected = false;
            if (o->is_election)
                fl__leader_revoke(o);
            else
                fl__leader_notify(o, NULL, NULL);
            zookeeper_close(z->zh);
            z->zh = NULL;
            fl__free(z->ctx);
            z->ctx = NULL;
            fl__free(z->latch_node);
            z->latch_node = NULL;
            fl__free(z->published);
            z->published = NULL;
            zk_open(o);
        } else if (z->connected) {
            /* Suspended (connecting again): revoke before anyone else can
             * be elected. */
            z->connected = false;
            FL_LOG(FL_LOG_WARN,
                   "Connection of the %s of '%s' to ZooKeeper %s suspended",
                   what(o), o->component, o->zk_quorum);
            if (o->is_election)
                fl__leader_revoke(o);
            else
                fl__leader_notify(o, NULL, NULL);
        }
        return;
    }
    /* A watched znode changed. */
    if (o->is_election)
        election_check(o, z);
    else
        retrieval_read(o, z);
}

/* The ZooKeeper client's own log lines (connection refused, and so on):
 * debug lines of ours, so that a server outage does not flood stderr. */
static void zk_log(const char *message)
{
    FL_LOG(FL_LOG_DEBUG, "ZooKeeper client: %s", message);
}

static void zk_open(fl__leader_obj_t *o)
{
    zk_t *z = o->impl;
    z->ctx = fl__malloc(sizeof *z->ctx);
    if (z->ctx == NULL) {
        FL_LOG(FL_LOG_ERROR,
               "Could not start the %s of '%s' on ZooKeeper %s: out of memory",
               what(o), o->component, o->zk_quorum);
        return;
    }
    z->gen++;
    z->ctx->o = o;
    z->ctx->gen = z->gen;
    z->connected = false;
    z->zh =
        zookeeper_init2(o->zk_quorum, zk_watcher, (int)o->zk_session_timeout_ms,
                        NULL, z->ctx, 0, zk_log);
    if (z->zh == NULL) {
        FL_LOG(FL_LOG_ERROR,
               "Could not start the %s of '%s': the ZooKeeper client refused "
               "quorum %s: %s",
               what(o), o->component, o->zk_quorum, strerror(errno));
        fl__free(z->ctx);
        z->ctx = NULL;
    }
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

static int zk_start(fl__leader_obj_t *o, char *err, size_t errlen)
{
    zk_t *z = fl__calloc(1, sizeof *z);
    if (z == NULL)
        goto oom;
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
    fl__leader_ref(o);
    int rc = fl_rpc_run_async(o->owner, open_task, o, unref_cb);
    if (rc != FL_OK)
        fl__leader_err(err, errlen, "Could not start the %s of '%s': %s",
                       what(o), o->component, fl_rpc_last_message());
    return rc;
oom:
    fl__leader_err(err, errlen, "Could not start the %s of '%s': out of memory",
                   what(o), o->component);
    return FL_ENOMEM;
}

static void zk_close(fl__leader_obj_t *o)
{
    zk_t *z = o->impl;
    if (z == NULL || z->zh == NULL)
        return;
    /* Closing the session removes our ephemeral znodes at once. */
    zookeeper_close(z->zh);
    z->zh = NULL;
    fl__free(z->ctx);
    z->ctx = NULL;
}

static void zk_destroy(fl__leader_obj_t *o)
{
    zk_t *z = o->impl;
    if (z == NULL)
        return;
    fl__free(z->base);
    fl__free(z->latch_dir);
    fl__free(z->conn_path);
    fl__free(z->latch_node);
    fl__free(z->published);
    fl__free(z);
}

const fl__leader_ops_t fl__leader_zk_ops = {
    .start = zk_start,
    .confirm = zk_confirm,
    .close = zk_close,
    .destroy = zk_destroy,
};
