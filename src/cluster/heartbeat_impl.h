/*
 * src/cluster/heartbeat_impl.h - the heartbeat manager's insides, shared
 * by heartbeat.c (life, targets, their table and deadline list) and
 * heartbeat_beat.c (rounds, heartbeats in and out, timeouts, messages).
 *
 * Everything but the reference counts belongs to the owning endpoint's
 * main thread. The counts are atomic because the last reference of a
 * target may go on any thread (a call's continuation dropped when the
 * endpoint has terminated).
 */
#ifndef FL_CLUSTER_HEARTBEAT_IMPL_H
#define FL_CLUSTER_HEARTBEAT_IMPL_H

#include <fling/heartbeat.h>

#include "common/internal.h"

#define HB_ID_MAX 200

typedef enum hb_state {
    HB_RUNNING = 0,
    HB_TIMED_OUT,
    HB_UNREACHABLE,
    HB_INCOMPATIBLE
} hb_state_t;

typedef struct hb_target {
    /* The table's reference and one per call in flight. Pairs: the
     * acq_rel decrement of the last owner with the free. */
    _Atomic unsigned refs;
    struct fl_heartbeat_manager *m; /* a counted reference */
    struct hb_target *hnext;        /* the table's chain */
    struct hb_target *prev, *next;  /* the deadline list (RUNNING only) */
    bool listed;
    bool removed; /* unmonitored or stopped: ignore its outcomes */
    hb_state_t state;
    uint64_t deadline_ns; /* monotonic: when it times out */
    uint64_t since_ns;    /* monotonic: monitored or last heard */
    int64_t last_ms;      /* wall clock of the last heartbeat; 0 never */
    int failures;         /* FL_EUNREACHABLE in a row */
    bool timing_sent;     /* a message with our timing left */
    bool timing_acked;    /* and the target was heard from after it */
    char *refusal;        /* the incompatibility message, once refused */
    fl_heartbeat_send_cb send;
    void *send_arg;
    fl_free_cb send_arg_free;
    size_t hash;
    char id[];
} hb_target_t;

struct fl_heartbeat_manager {
    /* The user's handle, each periodic task and each target. Pairs as
     * hb_target_t.refs. */
    _Atomic unsigned refs;
    fl_rpc_endpoint_t *ep;
    fl_heartbeat_opts_t o; /* id points at `id` below */
    fl_heartbeat_timing_t timing;
    bool stopped;
    fl_rpc_scheduled_t *round_task, *check_task;
    /* The targets by id: chained, a power of two of buckets. */
    hb_target_t **buckets;
    size_t nbuckets, ntargets;
    /* RUNNING targets by deadline, earliest first. One timeout for all,
     * so a restarted timeout always goes to the tail: O(1) each. */
    hb_target_t *head, *tail;
    /* A round's snapshot of the targets (kept between rounds). */
    hb_target_t **snap;
    size_t snap_cap;
    char id[];
};

/* heartbeat.c */
hb_target_t *fl__hb_find(const fl_heartbeat_manager_t *m, const char *id);
void fl__hb_list_remove(fl_heartbeat_manager_t *m, hb_target_t *t);
void fl__hb_list_append(fl_heartbeat_manager_t *m, hb_target_t *t,
                        uint64_t now_ns);
void fl__hb_target_retain(hb_target_t *t);
void fl__hb_target_release(void *t);
void fl__hb_release(fl_heartbeat_manager_t *m);
int64_t fl__hb_wall_ms(void);

/* heartbeat_beat.c: a heartbeat to t now (request or response as the
 * manager's role), and the two periodic tasks (arg: the manager). */
void fl__hb_send_to(fl_heartbeat_manager_t *m, hb_target_t *t);
void fl__hb_round(fl_rpc_endpoint_t *ep, void *state, void *arg);
void fl__hb_check(fl_rpc_endpoint_t *ep, void *state, void *arg);

#endif /* FL_CLUSTER_HEARTBEAT_IMPL_H */
