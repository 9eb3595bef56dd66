/*
 * apps/client/conn.h - what `fling run`, `list` and `cancel` share: the
 * options that say where the JobManager is (-m HOST:PORT, -c CONFIG,
 * -D key=value), the connection to its Dispatcher, and the calls made
 * through it. Each function writes its failure to stderr as
 * "fling SUBCOMMAND: message" itself; the caller only returns the status.
 * One thread (the client's main); the calls BLOCK, each bounded by
 * pekko.ask.timeout.
 */
#ifndef FLING_APPS_CLIENT_CONN_H
#define FLING_APPS_CLIENT_CONN_H

#include <stdbool.h>
#include <stdio.h>

#include <fling/config.h>
#include <fling/rpc.h>

#include "dispatcher.pb-c.h"

/* The options every subcommand that talks to a JobManager takes. */
typedef struct fc_where {
    const char *cmd;        /* "run", for messages; a literal */
    void (*usage)(FILE *f); /* the subcommand's usage, after a usage error */
    const char *jm;         /* -m HOST:PORT, or NULL: the configuration's */
    const char *conf;       /* -c CONFIG, or NULL */
    const char **defines;   /* the -D key=value strings (argv's) */
    size_t n_defines;
} fc_where_t;

/*
 * fc_where_take recognises argv[*i] as one of -m, -c or -D (with its value
 * in the same or the next argument, advancing *i past it). Returns 1 when
 * it took one, 0 when argv[*i] is none of them, -1 after a usage error
 * written to stderr (a missing value). w->defines must have room for argc
 * strings (the caller allocates it).
 */
int fc_where_take(fc_where_t *w, int argc, char **argv, int *i);

/*
 * fc_where_init sets w for the subcommand cmd (a literal) and its usage,
 * with room for the -D values of argc arguments. Returns FC_EXIT_OK, or
 * FC_EXIT_FAIL after writing "fling CMD: out of memory." to stderr. Free
 * with fc_where_free either way.
 */
int fc_where_init(fc_where_t *w, const char *cmd, void (*usage)(FILE *f),
                  int argc);

/* fc_where_free frees what fc_where_init made (not w). */
void fc_where_free(fc_where_t *w);

/* The help lines of -m, -c and -D, for a subcommand's usage. */
void fc_where_usage(FILE *f);

/* A connection to the Dispatcher of one JobManager. */
typedef struct fc_conn {
    const char *cmd;
    fl_config_t *cfg;
    fl_rpc_service_t *svc;
    fl_rpc_gateway_t *gw;
    int64_t timeout_ms; /* pekko.ask.timeout */
    char hostport[300]; /* "127.0.0.1:6123", as messages name it */
} fc_conn_t;

/*
 * fc_connect loads the configuration (-c, then -D over it), finds the
 * JobManager (-m, else jobmanager.rpc.address:jobmanager.rpc.port) and
 * connects to its Dispatcher, within pekko.ask.timeout. Returns
 * FC_EXIT_OK with *c ready (end with fc_close), FC_EXIT_USAGE for a bad
 * -m, or FC_EXIT_FAIL (a bad configuration; a JobManager that cannot be
 * reached, named by its address), having written why. c is the caller's.
 */
int fc_connect(const fc_where_t *w, fc_conn_t *c);

/* fc_close frees what fc_connect made; c zeroed may be closed too. */
void fc_close(fc_conn_t *c);

/*
 * fc_call calls the DispatcherGateway method named method with req and
 * BLOCKS for the reply, at most c->timeout_ms. Returns the reply (caller
 * frees with protobuf_c_message_free_unpacked(reply, NULL)), or NULL
 * after writing "fling CMD: <what> failed: <why>" to stderr, where what
 * is e.g. "submitting job grep".
 */
ProtobufCMessage *fc_call(fc_conn_t *c, const char *method,
                          const ProtobufCMessage *req, const char *what);

/*
 * fc_call_try is fc_call that does not write its failure: returns FL_OK
 * with *reply (freed as fc_call's), or the call's code with the line
 * fc_call would write (no newline) in err.
 */
int fc_call_try(fc_conn_t *c, const char *method, const ProtobufCMessage *req,
                const char *what, ProtobufCMessage **reply, char *err,
                size_t errlen);

/* True for a code of a call that may succeed when made again: the
 * JobManager busy (FL_ELIMIT) or not reached this time (a timeout, a
 * connection lost or being made again). */
bool fc_call_transient(int rc);

/* The names of a JobStatus.State and an ExecutionState.State value
 * ("RUNNING"; "UNKNOWN(9)" for a value this client does not know: a
 * static buffer, one thread). */
const char *fc_job_state_name(int state);
const char *fc_exec_state_name(int state);

/* fc_quiet_logs drops the library's log lines (a command line client has
 * its own messages), unless FLING_LOG is set. Call first. */
void fc_quiet_logs(void);

#endif
