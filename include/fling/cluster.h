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

#ifdef __cplusplus
}
#endif

#endif /* FLING_CLUSTER_H */
