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
 * cx_wait_for_stop blocks the caller (main) until SIGINT or SIGTERM, or
 * until ep has terminated by itself (its start failed); then unblocks the
 * signals, so a second one ends a hanging shutdown. Returns 0 after a
 * signal, 1 if ep ended by itself. The signals must have been blocked
 * (fl_signals_block) before fling started its first thread.
 */
int cx_wait_for_stop(const char *prog, fl_rpc_endpoint_t *ep);

/* The stop signals, for fl_signals_block. */
extern const int cx_stop_signals[2];

/* Writes the 32 hex digits of token into buf (33 bytes); returns buf. */
const char *cx_hex(const fl_fencing_token_t *token, char *buf);

/* A copy of s (malloc), NULL if out of memory. */
char *cx_strdup(const char *s);

#endif
