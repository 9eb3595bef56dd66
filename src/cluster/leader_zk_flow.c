/*
 * src/cluster/leader_zk_flow.c - the flows of the ZooKeeper implementation,
 * on the owner's main thread: the election's latch (join, list, watch the
 * one ahead, leave), the confirmation that publishes connection_info, and
 * the retrieval's read and watch of it.
 *
 * Each flow step sends one asynchronous request (leader_zk.c) and goes on
 * when its answer comes back to the main thread. One step of a handle's
 * flow is in flight at a time (zk_t.busy); an event meanwhile asks for one
 * more run when it ends (zk_t.dirty). A publication is apart from the
 * flow: the grant that asks for it may come in the middle of one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "leader_zk.h"

static void election_join(fl__leader_obj_t *o, zk_t *z);
static void election_children(fl__leader_obj_t *o, zk_t *z);
static void retrieval_read(fl__leader_obj_t *o, zk_t *z);

/* The step in flight ended: run once more if an event came meanwhile. */
static void flow_idle(fl__leader_obj_t *o, zk_t *z)
{
    z->busy = false;
    if (z->dirty) {
        z->dirty = false;
        fl__zk_flow_kick(o);
    }
}

/* Whether the flow may take one more step (bounded, see ZK_ROUNDS_MAX). */
static bool next_round(fl__leader_obj_t *o, zk_t *z)
{
    if (++z->rounds < ZK_ROUNDS_MAX)
        return true;
    FL_LOG(FL_LOG_WARN,
           "The %s of '%s' gave up after %d ZooKeeper requests in a row (its "
           "znodes keep changing); retrying on the next event",
           fl__zk_what(o), o->component, ZK_ROUNDS_MAX);
    flow_idle(o, z);
    return false;
}

/* Whether the handle can take requests (a callback may have freed the
 * object, or the session expired). Ends the flow if not. */
static bool can_send(fl__leader_obj_t *o, zk_t *z)
{
    if (!fl__leader_closed(o) && z->zh != NULL && z->connected)
        return true;
    z->busy = false;
    z->dirty = false;
    return false;
}

void fl__zk_flow_kick(fl__leader_obj_t *o)
{
    zk_t *z = o->impl;
    if (z->busy) {
        z->dirty = true;
        return;
    }
    z->busy = true;
    z->rounds = 0;
    if (!o->is_election)
        retrieval_read(o, z);
    else if (z->latch_node == NULL)
        election_join(o, z);
    else
        election_children(o, z);
}

/* ---- election ------------------------------------------------------------ */

/* Creates the latch folders and our ephemeral sequential node. The folders'
 * creates are not awaited: one session's requests are answered in order,
 * so the node's create comes after them. */
static void election_join(fl__leader_obj_t *o, zk_t *z)
{
    if (!can_send(o, z))
        return;
    char buf[ZK_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", z->latch_dir);
    size_t n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        (void)zoo_acreate(z->zh, buf, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0,
                          fl__zk_ignore_string, NULL);
        buf[i] = c;
    }
    zk_op_t *op = fl__zk_op_new(o, OP_JOIN);
    if (op == NULL) {
        flow_idle(o, z);
        return;
    }
    snprintf(buf, sizeof buf, "%s/latch-%s-", z->latch_dir, z->guid);
    int rc = zoo_acreate(z->zh, buf, o->component, (int)strlen(o->component),
                         &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL,
                         fl__zk_string_done, op);
    if (rc != ZOK) {
        fl__zk_op_failed(op, "join the leader latch", rc);
        flow_idle(o, z);
    }
}

static void election_children(fl__leader_obj_t *o, zk_t *z)
{
    if (!can_send(o, z))
        return;
    zk_op_t *op = fl__zk_op_new(o, OP_CHILDREN);
    if (op == NULL) {
        flow_idle(o, z);
        return;
    }
    snprintf(op->path, sizeof op->path, "%s", strrchr(z->latch_node, '/') + 1);
    snprintf(op->mine, sizeof op->mine, "latch-%s-", z->guid);
    int rc = zoo_aget_children(z->zh, z->latch_dir, 0, fl__zk_strings_done, op);
    if (rc != ZOK) {
        fl__zk_op_failed(op, "read the leader latch", rc);
        flow_idle(o, z);
    }
}

