/*
 * owed.c - answers a connection owes its peer and cannot build for lack of
 * memory. The peer would wait for them until its calls time out, so the
 * connection is closed behind a connection-level ERROR FL_ENOMEM: the peer
 * then fails every call it still has pending on it at once, with that code
 * (docs/wire-protocol.md, "Out of memory").
 */
#include "remote/conn.h"

#define LOST_WHY "out of memory answering a call"

void fl__conn_answer_lost(fl__conn_t *c, uint64_t corr)
{
    FL_LOG_KV(FL_LOG_WARN, FL_KV(FL_F("peer", c->name), FL_FU64("corr", corr)),
              "%s: " LOST_WHY " (request %llu); closing the connection",
              c->name, (unsigned long long)corr);
    fl__conn_lock(c);
    c->answer_lost = true;
    fl__conn_unlock(c);
    fl__conn_kick(c);
}

void fl__conn_close_owing(fl__conn_t *c)
{
    FL__ASSERT_IO(c->net);
    /* An accepted connection writes what it queued, then the ERROR, then
     * closes (answers already made still reach their calls). Requests of
     * our own (an outbound connection) fail here with the same code. */
    fl__obuf_t *e = c->outbound ? NULL : fl__obuf_error(0, FL_ENOMEM, LOST_WHY);
    if (e == NULL) {
        fl__conn_close(c, FL_ENOMEM, LOST_WHY);
        return;
    }
    fl__conn_lock(c);
    fl__conn_enqueue_locked(c, e);
    fl__conn_unlock(c);
    c->close_when_flushed = true;
    fl__conn_flush(c);
}
