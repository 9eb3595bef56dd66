/*
 * fling/config.h - the configuration of a fling program: one YAML file like
 * Flink's conf/config.yaml, -D key=value overrides, typed getters.
 *
 * Every key fling knows is in one table (fl_config_key_at): its name, type,
 * default and a one-line doc; docs/guide.md, "Configuration", lists the
 * same table and a test keeps the two equal. Keys are Flink's where the
 * concept is the same. A file may nest the keys as maps
 * (jobmanager: {rpc: {address: x}}) or write them flat and dotted
 * (jobmanager.rpc.address: x), or mix both.
 *
 * Values are typed: string, int, bool (true/false), duration ("10 s",
 * "500 ms", "5 min", "1 h", "2 d"; a bare number is ms, as in Flink) and
 * size ("10 mb", "64 kb", "10485760b"; a bare number is bytes). A value is
 * checked when it is set: its form and the range of its key
 * (cluster.registration.initial-timeout > 0 ...). The rules across keys
 * (heartbeat.interval <= heartbeat.timeout) are fl_config_validate's.
 *
 * Errors. Functions that refuse input return an fl_err code and, when the
 * caller passes a buffer (err, errcap > 0), one line that says what failed,
 * why and what to do, naming the key, the value and where it came from
 * ("conf/config.yaml:4" or "-D"). Loading and overriding are ALL OR
 * NOTHING: on any error the config is left exactly as it was.
 *
 * Threads: a config is plain data with no lock. Any thread may use it, one
 * at a time; once no one changes it, getters may run on many threads at
 * once. Nothing here blocks, except fl_config_load_file reading its file.
 */
#ifndef FLING_CONFIG_H
#define FLING_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <fling/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The names of the keys, for the getters. */
#define FL_CONFIG_JOBMANAGER_RPC_ADDRESS "jobmanager.rpc.address"
#define FL_CONFIG_JOBMANAGER_RPC_PORT "jobmanager.rpc.port"
#define FL_CONFIG_TASKMANAGER_SLOTS "taskmanager.numberOfTaskSlots"
#define FL_CONFIG_TASKMANAGER_REGISTRATION_TIMEOUT                             \
    "taskmanager.registration.timeout"
#define FL_CONFIG_TASKMANAGER_HOST "taskmanager.host"
#define FL_CONFIG_TASKMANAGER_RPC_PORT "taskmanager.rpc.port"
#define FL_CONFIG_TASKMANAGER_RESOURCE_ID "taskmanager.resource-id"
#define FL_CONFIG_TASK_CANCELLATION_INTERVAL "task.cancellation.interval"
#define FL_CONFIG_TASK_CANCELLATION_TIMEOUT "task.cancellation.timeout"
#define FL_CONFIG_SLOT_REQUEST_TIMEOUT "slot.request.timeout"
#define FL_CONFIG_RESTART_ATTEMPTS "restart-strategy.fixed-delay.attempts"
#define FL_CONFIG_RESTART_DELAY "restart-strategy.fixed-delay.delay"
#define FL_CONFIG_JOBSTORE_MAX_CAPACITY "jobstore.max-capacity"
#define FL_CONFIG_JOBSTORE_EXPIRATION_TIME "jobstore.expiration-time"
#define FL_CONFIG_HA_STORAGE_DIR "high-availability.storageDir"
#define FL_CONFIG_HEARTBEAT_INTERVAL "heartbeat.interval"
#define FL_CONFIG_HEARTBEAT_TIMEOUT "heartbeat.timeout"
#define FL_CONFIG_HEARTBEAT_RPC_FAILURE_THRESHOLD                              \
    "heartbeat.rpc-failure-threshold"
#define FL_CONFIG_REGISTRATION_JITTER "cluster.registration.jitter"
#define FL_CONFIG_REGISTRATION_INITIAL_TIMEOUT                                 \
    "cluster.registration.initial-timeout"
#define FL_CONFIG_REGISTRATION_MAX_TIMEOUT "cluster.registration.max-timeout"
#define FL_CONFIG_REGISTRATION_ERROR_DELAY "cluster.registration.error-delay"
#define FL_CONFIG_REGISTRATION_REFUSED_DELAY                                   \
    "cluster.registration.refused-registration-delay"
#define FL_CONFIG_HA_TYPE "high-availability.type"
#define FL_CONFIG_HA_CLUSTER_ID "high-availability.cluster-id"
#define FL_CONFIG_HA_ZK_QUORUM "high-availability.zookeeper.quorum"
#define FL_CONFIG_HA_ZK_ROOT "high-availability.zookeeper.path.root"
#define FL_CONFIG_HA_ZK_SESSION_TIMEOUT                                        \
    "high-availability.zookeeper.client.session-timeout"
