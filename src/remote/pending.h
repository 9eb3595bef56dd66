/*
 * src/remote/pending.h - a connection's pending requests (pending.c): the
 * records of the requests awaiting an answer, their timeouts and what a
 * timeout says of how far its request got. Included by remote/conn.h,
 * whose types it uses; include conn.h.
 */
#ifndef FL_REMOTE_PENDING_H
#define FL_REMOTE_PENDING_H

#include "remote/conn.h"

/* Give p back (under c->mu): frees `what`; the caller let go of f. */
void fl__pending_put_locked(fl__conn_t *c, fl__pending_t *p);

/* A request is over (p off the table): let go of its future and give the
 * record back. Not under c->mu. */
void fl__pending_done(fl__conn_t *c, fl__pending_t *p);

/* An answer came for p (under c->mu): off the table and back to the pool;
 * returns its future (the request's reference) and what it was for. */
fl_future_t *fl__pending_answered_locked(fl__conn_t *c, fl__pending_t *p,
                                         fl__req_call_t *call);

/* How far request p got, for its timeout's message (pending.c), given
 * its connection's state and done counters (conn.h) when it timed out:
 * "request sent" (written whole to the socket), "request partly sent: K
 * of L bytes written", "request not sent: still queued behind N bytes"
 * (N: its lane's bytes ahead of it; "first in its queue" when none), or
 * "request not sent: the connection to <peer> was still being
 * established" (or "was closing"). Nothing is counted per request: its
 * frame's end in its lane's stream against what the lane wrote (done:
 * the writes completed, and what the socket took of the one in flight,
 * fl__conn_expire). Pure. */
void fl__pending_progress(const fl__pending_t *p, int state,
                          const uint64_t done[2], const char *peer, char *buf,
                          size_t cap);

/* Fail c's requests whose deadline is not after now, in deadline order
 * (I/O thread). */
void fl__conn_expire(fl__conn_t *c, uint64_t now);

#endif /* FL_REMOTE_PENDING_H */
