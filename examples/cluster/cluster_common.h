/*
 * cluster_common.h - what the two programs of the cluster example share:
 * the command line and the configuration, the log, and main()'s wait for
 * a stop signal.
 */
#ifndef CLUSTER_COMMON_H
#define CLUSTER_COMMON_H

#include <fling/cluster.h>
#include <fling/fling.h>

#include <stdbool.h>

/* The component whose leader the workers follow. */
#define CX_COMPONENT "coordinator"

/* The coordinator endpoints' id pattern: each leadership has its own
 * endpoint, coordinator_<n>, fenced with that leadership's token. */
#define CX_COORDINATOR_PATTERN "coordinator_*"

/* The options of one program, from its command line. */
typedef struct cx_args {
    const char *config; /* -c FILE, NULL: none (the defaults) */
    const char *name;   /* --name NAME */
    const char *host;   /* --host HOST (worker), NULL: the default */
    bool print_config;  /* --print-config */
} cx_args_t;

/*
 * cx_setup reads the command line of program prog: -c FILE, -D key=value
 * (any number, applied over the file), --name NAME, --host HOST (when
 * allow_host) and --print-config; loads the file, applies the overrides,
 * validates. On success returns the config (caller frees it with
 * fl_config_free) and fills *args (its strings point into argv); prints
 * the effective configuration when asked. On error prints why to stderr
 * and returns NULL. Also sets the log level to info unless FLING_LOG says
 * otherwise. main() only; blocks on the file's reading.
 */
fl_config_t *cx_setup(const char *prog, int argc, char **argv, bool allow_host,
                      cx_args_t *args);

/*
 * cx_serve runs program prog's one endpoint until a stop signal: makes a
 * service with so, creates and starts an endpoint with eo, blocks the
 * caller (main) until SIGINT or SIGTERM or until the endpoint has ended
 * by itself (its start failed), then shuts the service down, which closes
 * the endpoint (its on_stop runs), and frees both. Returns the exit
 * status: 0 after a signal and a clean shutdown, 1 otherwise (the reason
 * on stderr). The stop signals must have been blocked (fl_signals_block)
 * before fling started its first thread.
 */
int cx_serve(const char *prog, const fl_rpc_service_opts_t *so,
             const fl_rpc_endpoint_opts_t *eo);

struct Clusterex__Heartbeat;
struct Clusterex__Timing;

/* Packs msg (borrowed) into out, its timing into *tm if it has one: out
 * borrows msg's strings and bytes. For a send function. */
void cx_heartbeat_pack(const fl_heartbeat_msg_t *msg,
                       struct Clusterex__Heartbeat *out,
                       struct Clusterex__Timing *tm);

/* Unpacks in (borrowed) into out, its timing into *timing if it has one:
 * out borrows in's strings and bytes. For a handler. */
void cx_heartbeat_unpack(const struct Clusterex__Heartbeat *in,
                         fl_heartbeat_msg_t *out,
                         fl_heartbeat_timing_t *timing);

/* The stop signals, for fl_signals_block. */
extern const int cx_stop_signals[2];

/* Writes the 32 hex digits of token into buf (33 bytes); returns buf. */
const char *cx_hex(const fl_fencing_token_t *token, char *buf);

/* A copy of s (malloc), NULL if out of memory. */
char *cx_strdup(const char *s);

#endif
