/*
 * rpc_transport.h - the transport an RPC contract case runs over, and the
 * runner that picks it.
 *
 * Each contract program (tests/unit/rpc/<name>_test.c) runs once per
 * transport from one source: its argument, "local", "tcp" or "tls", picks
 * it (tests/CMakeLists.txt registers <name>.local, <name>.tcp and
 * <name>.tls), and the cmocka group is named <name>.<tran>.
 *
 * local: the service a case makes is local-only, and gateways to its
 * endpoints come from that same service ("fling://local/<id>").
 * tcp: the service a case makes listens on 127.0.0.1 port 0 (the serving
 * side), and gateways come from a second service, the caller's (cli_of),
 * connecting to the endpoint's "fling.tcp://127.0.0.1:<port>/<id>", as a
 * second process would.
 * tls: as tcp, with mutual TLS on both services (fl_rpc_tls_opts_t, the
 * test certificates of FL_TEST_CERTS): the serving service presents
 * node.crt (it may also dial), the caller's client.crt, both trust ca.crt,
 * and addresses are "fling.ssl://127.0.0.1:<port>/<id>".
 *
 * tcp and tls are the remote transports (fx_remote). FX_LOCAL_ONLY marks a
 * case that means nothing over the network (a comment says why): the
 * remote runs leave it out. Where the contract lets the transports differ
 * (an address, a tell's refusal), a case asserts each one's exact
 * behaviour under `if (fx_remote)`, and TLS's own under `if (fx_tls)`.
 *
 * Header-only (static inline), included by rpc_fixture.h.
 */
#ifndef RPC_TRANSPORT_H
#define RPC_TRANSPORT_H

#include "fl_test.h"

#ifndef FL_TEST_CERTS
#error                                                                         \
    "FL_TEST_CERTS: the test certificates' folder (tests/CMakeLists.txt, fling_test_certs)"
#endif

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The transport of this run (fx_run sets them before any case): remote
 * for tcp and tls, tls for tls only. */
static bool fx_remote;
static bool fx_tls;

/* The TLS options of the serving services and of the callers' services
 * (tls only). */
static const fl_rpc_tls_opts_t fx_tls_server = {
    .cert_file = FL_TEST_CERTS "/node.crt",
    .key_file = FL_TEST_CERTS "/node.key",
    .ca_file = FL_TEST_CERTS "/ca.crt",
};
static const fl_rpc_tls_opts_t fx_tls_client = {
    .cert_file = FL_TEST_CERTS "/client.crt",
    .key_file = FL_TEST_CERTS "/client.key",
    .ca_file = FL_TEST_CERTS "/ca.crt",
};

/* The caller's service of each serving service (remote only): created by
 * the first cli_of, ended with its serving service. */
#define FX_PAIRS 8
static struct fx_pair {
    fl_rpc_service_t *srv, *cli;
} fx_pairs[FX_PAIRS];

/* "local", "tcp" or "tls". */
static inline const char *tran_name(void)
{
    return fx_tls ? "tls" : fx_remote ? "tcp" : "local";
}

/* The scheme of the remote transport's addresses, "://" included. */
static inline const char *tran_scheme(void)
{
    return fx_tls ? "fling.ssl://" : "fling.tcp://";
}

/* Makes a service of o listen as the transport needs (tcp: 127.0.0.1,
 * port 0; tls: the same with the serving side's TLS options; local: not at
 * all). */
static inline void svc_listen(fl_rpc_service_opts_t *o)
{
    if (fx_remote) {
        o->bind_host = "127.0.0.1";
        o->port = "0";
    }
    if (fx_tls)
        o->tls = &fx_tls_server;
}

/* Gives o, a service that only dials, the caller's TLS options (tls). */
static inline void svc_dial(fl_rpc_service_opts_t *o)
{
    if (fx_tls)
        o->tls = &fx_tls_client;
}

/* The service callers of svc's endpoints connect from: svc itself (local),
 * or its caller's service (tcp), created on first use with svc's default
 * timeout. Borrowed: svc_end, svc_end_any and svc_free end it. */
