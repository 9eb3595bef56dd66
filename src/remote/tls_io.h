/*
 * tls_io.h - TLS on a connection (tls_io.c): the seams of src/remote
 * where bytes meet the socket call in here when c->tls is set (conn.c,
 * conn_read.c, conn_write.c, await.c, handshake.c). The engine itself is
 * tls.h's; the connection and its locks are conn.h's.
 */
#ifndef FL_REMOTE_TLS_IO_H
#define FL_REMOTE_TLS_IO_H

#include "remote/conn.h"

/* c's socket (fd) is open on a TLS net: make its engine (c->tls). FL_OK
 * or FL_ENOMEM. I/O thread. */
int fl__tls_io_open(fl__conn_t *c, int fd);

/* Free c's TLS side (the socket has closed; also the last reference).
 * NULL c->tls is a no-op. */
void fl__tls_io_free(fl__conn_t *c);

/* fl__conn_flush's seam: true while the handshake is not done (frames
 * wait; what the engine has to send goes now, a client's ClientHello
 * first), false once frames may go. I/O thread. */
bool fl__tls_io_hold(fl__conn_t *c);

/* on_alloc's seam: the ciphertext buffer libuv reads into. */
void fl__tls_io_alloc(fl__conn_t *c, uv_buf_t *buf);

/* on_read's seam: n bytes of ciphertext came: the handshake, or
 * plaintext into c->rbuf and its frames handled (I/O thread, holding the
 * read side). May close c. */
void fl__tls_io_read(fl__conn_t *c, size_t n);

/* The socket's end or error (why) came: true when it failed the TLS
 * handshake (c closed: FL_ETLS on a client), false for the plaintext
 * path's handling. I/O thread. */
bool fl__tls_io_read_failed(fl__conn_t *c, const char *why);

/* The handshake deadline passed (handshake.c): true when c's TLS
 * handshake was not done (c closed with FL_ETLS "TLS handshake with
 * <peer> timed out after N ms"; the server logs it), false when the
 * HELLO's own rule applies. I/O thread. */
bool fl__tls_io_expired(fl__conn_t *c);

/* The frames of one write (bufs, n) sealed into records: *out is the
 * ciphertext, behind what a direct write left (c's, valid until the
 * write completes), which also takes the frames a direct write held.
 * FL_OK, FL_ENOMEM, FL_ETLS. I/O thread, writing. */
int fl__tls_io_seal(fl__conn_t *c, const uv_buf_t *bufs, size_t n,
                    uv_buf_t *out);

/* Why fl__tls_io_seal failed, the reason c closes with ("TLS: <why>",
 * "out of memory"): once a seal failed it is never tried again (c's,
 * valid while c is). I/O thread. */
const char *fl__tls_io_seal_why(fl__conn_t *c);

/* The ciphertext a direct write left for the socket that c->queued does
 * not count (less the frames it holds); 0 while the I/O thread writes.
 * Under c->mu. For tests: c->queued plus this stays near max_queued. */
size_t fl__tls_io_unsent_locked(fl__conn_t *c);

/* The write of fl__tls_io_seal's ciphertext completed. I/O thread. */
void fl__tls_io_written(fl__conn_t *c);

/* The handshake's done and c->fd set (under c->mu): seal the small
 * frames queued and write them, with what a direct write left before,
 * straight to the socket. As fl__conn_write_queue_locked: true when
 * nothing is left (queue and ciphertext). Any thread. */
bool fl__tls_io_write_locked(fl__conn_t *c);

/* The thread waiting for its answer reads c (holding the read side,
 * c->rx_fd >= 0): ciphertext from the socket, decrypted into c->rbuf
 * (rlen grows; a failure is kept for the I/O thread). 0, UV_EAGAIN
 * (nothing), or a socket's error or end (UV_EOF). */
int fl__tls_io_recv(fl__conn_t *c);

/* After fl__tls_io_recv: true when the I/O thread must look (a TLS
 * failure to handle, bytes the engine has to send). */
bool fl__tls_io_must_flush(fl__conn_t *c);

/* fl__conn_rx_take_left on a TLS connection: the frames left, then a
 * failure a caller's read met. I/O thread, holding the read side. */
void fl__tls_io_take_left(fl__conn_t *c);

#endif /* FL_REMOTE_TLS_IO_H */