static void election_watch_pred(fl__leader_obj_t *o, zk_t *z, const char *pred)
{
    if (!can_send(o, z))
        return;
    zk_op_t *op = fl__zk_op_new(o, OP_WATCH_PRED);
    if (op == NULL) {
        flow_idle(o, z);
        return;
    }
    char path[ZK_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", z->latch_dir, pred);
    int rc =
        zoo_awexists(z->zh, path, fl__zk_watcher, z->ctx, fl__zk_stat_done, op);
    if (rc != ZOK) {
        fl__zk_op_failed(op, "watch the contender ahead", rc);
        flow_idle(o, z);
    }
}

/* Deletes our latch node and, when del_conn, connection_info at version,
 * in one multi-op, so that retrievers never see our address without our
 * latch node; then joins again. */
static void election_leave_multi(fl__leader_obj_t *o, zk_t *z, bool del_conn,
                                 int32_t version)
{
    if (!can_send(o, z))
        return;
    zk_op_t *op = fl__zk_op_new(o, OP_LEAVE);
    if (op == NULL) {
        flow_idle(o, z);
        return;
    }
    zoo_op_t ops[2];
    int k = 0;
    zoo_delete_op_init(&ops[k++], z->latch_node, -1);
    if (del_conn)
        zoo_delete_op_init(&ops[k++], z->conn_path, version);
    int rc = zoo_amulti(z->zh, k, ops, op->res, fl__zk_void_done, op);
    fl__free(z->published);
    z->published = NULL;
    fl__free(z->latch_node);
    z->latch_node = NULL;
    if (rc != ZOK) {
        fl__zk_op_failed(op, "leave the leader latch", rc);
        flow_idle(o, z);
    }
}

/* Leaves the latch (after a reconnection, as Curator's LeaderLatch does):
 * first reads connection_info to delete it only if it is still ours. */
static void election_leave(fl__leader_obj_t *o, zk_t *z)
{
    if (z->published == NULL) {
        election_leave_multi(o, z, false, -1);
        return;
    }
    if (!can_send(o, z))
        return;
    zk_op_t *op = fl__zk_op_new(o, OP_LEAVE_GET);
    if (op == NULL) {
        flow_idle(o, z);
        return;
    }
    int rc = zoo_aget(z->zh, z->conn_path, 0, fl__zk_data_done, op);
    if (rc != ZOK) {
        fl__zk_op_failed(op, "leave the leader latch", rc);
        flow_idle(o, z);
    }
}

static void election_done(fl__leader_obj_t *o, zk_t *z, zk_op_t *op)
{
    switch (op->kind) {
    case OP_JOIN:
        if (op->rc != ZOK) {
            fl__zk_warn(o, "join the leader latch", op->rc);
            flow_idle(o, z);
            return;
        }
        z->latch_node = fl__strdup(op->path);
        if (z->latch_node == NULL) {
            FL_LOG(FL_LOG_ERROR,
                   "Contender of '%s' left the latch again: out of memory "
                   "copying its node's name",
                   o->component);
            (void)zoo_adelete(z->zh, op->path, -1, fl__zk_ignore, NULL);
            flow_idle(o, z);
            return;
        }
        FL_LOG(FL_LOG_DEBUG, "Contender of '%s' joined the latch as %s",
               o->component, op->path);
        election_children(o, z);
        return;
    case OP_CHILDREN:
        if (op->rc != ZOK) {
            fl__zk_warn(o, "read the leader latch", op->rc);
            flow_idle(o, z);
            return;
        }
        if (op->mine[0] != '\0') {
            /* Ours from a create whose answer was lost: ignored above,
             * removed here so that it stands in no one's way. */
            char stale[ZK_PATH_MAX + 80];
            snprintf(stale, sizeof stale, "%s/%s", z->latch_dir, op->mine);
            FL_LOG(FL_LOG_DEBUG,
                   "Contender of '%s' removes its stale latch node %s",
                   o->component, stale);
            (void)zoo_adelete(z->zh, stale, -1, fl__zk_ignore, NULL);
        }
        if (!op->found) {
            /* Our node is gone (deleted by hand?): join again. */
            fl__free(z->latch_node);
            z->latch_node = NULL;
            fl__leader_revoke(o);
            if (next_round(o, z))
                election_join(o, z);
            return;
        }
        if (op->path[0] == '\0') {
            /* Lowest, by an answer of this connection: lead. */
            if (!o->leader) {
                fl_fencing_token_t t;
                if (fl__leader_random_token(&t) != FL_OK)
                    FL_LOG(FL_LOG_ERROR,
                           "Leadership of '%s' not taken: no random token "
                           "from getrandom",
                           o->component);
                else
                    fl__leader_grant(o, &t);
            }
            flow_idle(o, z);
            return;
        }
        fl__leader_revoke(o);
        election_watch_pred(o, z, op->path);
        return;
    case OP_WATCH_PRED:
        if (op->rc == ZOK) {
            flow_idle(o, z); /* wait for it to go */
        } else if (op->rc == ZNONODE) {
            if (next_round(o, z))
                election_children(o, z);
        } else {
            fl__zk_warn(o, "watch the contender ahead", op->rc);
            flow_idle(o, z);
        }
        return;
    case OP_LEAVE_GET: {
        bool ours = op->rc == ZOK && z->published != NULL && op->len >= 0 &&
                    (size_t)op->len == strlen(z->published) &&
                    memcmp(op->buf, z->published, (size_t)op->len) == 0;
        election_leave_multi(o, z, ours, op->version);
        return;
    }
    case OP_LEAVE:
        if (op->rc != ZOK && op->rc != ZNONODE)
            fl__zk_warn(o, "leave the leader latch", op->rc);
        election_join(o, z);
        return;
    default:
        flow_idle(o, z);
        return;
    }
}

/* ---- confirmation -------------------------------------------------------- */

/* Sends the multi-op that publishes payload (consumed) if our latch node
 * still exists; attempt 1 also deletes a connection_info left by an earlier
 * leader whose session has not expired yet. Returns the zoo_amulti code, or
 * ZSYSTEMERROR when out of memory. */
static int publish_send(fl__leader_obj_t *o, zk_t *z, char *payload,
                        int attempt, const fl_fencing_token_t *token)
{
    zk_op_t *op = fl__zk_op_new(o, OP_PUBLISH);
    if (op == NULL) {
        fl__free(payload);
        return ZSYSTEMERROR;
    }
    op->payload = payload;
    op->attempt = attempt;
    op->token = *token;
    zoo_op_t ops[3];
    int k = 0;
    zoo_check_op_init(&ops[k++], z->latch_node, -1);
    if (attempt == 1)
        zoo_delete_op_init(&ops[k++], z->conn_path, -1);
    zoo_create_op_init(&ops[k++], z->conn_path, payload, (int)strlen(payload),
                       &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
    int rc = zoo_amulti(z->zh, k, ops, op->res, fl__zk_void_done, op);
    if (rc != ZOK)
        op->abandoned = true; /* freed, with payload, by its completion or
                                 the close */
    return rc;
}

int fl__zk_confirm(fl__leader_obj_t *o, const char *address, char *err,
                   size_t errlen)
{
    zk_t *z = o->impl;
    char hex[33];
    fl_fencing_token_hex(&o->token, hex);
    size_t n = strlen(address) + 1 + 32 + 1;
    if (n > ZK_DATA_MAX) {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s': the address is "
                       "%zu bytes, more than %d",
                       o->component, strlen(address), ZK_DATA_MAX - 34);
        return FL_EINVAL;
    }
    if (z->zh == NULL || !z->connected || z->latch_node == NULL) {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s' with token %s: "
                       "this contender left the leader latch; wait for the "
                       "next grant",
                       o->component, hex);
        return FL_ESTATE;
    }
    char *payload = fl__malloc(n);
    if (payload == NULL) {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s': out of memory",
                       o->component);
        return FL_ENOMEM;
    }
    snprintf(payload, n, "%s\n%s", address, hex);
    int rc = publish_send(o, z, payload, 0, &o->token);
    if (rc == ZSYSTEMERROR) {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s': out of memory",
                       o->component);
        return FL_ENOMEM;
    }
    if (rc != ZOK) {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s' with token %s on "
                       "ZooKeeper %s: %s; a revoke follows if the connection "
                       "is lost",
                       o->component, hex, o->zk_quorum, zerror(rc));
        return FL_EUNREACHABLE;
    }
    return FL_OK;
}

