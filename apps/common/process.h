/*
 * apps/common/process.h - the skeleton every cluster program shares: the
 * command line (-c CONFIG, -D key=value, --log FILE), the configuration,
 * the log file, the stop signals and a fatal exit.
 *
 * A program's main():
 *
 *   fa_process_t p;
 *   if (fa_process_init(&p, "fling-taskmanager", argc, argv) != FL_OK)
 *       return 1;                        // said why on stderr
 *   ... fa_process_service(&p, host, port, &svc), endpoints ...
 *   int status = fa_process_wait(&p);    // a signal, or fa_process_fatal
 *   ... close the endpoints, shut the service down ...
 *   fa_process_fini(&p);
 *   return status;
 */
#ifndef FLING_APPS_COMMON_PROCESS_H
#define FLING_APPS_COMMON_PROCESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <fling/config.h>
#include <fling/rpc.h>

/* The most bytes of a fatal reason that are kept. */
#define FA_REASON_MAX 1024

typedef struct fa_process {
    const char *name; /* "fling-jobmanager"; a literal */
    fl_config_t *cfg;
    /* Reason of a fatal exit, written once before fatal is set. */
    char reason[FA_REASON_MAX];
    atomic_bool fatal; /* release: reason written; acquire in wait */
} fa_process_t;

/*
 * fa_process_init parses argv (-c CONFIG, -D key=value, -Dkey=value,
 * --log FILE, -h), loads CONFIG (none: the defaults) and the overrides,
 * validates the configuration, sends the log to FILE (appended; none:
 * stderr) at level info (FLING_LOG overrides), and blocks SIGINT, SIGTERM
 * and SIGUSR1 in the calling thread: call it first in main(), before any
 * fling thread starts. Returns FL_OK, or an error code after writing
 * "<name>: <why>" to stderr (a missing file names its path); FL_ECANCELED
 * after printing the usage for -h. p is the caller's; end with
 * fa_process_fini. BLOCKS reading the file.
 */
int fa_process_init(fa_process_t *p, const char *name, int argc, char **argv);

/*
 * fa_process_service makes the program's RPC service listening on host and
 * the port range port, with the configuration's pekko.framesize,
 * pekko.ask.timeout and TLS settings (security.ssl.*, fl_cluster_tls_init:
 * with security.ssl.internal.enabled every connection it accepts or makes
 * is mutual TLS), and prints its address "fling.tcp://host:port" (with
 * TLS "fling.ssl://host:port") as the first line of stdout (and in the
 * log). Returns FL_OK (*out is the caller's: fl_rpc_service_free), or the
 * service's error after logging and writing to stderr why (a TLS file it
 * cannot use named by its key). Main thread of the program; blocks to
 * bind and to read the TLS files.
 */
int fa_process_service(fa_process_t *p, const char *host, const char *port,
                       fl_rpc_service_t **out);

/*
 * fa_process_wait BLOCKS until SIGINT or SIGTERM (returns 0, having logged
 * which) or fa_process_fatal (returns 1). Then unblocks the stop signals
 * so that a second one ends the process at once. Program's main thread.
 */
int fa_process_wait(fa_process_t *p);

/*
 * fa_process_fatal records reason (printf format), logs it as an error and
 * wakes fa_process_wait, which returns 1. The first call wins. Any thread;
 * never blocks.
 */
void fa_process_fatal(fa_process_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fa_process_fini frees the configuration and closes the log file; after
 * the service has shut down. */
void fa_process_fini(fa_process_t *p);

/*
 * The keys whose values must agree in every process of a cluster
 * (pekko.framesize, heartbeat.interval, heartbeat.timeout,
 * high-availability.cluster-id): fa_cluster_key_count of them,
 * fa_cluster_key_at(i) (NULL past the end). Literals.
 */
size_t fa_cluster_key_count(void);
const char *fa_cluster_key_at(size_t i);

/*
 * fa_cluster_conflict compares a TaskManager's values of the cluster keys
 * (n key/value pairs) with cfg's. Returns false if they agree; true with
 * why (a sentence naming the key and both values, for the rejection) if
 * one differs or is missing. Any thread.
 */
bool fa_cluster_conflict(const fl_config_t *cfg, const char *tm_id,
                         const char *const *keys, const char *const *values,
                         size_t n, char *why, size_t len);

/* fa_random_hex writes 2 * nbytes random hex digits and a NUL into buf
 * (at least 2 * nbytes + 1 bytes), from /dev/urandom or the clock. */
void fa_random_hex(char *buf, size_t nbytes);

#endif
