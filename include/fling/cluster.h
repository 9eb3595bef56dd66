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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "heartbeat.h"
#include "leader.h"
#include "registration.h"
#include "rpc.h"

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
 * reports for endpoint endpoint_id (an IPv6 host goes in [ ]). The scheme
 * is fl_cluster_rpc_scheme(cfg)'s: "fling.ssl://" with TLS on. endpoint_id
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

/*
 * The TLS settings of a configuration (docs/guide.md, "Turning TLS on"):
 * security.ssl.internal.* and security.ssl.* as an RPC service's options.
 * Filled by fl_cluster_tls_init, read-only after; end with
 * fl_cluster_tls_fini.
 */
typedef struct fl_cluster_tls {
    /* security.ssl.internal.enabled. */
    bool enabled;
    /* The service's TLS options (fl_rpc_tls_opts_t), whether enabled or
     * not: cert_file, key_file and ca_file are security.ssl.internal.
     * certificate, key and truststore (pointing into the config: valid
     * until their key is set again or the config freed); min_version is
     * security.ssl.protocol (TLSv1.3: FL_TLS_1_3, TLSv1.2: FL_TLS_1_2);
     * ciphersuites and ciphers are the names of security.ssl.algorithms
     * that start "TLS_" and the others, each list ':'-joined, NULL when
     * it has none (OpenSSL's defaults); skip_hostname_check is the
     * negation of security.ssl.verify-hostname. */
    fl_rpc_tls_opts_t opts;
    /* security.ssl.internal.handshake-timeout in ms (1..86400000). */
    int64_t handshake_timeout_ms;
    /* Private to fling (the memory of opts.ciphers and opts.ciphersuites):
     * neither read nor write it; fl_cluster_tls_fini frees it. */
    char *lists_;
} fl_cluster_tls_t;

/*
 * fl_cluster_tls_init fills t (the caller's memory) from cfg's
 * security.ssl.* keys. It refuses what fl_config_validate refuses of those
 * keys: security.ssl.internal.enabled without
 * security.ssl.internal.certificate, .key or .truststore, a
 * security.ssl.algorithms that is not a comma-separated list of names, and
 * one that names no TLS 1.3 suite with security.ssl.protocol TLSv1.3; the
 * other keys are not checked (validate the whole config yourself). The
 * files and the names of the suites are not checked here:
 * fl_rpc_service_alloc reads the files and refuses a name OpenSSL does not
 * know. Returns FL_OK; FL_EINVAL with why (why_len bytes, may be NULL)
 * saying which key and what to set; FL_ENOMEM. t is zeroed on error, and
 * may be passed to fl_cluster_tls_fini either way. cfg must outlive t's
 * use: t->opts points into it. Any thread; never blocks.
 */
FL_EXTERN int fl_cluster_tls_init(fl_cluster_tls_t *t, const fl_config_t *cfg,
                                  char *why, size_t why_len);

/*
 * fl_cluster_tls_apply sets o->tls to &t->opts and o->handshake_timeout_ms
 * to t->handshake_timeout_ms when t->enabled; else leaves o as it is
 * (plaintext, the service's own handshake timeout). NULL t or o: a no-op.
 * t, and the cfg it was made from (t->opts points into both), must live,
 * and cfg's security.ssl.* keys must not be set again, until
 * fl_rpc_service_alloc(o) has returned (the service copies what it
 * keeps). Any thread; never
 * blocks.
 */
FL_EXTERN void fl_cluster_tls_apply(const fl_cluster_tls_t *t,
                                    fl_rpc_service_opts_t *o);

/* fl_cluster_tls_fini frees what fl_cluster_tls_init took and zeroes t;
 * NULL is a no-op. */
FL_EXTERN void fl_cluster_tls_fini(fl_cluster_tls_t *t);

/*
 * fl_cluster_tls_message writes msg into buf (cap bytes, NUL terminated,
 * truncated to fit) with the TLS options' names an RPC service's messages
 * use (tls.cert_file, tls.key_file, tls.ca_file, tls.ciphers,
 * tls.ciphersuites, tls.min_version) replaced by the keys that set them
 * (security.ssl.internal.certificate ...), so that a program says what its
 * user wrote. Returns buf ("" if buf is NULL or cap 0). Any thread.
 */
FL_EXTERN const char *fl_cluster_tls_message(const char *msg, char *buf,
                                             size_t cap);

/*
 * fl_cluster_rpc_scheme is the scheme of the addresses of a process run with
 * cfg: "fling.ssl://" when security.ssl.internal.enabled is true, else
 * "fling.tcp://" (a literal). Any thread; never blocks.
 */
FL_EXTERN const char *fl_cluster_rpc_scheme(const fl_config_t *cfg);

#ifdef __cplusplus
}
#endif

#endif /* FLING_CLUSTER_H */