static void publish_done(fl__leader_obj_t *o, zk_t *z, zk_op_t *op)
{
    char hex[33];
    fl_fencing_token_hex(&op->token, hex);
    if (op->rc == ZOK) {
        const char *nl = strchr(op->payload, '\n');
        FL_LOG_KV(FL_LOG_INFO,
                  FL_KV(FL_F("component", o->component), FL_F("token", hex)),
                  "Leadership of '%s' confirmed: %.*s with token %s",
                  o->component, (int)(nl - op->payload), op->payload, hex);
        fl__free(z->published);
        z->published = op->payload;
        op->payload = NULL;
        return;
    }
    if (op->attempt == 0 && op->res[1].err == ZNODEEXISTS &&
        z->latch_node != NULL && z->zh != NULL &&
        fl_leader_election_has_leadership((fl_leader_election_t *)o,
                                          &op->token)) {
        char *payload = op->payload;
        op->payload = NULL;
        int rc = publish_send(o, z, payload, 1, &op->token);
        if (rc != ZOK)
            fl__zk_warn(o, "publish the leader's address", rc);
        return;
    }
    if (op->res[0].err == ZNONODE) {
        FL_LOG(FL_LOG_WARN,
               "Leadership of '%s' with token %s not published: this "
               "contender left the leader latch",
               o->component, hex);
        fl__zk_flow_kick(o); /* the latch check revokes */
        return;
    }
    FL_LOG(FL_LOG_WARN,
           "Could not publish leadership of '%s' with token %s on ZooKeeper "
           "%s: %s; a revoke follows if the connection is lost",
           o->component, hex, o->zk_quorum, zerror(op->rc));
}

