/*
 * fling/leader.h - leader election and leader retrieval (Flink's
 * LeaderElection / LeaderRetrievalService), standalone or on ZooKeeper.
 *
 * A contender (a component that may lead: a resource manager, a
 * dispatcher) is granted leadership with a fresh 128-bit session token, the
 * fencing token of the endpoints it then starts; it confirms by publishing
 * its address with that token, and is told when leadership is revoked (its
 * endpoints must then stop serving that token). A retriever is told the
 * current leader's address and token, and each change.
 *
 * Two implementations behind one interface (an ops table):
 * - FL_HA_NONE (Flink's standalone mode): leadership is granted at once
 *   with the all-zero token; retrieval reports the configured address with
 *   the all-zero token, once.
 * - FL_HA_ZOOKEEPER: a leader latch of ephemeral sequential znodes under
 *   <root>/<cluster-id>/leader/<component>/latch (the lowest sequence number
 *   leads); the leader's address and token in the ephemeral znode
 *   <root>/<cluster-id>/leader/<component>/connection_info, which retrievers
 *   watch. When the ZooKeeper connection is suspended, the leader revokes at
 *   once (Flink's tolerate-suspended-connections: false) and retrievers
 *   report "no leader": the client library notices a silent connection
 *   after 2/3 of the session timeout, the server expires the session (and
 *   lets another contender lead) only after all of it, so by this layer's
 *   account two contenders never lead at once. On reconnection the
 *   contender leaves the latch and joins it again; on a new session
 *   (expiry) it joins with the new one.
 *
 * Threads: every callback runs on the owner endpoint's main thread, so
 * users need no locks. The ZooKeeper implementation's requests are
 * asynchronous: the client library answers on its own thread, and the
 * answer is posted to the owner's main thread, which never waits for
 * ZooKeeper (except in fl_leader_*_free, while the session closes). A
 * grant follows only an answer of the current connection that shows this
 * contender first in the latch.
 *
 * Errors: functions return fl_err codes; a refusal writes its reason, one
 * sentence, into the caller's err buffer (errlen bytes, may be 0).
 */
#ifndef FLING_LEADER_H
#define FLING_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fl_leader_election fl_leader_election_t;
typedef struct fl_leader_retrieval fl_leader_retrieval_t;

/* Flink's high-availability.type: NONE or ZOOKEEPER. */
typedef enum fl_ha_mode { FL_HA_NONE = 0, FL_HA_ZOOKEEPER = 1 } fl_ha_mode_t;

/* Default ZooKeeper session timeout (Flink's
 * high-availability.zookeeper.client.session-timeout). */
#define FL_HA_ZK_DEFAULT_SESSION_TIMEOUT_MS 60000

typedef struct fl_ha_opts {
    fl_ha_mode_t mode;
    /* FL_HA_NONE: the leader address retrieval reports (e.g.
     * "fling.tcp://10.0.0.1:6123/resourcemanager"). Copied. */
    const char *standalone_address;
    /* FL_HA_ZOOKEEPER: high-availability.zookeeper.quorum,
     * "host:port[,host:port...]". Copied. */
    const char *zk_quorum;
    /* high-availability.zookeeper.path.root; NULL = "/flink". Starts with
     * '/', does not end with one. */
    const char *zk_root;
    /* high-availability.cluster-id; NULL = "default". No '/'. */
    const char *cluster_id;
    /* high-availability.zookeeper.client.session-timeout in ms; 0 = 60,000.
     * The server clamps it to [2, 20] ticks. */
    int64_t zk_session_timeout_ms;
} fl_ha_opts_t;

/* What a contender is told, on the owner's main thread. grant: leadership
 * with this token (valid for the call; copy it); confirm it with
 * fl_leader_election_confirm. revoke: the leadership granted last is gone. */
typedef struct fl_leader_contender {
    void (*grant)(fl_leader_election_t *le, const fl_fencing_token_t *token,
                  void *arg);
    void (*revoke)(fl_leader_election_t *le, void *arg);
} fl_leader_contender_t;

/*
 * fl_leader_election_alloc creates the election of `component` (e.g.
 * "resourcemanager"; letters, digits, '_', '-', '.') for a contender whose
 * callbacks run on owner's main thread with arg (owner: a started
 * endpoint; events that come while it is not started are dropped, as its
 * run_async tasks are, and while it lives on after the election's own
 * events would be lost, so free the election before closing it). Nothing
 * happens until
 * fl_leader_election_start. Returns FL_OK and *out (caller owns it; release
 * with fl_leader_election_free), FL_EINVAL (bad options: err says which),
 * FL_ENOMEM. opts and component are copied. Any thread; never blocks.
 */
