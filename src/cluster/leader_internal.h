/*
 * src/cluster/leader_internal.h - what leader.c (the interface, the
 * standalone implementation) shares with leader_zk.c (ZooKeeper).
 */
#ifndef FL_CLUSTER_LEADER_INTERNAL_H
#define FL_CLUSTER_LEADER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include <fling/leader.h>

typedef struct fl__leader_obj fl__leader_obj_t;

/* One implementation. start: any thread, never blocks. confirm and close:
 * the owner's main thread (or any thread once it terminated). close stops
 * everything that could still call in (joins the implementation's threads);
 * destroy frees the implementation's memory once the last reference went. */
typedef struct fl__leader_ops {
    int (*start)(fl__leader_obj_t *o, char *err, size_t errlen);
    int (*confirm)(fl__leader_obj_t *o, const char *address, char *err,
                   size_t errlen);
    void (*close)(fl__leader_obj_t *o);
    void (*destroy)(fl__leader_obj_t *o);
} fl__leader_ops_t;

/* An election or a retrieval (both public handles are one of these). */
struct fl__leader_obj {
    const fl__leader_ops_t *ops;
    bool is_election;
    fl_rpc_endpoint_t *owner;
    char *component;
    char *standalone_address;
    char *zk_quorum;
    char *zk_root;
    char *cluster_id;
    int64_t zk_session_timeout_ms;
    fl_leader_contender_t contender;
    fl_leader_listener_cb listener;
    void *arg;
    /* Tasks posted to the main thread hold a reference each. */
    _Atomic int refs;
    /* Set by free (release; read acquire by the tasks): callbacks stop. */
    _Atomic bool closed;
    _Atomic bool started;
    /* ---- main thread ---- */
    bool leader;              /* election: leadership held */
    fl_fencing_token_t token; /* election: its token */
    bool known;               /* retrieval: a leader was reported */
    char *leader_address;     /* retrieval: the one reported */
    fl_fencing_token_t leader_token;
    void *impl;
};

void fl__leader_ref(fl__leader_obj_t *o);
void fl__leader_unref(fl__leader_obj_t *o);
bool fl__leader_closed(const fl__leader_obj_t *o);

/* Main thread. grant: take leadership with token and tell the contender.
 * revoke: give it up and tell the contender, if held. notify: report
 * address/token (NULL: no leader) to the listener unless unchanged. */
void fl__leader_grant(fl__leader_obj_t *o, const fl_fencing_token_t *token);
void fl__leader_revoke(fl__leader_obj_t *o);
void fl__leader_notify(fl__leader_obj_t *o, const char *address,
                       const fl_fencing_token_t *token);

/* A fresh random token (getrandom). FL_OK or FL_ESYSTEM. */
int fl__leader_random_token(fl_fencing_token_t *out);

/* Writes the printf-style reason into err (errlen may be 0). */
void fl__leader_err(char *err, size_t errlen, const char *fmt, ...)
    FL_PRINTF(3, 4);

/* The ZooKeeper implementation (leader_zk.c). */
extern const fl__leader_ops_t fl__leader_zk_ops;

#endif
