/*
 * src/remote/tls.h - the TLS engine of a connection (docs/remote.md,
 * "TLS"): OpenSSL behind two memory BIOs, no socket, no libuv. The
 * connection's side (tls_io.c) feeds it the ciphertext it read, takes the
 * plaintext out, hands it plaintext to seal and writes the ciphertext it
 * gives; the engine drives the handshake and says why one failed.
 *
 * A context (fl__tls_ctx_t) is made once per service from its
 * fl_rpc_tls_opts_t: one SSL_CTX for both roles, mutual authentication
 * always (a peer without a certificate of a trusted CA is refused), TLS
 * 1.3 unless the options allow 1.2, never below. An engine (fl__tls_t) is
 * one connection's session, a client (dialing) or a server (accepted).
 *
 * Threads: a context is read-only once made (any thread). Every call into
 * one engine takes the engine's own mutex, the innermost lock (c->mu ->
 * engine, rx_lk -> engine), so the I/O thread and a thread writing or
 * reading directly may share it.
 */
#ifndef FL_REMOTE_TLS_H
#define FL_REMOTE_TLS_H

#include <fling/rpc.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl__tls_ctx fl__tls_ctx_t;
typedef struct fl__tls fl__tls_t;

/* The longest reason fl__tls_why gives, NUL excluded. */
#define FL__TLS_WHY_MAX 255u

/* What a peer that speaks plaintext fling starts with ("FLNG", the frame
 * magic, src/remote/frame.h): a TLS side tells it from a TLS record. */
#define FL__TLS_PLAIN_CLIENT_WHY                                               \
    "the peer speaks plaintext fling, not TLS (connect with fling.tcp://, "    \
    "or turn TLS on at the peer)"
#define FL__TLS_PLAIN_SERVER_WHY                                               \
    "the peer speaks plaintext fling, not TLS (told to connect with "          \
    "fling.ssl://)"

/*
 * fl__tls_ctx_new reads o's files and makes the context. FL_OK with *out
 * (free with fl__tls_ctx_free); FL_EINVAL with `why` naming the option,
 * the file and the reason ("tls.cert_file /x/server.crt: cannot read it:
 * No such file or directory", "tls.key_file /x/k.pem does not match
 * tls.cert_file /x/server.crt", a bad min_version, a cipher or suite
 * name OpenSSL does not know: "tls.ciphersuites: 'TLS_TYPO' is no TLS
 * 1.3 suite this OpenSSL offers (e.g. TLS_AES_128_GCM_SHA256)");
 * FL_ENOMEM. BLOCKS to read the files. Any thread.
 */
int fl__tls_ctx_new(const fl_rpc_tls_opts_t *o, fl__tls_ctx_t **out, char *why,
                    size_t why_len);

/* Let go of the context. Engines made from it keep what they need (they
 * may outlive it). NULL is a no-op. */
void fl__tls_ctx_free(fl__tls_ctx_t *ctx);

/* True when the context skips the client's host name check
 * (fl_rpc_tls_opts_t.skip_hostname_check). */
bool fl__tls_ctx_skips_hostname(const fl__tls_ctx_t *ctx);

/*
 * fl__tls_new makes an engine: a client (client true: it speaks first,
 * and checks that the server's certificate names `host`, a DNS name or
 * an IP literal, unless the context skips that or host is NULL) or a
 * server. FL_OK with *out (free with fl__tls_free), FL_ENOMEM.
 */
int fl__tls_new(fl__tls_ctx_t *ctx, bool client, const char *host,
                fl__tls_t **out);

/* Free the engine and what it holds. NULL is a no-op. */
void fl__tls_free(fl__tls_t *t);

/* Ciphertext received from the peer, n bytes (copied). FL_OK, FL_ENOMEM. */
int fl__tls_feed(fl__tls_t *t, const uint8_t *p, size_t n);

/*
 * fl__tls_handshake drives the handshake with what was fed: FL_OK once it
 * is done (again: FL_OK), FL_EPENDING while it needs more of the peer's
 * bytes, FL_ETLS when it failed (fl__tls_why says why: OpenSSL's reason,
 * "certificate verify failed: <X509 reason>" for a certificate this side
 * refuses, "the peer refused the handshake: <alert>" for an alert the
 * peer sent, FL__TLS_PLAIN_*_WHY for a plaintext fling peer). Either way
 * its output (handshake messages, an alert) waits in the engine: take it
 * with fl__tls_out_take and send it.
 */
int fl__tls_handshake(fl__tls_t *t);

/* True once the handshake is done. */
bool fl__tls_done(fl__tls_t *t);

/* True when the peer's first bytes are plaintext fling (the frame magic),
 * not a TLS record: the handshake failed with FL__TLS_PLAIN_*_WHY. */
bool fl__tls_peer_plaintext(fl__tls_t *t);

/*
 * fl__tls_read decrypts into buf (cap bytes): FL_OK with *got bytes (0:
 * nothing more until more is fed), FL_ECLOSED when the peer closed the
 * session (close_notify), FL_ETLS on a broken record or an alert
 * (fl__tls_why). Before the handshake is done it drives it first (as
 * fl__tls_handshake; FL_OK with *got 0 while it is pending). Output it
 * makes (a KeyUpdate's answer, an alert) waits for fl__tls_out_take.
 */
int fl__tls_read(fl__tls_t *t, uint8_t *buf, size_t cap, size_t *got);

/* Bytes of plaintext decrypted and not read yet, at most; 0 when none
 * (more may come from ciphertext fed and not yet decrypted). */
size_t fl__tls_pending(fl__tls_t *t);

/*
 * fl__tls_write seals n bytes of plaintext into records (after the
 * handshake), all of them: FL_OK, FL_ETLS (fl__tls_why), FL_ENOMEM.
 */
int fl__tls_write(fl__tls_t *t, const void *p, size_t n);

/* Bytes of ciphertext waiting to be sent. */
size_t fl__tls_out_len(fl__tls_t *t);

/* Move up to cap bytes of the ciphertext waiting to be sent into buf, in
 * order; returns how many. */
size_t fl__tls_out_take(fl__tls_t *t, uint8_t *buf, size_t cap);

/* Why the last call that returned FL_ETLS failed (the engine's, valid
 * until it is freed; "" if none failed). Only while no other thread can
 * call into t (a test, a fuzz target): the engine rewrites it. */
const char *fl__tls_why(fl__tls_t *t);

/* A copy of fl__tls_why's reason into buf (cap bytes, NUL-terminated),
 * taken under the engine's mutex: any thread. Returns buf. */
const char *fl__tls_why_copy(fl__tls_t *t, char *buf, size_t cap);

#endif /* FL_REMOTE_TLS_H */