static inline fl_rpc_service_t *cli_of(fl_rpc_service_t *svc)
{
    if (!fx_remote)
        return svc;
    struct fx_pair *free_slot = NULL;
    for (int i = 0; i < FX_PAIRS; i++) {
        if (fx_pairs[i].srv == svc)
            return fx_pairs[i].cli;
        if (!free_slot && !fx_pairs[i].srv)
            free_slot = &fx_pairs[i];
    }
    assert_non_null(free_slot);
    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.default_timeout_ms = fl_rpc_service_timeout(svc);
    svc_dial(&o);
    assert_fl_ok(fl_rpc_service_alloc(&o, &free_slot->cli));
    free_slot->srv = svc;
    return free_slot->cli;
}

/* Shuts down and frees svc's caller's service, if it has one. */
static inline void cli_end(fl_rpc_service_t *svc)
{
    for (int i = 0; i < FX_PAIRS; i++) {
        if (fx_pairs[i].srv == svc) {
            fl_test_service_end(fx_pairs[i].cli);
            fx_pairs[i].srv = fx_pairs[i].cli = NULL;
        }
    }
}

/* An address, by value. */
typedef struct fx_addr {
    char s[256];
} fx_addr_t;

/* The address of endpoint id on svc, as the transport writes it. */
static inline fx_addr_t tep_address(fl_rpc_service_t *svc, const char *id)
{
    fx_addr_t a;
    if (fx_remote)
        snprintf(a.s, sizeof a.s, "%s127.0.0.1:%d/%s", tran_scheme(),
                 fl_rpc_service_port(svc), id);
    else
        snprintf(a.s, sizeof a.s, "fling://local/%s", id);
    return a;
}

/* The host a gateway to a test endpoint reports. */
static inline const char *tran_hostname(void)
{
    return fx_remote ? "127.0.0.1" : "localhost";
}

/* Case markers for fx_run (in a CMUnitTest's initial_state). */
#define FX_MARK_LOCAL_ONLY ((void *)(uintptr_t)1)

/* A case that means nothing over the network: the local run only. */
#define FX_LOCAL_ONLY(fn)                                                      \
    cmocka_unit_test_prestate_setup_teardown(fn, fl_test_arm, fl_test_disarm,  \
                                             FX_MARK_LOCAL_ONLY)

/*
 * fx_run runs the n cases over the transport argv[1] names ("local", the
 * default, "tcp" or "tls") as the cmocka group "<program>.<tran>" (the
 * program's file name), leaving out what the markers above say. Returns
 * cmocka's result (the failed cases), 2 for a bad argument. Call it from main,
 * once (FX_RUN).
 */
static inline int fx_run(int argc, char **argv, const struct CMUnitTest *tests,
                         size_t n)
{
    const char *prog =
        strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (argc > 2 ||
        (argc == 2 && strcmp(argv[1], "local") != 0 &&
         strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "tls") != 0)) {
        fprintf(stderr, "usage: %s [local|tcp|tls]\n", prog);
        return 2;
    }
    fx_tls = argc == 2 && strcmp(argv[1], "tls") == 0;
    fx_remote = fx_tls || (argc == 2 && strcmp(argv[1], "tcp") == 0);
    struct CMUnitTest *run = calloc(n, sizeof *run);
    assert_non_null(run);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        void *mark = tests[i].initial_state;
        if (fx_remote && mark == FX_MARK_LOCAL_ONLY)
            continue;
        run[k] = tests[i];
        run[k++].initial_state = NULL;
    }
    char group[128];
    snprintf(group, sizeof group, "%s.%s", prog, tran_name());
    /* cmocka's own output names the group only in its xml/subunit/tap
     * forms: say it here too, so a failure says its transport. */
    printf("[==========] %s: %zu of %zu case(s) over %s\n", group, k, n,
           tran_name());
    fflush(stdout);
    int rc = _cmocka_run_group_tests(group, run, k, NULL, NULL);
    free(run);
    return rc;
}

/* fx_run over the array tests. */
#define FX_RUN(argc, argv, tests)                                              \
    fx_run((argc), (argv), (tests), sizeof(tests) / sizeof((tests)[0]))

#endif /* RPC_TRANSPORT_H */