#define FL_CONFIG_HA_ZK_CONNECTION_TIMEOUT                                     \
    "high-availability.zookeeper.client.connection-timeout"
#define FL_CONFIG_RPC_FRAMESIZE "pekko.framesize"
#define FL_CONFIG_RPC_ASK_TIMEOUT "pekko.ask.timeout"
#define FL_CONFIG_SSL_INTERNAL_ENABLED "security.ssl.internal.enabled"
#define FL_CONFIG_SSL_INTERNAL_CERTIFICATE "security.ssl.internal.certificate"
#define FL_CONFIG_SSL_INTERNAL_KEY "security.ssl.internal.key"
#define FL_CONFIG_SSL_INTERNAL_TRUSTSTORE "security.ssl.internal.truststore"
#define FL_CONFIG_SSL_INTERNAL_HANDSHAKE_TIMEOUT                               \
    "security.ssl.internal.handshake-timeout"
#define FL_CONFIG_SSL_PROTOCOL "security.ssl.protocol"
#define FL_CONFIG_SSL_ALGORITHMS "security.ssl.algorithms"
#define FL_CONFIG_SSL_VERIFY_HOSTNAME "security.ssl.verify-hostname"

typedef enum fl_config_type {
    FL_CONFIG_STRING = 0,
    FL_CONFIG_INT = 1,
    FL_CONFIG_BOOL = 2,
    FL_CONFIG_DURATION = 3, /* kept in ms */
    FL_CONFIG_SIZE = 4      /* kept in bytes */
} fl_config_type_t;

/* Where the effective value of a key comes from. */
typedef enum fl_config_source {
    FL_CONFIG_DEFAULT = 0,
    FL_CONFIG_FILE = 1,
    FL_CONFIG_OVERRIDE = 2 /* -D, fl_config_set, fl_config_apply_overrides */
} fl_config_source_t;

/* One row of the key table. Every string is a literal of the library. */
typedef struct fl_config_key {
    const char *name; /* "heartbeat.interval" */
    fl_config_type_t type;
    const char *def; /* the default as a file would write it; "" none */
    const char
        *form; /* the accepted form: "duration > 0", "NONE or zookeeper" */
    const char *doc; /* one line */
} fl_config_key_t;

typedef struct fl_config fl_config_t;

/*
 * fl_config_key_count is the number of keys fling knows; fl_config_key_at
 * returns row i of the table (NULL if i is out of range), in the order
 * fl_config_print and the guide list them. Any thread; never blocks.
 */
FL_EXTERN size_t fl_config_key_count(void);
FL_EXTERN const fl_config_key_t *fl_config_key_at(size_t i);

/*
 * fl_config_type_name is "string", "int", "bool", "duration" or "size"
 * (a literal; "unknown" for anything else).
 */
FL_EXTERN const char *fl_config_type_name(fl_config_type_t type);

/*
 * fl_config_alloc makes a config with every key at its default. Returns
 * NULL when out of memory. Caller owns it; release with fl_config_free().
 */
FL_EXTERN fl_config_t *fl_config_alloc(void);

/* fl_config_free releases cfg; NULL is a no-op. */
FL_EXTERN void fl_config_free(fl_config_t *cfg);

/*
 * fl_config_load_file reads the YAML file at path and sets every key it
 * names (source FL_CONFIG_FILE), over what cfg held. A key set twice in
 * the file is an error. Returns FL_OK; FL_ENOENT if the file does not
 * exist, FL_ESYSTEM if it cannot be read, FL_EINVAL for bad YAML (line and
 * column), an unknown key (with the nearest known one) or a bad value;
 * FL_ENOMEM. On error cfg is untouched and err says why. Blocks on the
 * file's reading.
 */
FL_EXTERN int fl_config_load_file(fl_config_t *cfg, const char *path, char *err,
                                  size_t errcap);

/*
 * fl_config_load_string is fl_config_load_file on the len bytes of yaml
 * (no terminator needed); name stands for the file in messages and in
 * fl_config_print ("<string>" if NULL). Same returns, minus the file's.
 */
FL_EXTERN int fl_config_load_string(fl_config_t *cfg, const char *yaml,
                                    size_t len, const char *name, char *err,
                                    size_t errcap);

