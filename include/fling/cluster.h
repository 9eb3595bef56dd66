/*
 * fling/cluster.h - the cluster layer in one include: configuration
 * (config.h), retrying registration and registered connections
 * (registration.h), heartbeats (heartbeat.h), leader election and
 * retrieval (leader.h); and the functions that fill their options from a
 * configuration.
 *
 * Built on the public RPC API only. Every callback of these utilities runs
 * on the owning endpoint's main thread, so their users need no locks.
 */
#ifndef FLING_CLUSTER_H
#define FLING_CLUSTER_H

#include <stddef.h>

#include "config.h"
#include "heartbeat.h"
#include "leader.h"
#include "registration.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * fl_cluster_registration_opts fills o from cfg: the four
 * cluster.registration.* durations, cluster.registration.jitter (true:
 * FL_REGISTRATION_JITTER, false: 0) and the default random source. The
 * config checked each value when it was set; cfg as a whole must pass
 * fl_config_validate, and o fl_registration_opts_validate. Returns FL_OK,
 * or FL_EINVAL with why (why_len bytes, may be NULL). o is written only
 * on FL_OK. Any thread; never blocks.
 */
FL_EXTERN int fl_cluster_registration_opts(const fl_config_t *cfg,
                                           fl_registration_opts_t *o, char *why,
                                           size_t why_len);

/*
 * fl_cluster_heartbeat_opts sets o's interval_ms, timeout_ms and
 * failure_threshold from cfg's heartbeat.* keys and leaves every other
 * field (id, role, callbacks) as the caller set it. Returns FL_OK, or
 * FL_EINVAL with why when cfg does not pass fl_config_validate (an
 * interval above the timeout, for one); o is written only on FL_OK. Any
 * thread; never blocks.
 */
FL_EXTERN int fl_cluster_heartbeat_opts(const fl_config_t *cfg,
                                        fl_heartbeat_opts_t *o, char *why,
                                        size_t why_len);

/*
 * fl_cluster_ha_opts fills o from cfg's high-availability.* keys: the mode
 * (high-availability.type NONE: FL_HA_NONE, zookeeper: FL_HA_ZOOKEEPER),
 * the quorum, the root, the cluster id (Flink's default "/default" gives
 * "default": one leading '/' is dropped) and the session timeout. The
 * strings of o point into cfg: valid until their key is set again or cfg
 * freed. o->standalone_address is left NULL: the caller sets it (see
 * fl_cluster_jobmanager_address). Returns FL_OK, or FL_EINVAL with why
 * (why_len bytes, may be NULL) naming the key, its value, where it was set
 * and what to write: cfg does not pass fl_config_validate (zookeeper
 * without high-availability.zookeeper.quorum), or in zookeeper mode a
 * quorum that is not host:port[,host:port...], a root that does not start
 * with '/' or ends with one, a cluster id that is not a name, a session
 * timeout above 2147483647 ms. o is written only on FL_OK. Any thread;
 * never blocks.
 */
FL_EXTERN int fl_cluster_ha_opts(const fl_config_t *cfg, fl_ha_opts_t *o,
                                 char *why, size_t why_len);

/*
 * fl_cluster_jobmanager_address writes
 * "fling.tcp://<jobmanager.rpc.address>:<jobmanager.rpc.port>/<endpoint_id>"
 * and a NUL into buf (cap bytes): the address a standalone retriever
 * reports for endpoint endpoint_id (an IPv6 host goes in [ ]). endpoint_id
 * is 1..200 bytes of [A-Za-z0-9_.-], '*' allowed for a pattern. Returns
 * FL_OK, or FL_EINVAL with why (why_len bytes, may be NULL): an empty or
 * malformed host, port 0, a bad endpoint_id, or a buf too small (why says
 * the size needed). buf is written only on FL_OK. Any thread; never
 * blocks.
 */
FL_EXTERN int fl_cluster_jobmanager_address(const fl_config_t *cfg,
                                            const char *endpoint_id, char *buf,
                                            size_t cap, char *why,
                                            size_t why_len);

#ifdef __cplusplus
}
#endif

#endif /* FLING_CLUSTER_H */