FL_EXTERN int fl_leader_election_alloc(fl_rpc_endpoint_t *owner,
                                       const fl_ha_opts_t *opts,
                                       const char *component,
                                       const fl_leader_contender_t *contender,
                                       void *arg, fl_leader_election_t **out,
                                       char *err, size_t errlen);

/*
 * fl_leader_election_start joins the election (once): standalone grants
 * leadership at once (on the main thread, after this returns); ZooKeeper
 * connects and joins the latch. FL_OK, FL_ESTATE (started already, also
 * after a refused start: free it and make a new one), FL_ENOMEM,
 * FL_EUNREACHABLE (owner terminated), FL_EINVAL (ZooKeeper: the path
 * "<root>/<cluster-id>/leader/<component>" is longer than 967 bytes).
 * The ZooKeeper client starts on the owner's main thread after this
 * returns; one that cannot start (a quorum that does not resolve) is logged
 * and started again every second. Any thread; never blocks.
 */
FL_EXTERN int fl_leader_election_start(fl_leader_election_t *le, char *err,
                                       size_t errlen);

/*
 * fl_leader_election_confirm publishes address (the leading endpoint's) with
 * token, the token of the grant being confirmed. Returns FL_OK when the
 * publication is under way (ZooKeeper: a request that writes it only if
 * this contender's latch node still exists; the outcome is logged, and a
 * latch node gone meanwhile leads to a revoke); FL_ESTATE if that
 * leadership is not held any more (revoked or never granted); FL_EINVAL
 * (address longer than 4,062 bytes); FL_ENOMEM; FL_EUNREACHABLE if the
 * request could not be sent (the session is going; a revoke follows).
 * Owner's main thread only; never blocks.
 */
FL_EXTERN int fl_leader_election_confirm(fl_leader_election_t *le,
                                         const fl_fencing_token_t *token,
                                         const char *address, char *err,
                                         size_t errlen);

/* Whether leadership with token is held now by this layer's account.
 * Owner's main thread. */
FL_EXTERN bool
fl_leader_election_has_leadership(const fl_leader_election_t *le,
                                  const fl_fencing_token_t *token);

/*
 * fl_leader_election_free leaves the election (ZooKeeper: closes the
 * session, so its znodes go at once and another contender can lead) and
 * releases it; no callback runs after it returns, and revoke is not called.
 * Requests still in flight are dropped when they answer. Call it on the
 * owner's main thread (its own grant and revoke callbacks included), or
 * from any thread once the owner has terminated. Blocks while the ZooKeeper
 * session closes (a round trip to the server, at most 3 s; none when it is
 * not connected). NULL: no-op.
 */
FL_EXTERN void fl_leader_election_free(fl_leader_election_t *le);

/* The leader is address with token; address NULL (and token NULL): no
 * leader known now. Both valid for the call only. Owner's main thread. */
typedef void (*fl_leader_listener_cb)(fl_leader_retrieval_t *lr,
                                      const char *address,
                                      const fl_fencing_token_t *token,
                                      void *arg);

/*
 * fl_leader_retrieval_alloc creates the retrieval of component's leader;
 * listener runs with arg on owner's main thread for the first leader known
 * and on each change (never twice in a row with the same address and
 * token). Returns as fl_leader_election_alloc (FL_EINVAL also for
 * FL_HA_NONE without standalone_address). Any thread; never blocks.
 */
FL_EXTERN int fl_leader_retrieval_alloc(fl_rpc_endpoint_t *owner,
                                        const fl_ha_opts_t *opts,
                                        const char *component,
                                        fl_leader_listener_cb listener,
                                        void *arg, fl_leader_retrieval_t **out,
                                        char *err, size_t errlen);

/* fl_leader_retrieval_start starts it (once). Returns as
 * fl_leader_election_start. Any thread; never blocks. */
FL_EXTERN int fl_leader_retrieval_start(fl_leader_retrieval_t *lr, char *err,
                                        size_t errlen);

/* fl_leader_retrieval_free stops and releases it; threads and blocking as
 * fl_leader_election_free (its own listener included). NULL: no-op. */
FL_EXTERN void fl_leader_retrieval_free(fl_leader_retrieval_t *lr);

/* Formats token as 32 lowercase hex digits and a NUL into buf (at least
 * 33 bytes). Returns buf. Any thread. */
FL_EXTERN char *fl_fencing_token_hex(const fl_fencing_token_t *token,
                                     char *buf);

#ifdef __cplusplus
}
#endif

#endif /* FLING_LEADER_H */