/*
 * fl_config_set sets key to value, written as in the file ("10 s"), as an
 * override. Returns FL_OK, FL_EINVAL (unknown key, bad value) or
 * FL_ENOMEM; on error cfg is untouched.
 */
FL_EXTERN int fl_config_set(fl_config_t *cfg, const char *key,
                            const char *value, char *err, size_t errcap);

/*
 * fl_config_apply_overrides sets the n "key=value" strings of kv, in
 * order (a later one wins), as overrides. Returns as fl_config_set; a
 * string without '=' is FL_EINVAL. All or nothing.
 */
FL_EXTERN int fl_config_apply_overrides(fl_config_t *cfg, const char *const *kv,
                                        size_t n, char *err, size_t errcap);

/*
 * fl_config_apply_args takes the -D options out of a program's command
 * line and applies them as fl_config_apply_overrides does. Both
 * "-D key=value" and "-Dkey=value" are understood; "--" ends the options
 * (it and what follows are kept). On FL_OK the -D options are removed from
 * argv (the others keep their order, argv[*argc] is NULL) and *argc
 * counts what is left; argv[0] is never looked at. On error argc, argv
 * and cfg are untouched. "-D" as the last argument is FL_EINVAL.
 */
FL_EXTERN int fl_config_apply_args(fl_config_t *cfg, int *argc, char **argv,
                                   char *err, size_t errcap);

/*
 * fl_config_validate checks the rules across keys that a single value
 * cannot: heartbeat.interval <= heartbeat.timeout; a quorum when
 * high-availability.type is zookeeper; with security.ssl.internal.enabled,
 * the certificate, key and truststore files named; security.ssl.algorithms
 * a list of names (no empty one) that, with security.ssl.protocol TLSv1.3,
 * names a TLS 1.3 suite (TLS_...); whether OpenSSL knows each name, and
 * whether the files can be read, is fl_rpc_service_alloc's check
 * (fl_cluster_tls_init, fling/cluster.h). (The rules of one key, such as
 * cluster.registration.initial-timeout > 0, are checked when it is set,
 * so they always hold.) Call it once the file and the overrides are in.
 * Returns FL_OK or FL_EINVAL with err naming the keys and values.
 */
FL_EXTERN int fl_config_validate(const fl_config_t *cfg, char *err,
                                 size_t errcap);

/*
 * Typed getters: the effective value of key into *out. Return FL_OK,
 * FL_ENOENT for a key fling does not know, FL_EINVAL if the key is of
 * another type (out untouched). _duration_ms gives ms, _size bytes.
 * _string's string is owned by cfg, valid until key is set again or cfg
 * freed; an unset string key is "".
 */
FL_EXTERN int fl_config_get_string(const fl_config_t *cfg, const char *key,
                                   const char **out);
FL_EXTERN int fl_config_get_int(const fl_config_t *cfg, const char *key,
                                int64_t *out);
FL_EXTERN int fl_config_get_bool(const fl_config_t *cfg, const char *key,
                                 bool *out);
FL_EXTERN int fl_config_get_duration_ms(const fl_config_t *cfg, const char *key,
                                        int64_t *out);
FL_EXTERN int fl_config_get_size(const fl_config_t *cfg, const char *key,
                                 uint64_t *out);

/*
 * fl_config_get_text writes the effective value of key into buf (cap
 * bytes, NUL terminated, truncated to fit) as a file would write it
 * ("50 s", "10 mb", "true"), the form fl_config_print uses. Returns
 * FL_OK, FL_ENOENT for an unknown key, FL_EINVAL for a NULL argument or
 * cap 0. Any thread; never blocks.
 */
FL_EXTERN int fl_config_get_text(const fl_config_t *cfg, const char *key,
                                 char *buf, size_t cap);

/*
 * fl_config_get_source says where key's value comes from; origin (if not
 * NULL) gets "" for a default, "path:line" for a file, "-D" for an
 * override, owned by cfg like _get_string's. FL_ENOENT for an unknown key.
 */
FL_EXTERN int fl_config_get_source(const fl_config_t *cfg, const char *key,
                                   fl_config_source_t *src,
                                   const char **origin);

/*
 * fl_config_print writes the effective configuration to out: every key
 * in table order, one a line, as YAML that fl_config_load_file reads
 * back, with a comment saying whether it is the default, from a file
 * (path:line) or an override:
 *     heartbeat.interval: 10 s  # default
 * Returns FL_OK or FL_ESYSTEM if writing failed. Blocks on out.
 */
FL_EXTERN int fl_config_print(const fl_config_t *cfg, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
