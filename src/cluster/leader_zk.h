/*
 * src/cluster/leader_zk.h - what the ZooKeeper implementation's two files
 * share: leader_zk.c (the session, its events, the requests in flight) and
 * leader_zk_flow.c (the latch, the publication, the retrieval).
 */
#ifndef FL_CLUSTER_LEADER_ZK_H
#define FL_CLUSTER_LEADER_ZK_H

#include <pthread.h>

/* The asynchronous API of libzookeeper_mt is the same as the single
 * threaded one; THREADED also declares its threads' helpers. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "leader_internal.h"

#define ZK_DATA_MAX 4096
#define ZK_PATH_MAX 1024
/* The longest base path ("<root>/<cluster-id>/leader/<component>") whose
 * latch nodes, base + "/latch/latch-<32 hex>-<10 digits>", fit in
 * ZK_PATH_MAX with their NUL. */
#define ZK_BASE_MAX (ZK_PATH_MAX - (int)sizeof "/latch/latch-" - 32 - 11)
/* How long to wait before starting a ZooKeeper client that could not
 * start. */
#define ZK_REOPEN_MS 1000
/* Steps of one flow (a latch check, a read) before it gives up until the
 * next event: bounds a loop of nodes that come and go. */
#define ZK_ROUNDS_MAX 16

typedef struct zk_ctx {
    fl__leader_obj_t *o;
    unsigned gen;
} zk_ctx_t;

/* What a request in flight is for. */
typedef enum zk_op_kind {
    OP_JOIN,       /* create our latch node */
    OP_CHILDREN,   /* list the latch */
    OP_WATCH_PRED, /* watch the contender ahead */
    OP_LEAVE_GET,  /* read connection_info before leaving */
    OP_LEAVE,      /* delete our latch node (and what we published) */
    OP_PUBLISH,    /* confirm: write connection_info */
    OP_READ,       /* retrieval: read and watch connection_info */
    OP_EXISTS,     /* retrieval: watch for connection_info */
} zk_op_kind_t;

/*
 * One asynchronous request. Made and issued on the main thread; its
 * completion runs on the client's completion thread, takes it off the
 * in-flight list (under zk_t.mu), fills the result fields and posts it to
 * the main thread, which handles it and frees it. Each holds a reference
 * on the object, so a completion after fl_leader_*_free only posts a task
 * that is dropped (the object is closed). Requests that never complete (the
 * handle closed first) are still on the list when zookeeper_close returns
 * and are freed there.
 */
typedef struct zk_op {
    struct zk_op *prev, *next; /* the in-flight list, under zk_t.mu */
    fl__leader_obj_t *o;
    zk_op_kind_t kind;
    unsigned gen;   /* of the handle it went on */
    unsigned epoch; /* of the connection it went on */
    bool abandoned; /* main thread: the issue failed; ignore a completion */
    int attempt;    /* OP_PUBLISH: 1 replaces a stale connection_info */
    fl_fencing_token_t token; /* OP_PUBLISH: of the grant confirmed */
    char *payload;            /* OP_PUBLISH: what it writes; owned */
    /* ---- written by the completion, read on the main thread ---- */
    int rc;
    bool found; /* OP_CHILDREN: our node is in the latch */
    /* OP_CHILDREN: our name prefix (in); another node of ours (out). */
    char mine[64];
    int len; /* data read: bytes in buf; -1 none; -2 longer than buf */
    int32_t version;
    zoo_op_result_t res[3];
    char path[ZK_PATH_MAX]; /* created node; our name (in) / pred (out) */
    char buf[ZK_DATA_MAX];
} zk_op_t;

typedef struct zk {
    pthread_mutex_t mu;
    zk_op_t *ops; /* in flight, under mu */
    /* ---- main thread ---- */
    zhandle_t *zh;
    zk_ctx_t *ctx; /* the watcher context of zh */
    unsigned gen;  /* of zh: bumped per handle */
    /* Of the connection: bumped on every connect and suspension, so that
     * an answer from an earlier connection is never acted on. */
    unsigned epoch;
    bool connected;
    bool busy;  /* a flow's request is in flight */
    bool dirty; /* an event came meanwhile: run the flow again */
    int rounds;
    char *base;
    char *latch_dir;
    char *conn_path;
    char *latch_node; /* our latch znode, or NULL */
    /* Of this session: our latch nodes are named latch-<guid>-NNNNNNNNNN,
     * so that one whose create answer was lost is still known as ours. */
    char guid[33];
    char *published; /* what we wrote into conn_path, or NULL */
} zk_t;

/* "leader election" or "leader retrieval". */
const char *fl__zk_what(const fl__leader_obj_t *o);

/* Logs that action failed with rc (a warning; the next event retries). */
void fl__zk_warn(fl__leader_obj_t *o, const char *action, int rc);

/* A new request of kind for the current handle and connection, on the
 * in-flight list; NULL when out of memory (logged). Main thread. */
zk_op_t *fl__zk_op_new(fl__leader_obj_t *o, zk_op_kind_t kind);

/* After the zoo_a* call of op returned rc != ZOK: marks op abandoned (it
 * stays listed until a completion or the close frees it) and logs. Main
 * thread. */
void fl__zk_op_failed(zk_op_t *op, const char *action, int rc);

/* Completions for zoo_a* calls whose data is a zk_op_t (client thread). */
void fl__zk_string_done(int rc, const char *value, const void *data);
void fl__zk_strings_done(int rc, const struct String_vector *strings,
                         const void *data);
void fl__zk_stat_done(int rc, const struct Stat *stat, const void *data);
void fl__zk_data_done(int rc, const char *value, int value_len,
                      const struct Stat *stat, const void *data);
void fl__zk_void_done(int rc, const void *data);
/* A completion for requests whose answer nobody needs (data NULL). */
void fl__zk_ignore(int rc, const void *data);
void fl__zk_ignore_string(int rc, const char *value, const void *data);

/* The watcher of every handle and watch (client thread). */
void fl__zk_watcher(zhandle_t *zh, int type, int state, const char *path,
                    void *wctx);

/* leader_zk_flow.c, main thread. kick: run the election's latch check or
 * the retrieval's read now, or once more after the one in flight.
 * connected: the connection (re)opened: the election leaves the latch and
 * joins again, the retrieval reads. done: op's answer, for its flow. */
void fl__zk_flow_kick(fl__leader_obj_t *o);
void fl__zk_flow_connected(fl__leader_obj_t *o);
void fl__zk_flow_done(fl__leader_obj_t *o, zk_op_t *op);

/* fl__leader_ops_t.confirm of ZooKeeper (leader_zk_flow.c). */
int fl__zk_confirm(fl__leader_obj_t *o, const char *address, char *err,
                   size_t errlen);

#endif
