/*
 * fling/tls.h - the TLS options of an RPC service (docs/remote.md, "TLS"),
 * included by <fling/rpc.h>: fl_rpc_service_opts_t.tls points to one.
 */
#ifndef FLING_TLS_H
#define FLING_TLS_H

#include <stdbool.h>

/* The lowest TLS version a service speaks (fl_rpc_tls_opts_t). */
typedef enum fl_tls_version {
    FL_TLS_DEFAULT = 0, /* TLS 1.3 */
    FL_TLS_1_2 = 12,    /* TLS 1.2 and 1.3 */
    FL_TLS_1_3 = 13     /* TLS 1.3 only */
} fl_tls_version_t;

/*
 * Mutual TLS on every connection of a service (docs/remote.md, "TLS";
 * Flink's security.ssl.internal.*). Both sides authenticate: each
 * presents cert_file's chain and must be presented one that chains to a
 * CA of ca_file, or the handshake fails. A service with TLS speaks TLS
 * only: its endpoints' addresses are "fling.ssl://<host>:<port>/<id>", it
 * connects to fling.ssl:// addresses only (a fling.tcp:// one is refused,
 * FL_EINVAL), and a plaintext peer on either side is refused; there is no
 * plaintext fallback. A handshake that fails fails the connect with
 * FL_ETLS and a message naming the address and OpenSSL's reason; one that
 * does not end within handshake_timeout_ms (fl_rpc_service_opts_t) fails
 * it with FL_ETLS "... TLS handshake with <host:port> timed out after N
 * ms" (docs/remote.md, "TLS", has every message). The files are read
 * once, by fl_rpc_service_alloc (a file it cannot read or use:
 * FL_EINVAL naming the file and why). Strings are copied.
 */
typedef struct fl_rpc_tls_opts {
    /* PEM: this service's certificate, then any intermediates. */
    const char *cert_file;
    /* PEM: its private key (unencrypted). */
    const char *key_file;
    /* PEM: the CA certificates a peer's certificate must chain to. */
    const char *ca_file;
    /* FL_TLS_DEFAULT (TLS 1.3), FL_TLS_1_2 or FL_TLS_1_3; else FL_EINVAL. */
    fl_tls_version_t min_version;
    /* TLS 1.2 cipher list in OpenSSL's syntax
     * ("ECDHE-ECDSA-AES128-GCM-SHA256:..."); NULL: OpenSSL's default. A
     * word that selects no cipher (a misspelt name) is FL_EINVAL naming
     * it. It does not restrict TLS 1.3 (ciphersuites does). */
    const char *ciphers;
    /* TLS 1.3 cipher suites ("TLS_AES_128_GCM_SHA256:..."); NULL:
     * OpenSSL's default. A name OpenSSL does not know is FL_EINVAL
     * naming it. */
    const char *ciphersuites;
    /* false (default): a connecting side checks that the peer's
     * certificate names the host of the address it connects to (its
     * subjectAltName: DNS name or IP address). true: any certificate of a
     * trusted CA is accepted, as with one certificate shared by the whole
     * cluster (Flink's security.ssl.verify-hostname: false). */
    bool skip_hostname_check;
} fl_rpc_tls_opts_t;

#endif /* FLING_TLS_H */