/* ---- retrieval ----------------------------------------------------------- */

static bool parse_info(const char *buf, int len, char *addr, size_t addrlen,
                       fl_fencing_token_t *t)
{
    if (len <= 0)
        return false;
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

static void retrieval_send(fl__leader_obj_t *o, zk_t *z, zk_op_kind_t kind)
{
    if (!can_send(o, z))
        return;
    zk_op_t *op = fl__zk_op_new(o, kind);
    if (op == NULL) {
        flow_idle(o, z);
        return;
    }
    int rc = kind == OP_READ ? zoo_awget(z->zh, z->conn_path, fl__zk_watcher,
                                         z->ctx, fl__zk_data_done, op)
                             : zoo_awexists(z->zh, z->conn_path, fl__zk_watcher,
                                            z->ctx, fl__zk_stat_done, op);
    if (rc != ZOK) {
        fl__zk_op_failed(op,
                         kind == OP_READ ? "read the leader's address"
                                         : "watch the leader's address",
                         rc);
        flow_idle(o, z);
    }
}

static void retrieval_read(fl__leader_obj_t *o, zk_t *z)
{
    retrieval_send(o, z, OP_READ);
}

static void retrieval_done(fl__leader_obj_t *o, zk_t *z, zk_op_t *op)
{
    if (op->kind == OP_READ && op->rc == ZOK) {
        char addr[ZK_DATA_MAX];
        fl_fencing_token_t t;
        if (!parse_info(op->buf, op->len, addr, sizeof addr, &t)) {
            FL_LOG(FL_LOG_WARN,
                   "Leader of '%s' unknown: %s on ZooKeeper %s does not hold "
                   "'<address>\\n<32 hex digits>'",
                   o->component, z->conn_path, o->zk_quorum);
            fl__leader_notify(o, NULL, NULL);
        } else {
            fl__leader_notify(o, addr, &t);
        }
        flow_idle(o, z);
    } else if (op->kind == OP_READ && op->rc == ZNONODE) {
        fl__leader_notify(o, NULL, NULL);
        retrieval_send(o, z, OP_EXISTS);
    } else if (op->kind == OP_EXISTS && op->rc == ZNONODE) {
        flow_idle(o, z); /* watched: created next */
    } else if (op->kind == OP_EXISTS && op->rc == ZOK) {
        if (next_round(o, z))
            retrieval_read(o, z);
    } else {
        fl__zk_warn(o,
                    op->kind == OP_READ ? "read the leader's address"
                                        : "watch the leader's address",
                    op->rc);
        flow_idle(o, z);
    }
}

/* ---- entry points -------------------------------------------------------- */

void fl__zk_flow_connected(fl__leader_obj_t *o)
{
    zk_t *z = o->impl;
    /* Steps of the last connection are dropped when they answer. */
    z->busy = true;
    z->dirty = false;
    z->rounds = 0;
    if (!o->is_election)
        retrieval_read(o, z);
    else if (z->latch_node != NULL)
        election_leave(o, z);
    else
        election_join(o, z);
}

void fl__zk_flow_done(fl__leader_obj_t *o, zk_op_t *op)
{
    zk_t *z = o->impl;
    if (op->kind == OP_PUBLISH)
        publish_done(o, z, op);
    else if (o->is_election)
        election_done(o, z, op);
    else
        retrieval_done(o, z, op);
}
