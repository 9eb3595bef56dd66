/*
 * asks.c - the correlation ids of the asks an accepted connection is
 * serving (an INVOKE received, its answer not queued yet): a set of u64
 * under the connection's lock, open addressing with linear probing in one
 * array (no allocation per call), so that a second INVOKE with the id of
 * one still in flight is refused (docs/wire-protocol.md, "Correlation
 * ids") instead of being executed twice.
 */
#include "remote/conn.h"

#include <stdio.h>

/* The smallest table; it doubles at half full. It halves at an eighth
 * full only above ASKS_KEEP_CAP: a connection whose asks in flight swing
 * between none and a few dozen (every pipelined batch) keeps its table
 * rather than regrowing it each time. */
#define ASKS_MIN_CAP 16u
#define ASKS_KEEP_CAP 256u

/* The slot where corr's probe starts. Fibonacci hashing: ids handed out
 * in sequence spread over the table, and ids a peer picks to collide on
 * the low bits do not all collide after the multiply. */
static size_t home(const fl__asks_t *s, uint64_t corr)
{
    return (size_t)((corr * 0x9E3779B97F4A7C15ull) >> 32) & (s->cap - 1);
}

/* Put corr (not in s, not 0) into a table with room. */
static void place(fl__asks_t *s, uint64_t corr)
{
    size_t i = home(s, corr);
    while (s->slot[i] != 0)
        i = (i + 1) & (s->cap - 1);
    s->slot[i] = corr;
}

/* Move s to a table of cap slots. False when out of memory (s as it
 * was). */
static bool resize(fl__asks_t *s, size_t cap)
{
    uint64_t *old = s->slot;
    size_t old_cap = s->cap;
    uint64_t *slot = fl__calloc(cap, sizeof *slot);
    if (slot == NULL)
        return false;
    s->slot = slot;
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != 0)
            place(s, old[i]);
    fl__free(old);
    return true;
}

/* The slot holding corr, or SIZE_MAX. */
static size_t find(const fl__asks_t *s, uint64_t corr)
{
    if (s->cap == 0)
        return SIZE_MAX;
    for (size_t i = home(s, corr);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == corr)
            return i;
        if (s->slot[i] == 0)
            return SIZE_MAX;
    }
}

int fl__asks_add_locked(fl__conn_t *c, uint64_t corr)
{
    FL__ASSERT_LOCKED(c);
    fl__asks_t *s = &c->asks;
    if (find(s, corr) != SIZE_MAX)
        return FL_EPROTO;
    if ((s->len + 1) * 2 > s->cap &&
        !resize(s, s->cap != 0 ? s->cap * 2 : ASKS_MIN_CAP))
        return FL_ENOMEM;
    place(s, corr);
    s->len++;
    return FL_OK;
}

void fl__asks_del_locked(fl__conn_t *c, uint64_t corr)
{
    FL__ASSERT_LOCKED(c);
    fl__asks_t *s = &c->asks;
    size_t i = find(s, corr);
    if (i == SIZE_MAX)
        return;
    /* Backward-shift deletion: pull later members of the probe run into
     * the hole, so that no tombstones are needed. */
    size_t mask = s->cap - 1;
    for (size_t j = (i + 1) & mask; s->slot[j] != 0; j = (j + 1) & mask) {
        size_t h = home(s, s->slot[j]);
        /* j's member may move to i if i lies on its probe path h..j. */
        if (((j - h) & mask) >= ((j - i) & mask)) {
            s->slot[i] = s->slot[j];
            i = j;
        }
    }
    s->slot[i] = 0;
    s->len--;
    if (s->cap > ASKS_KEEP_CAP && s->len * 8 < s->cap)
        (void)resize(s, s->cap / 2); /* or keep the larger table */
}

void fl__asks_answered_locked(fl__conn_t *c, const fl__obuf_t *b)
{
    uint8_t kind = b->data[5];
    if (kind != FL__K_REPLY && kind != FL__K_ERROR)
        return;
    uint64_t corr = 0;
    for (int i = 8; i < 16; i++)
        corr = corr << 8 | b->data[i];
    if (corr != 0 && c->asks.len != 0)
        fl__asks_del_locked(c, corr);
}

bool fl__asks_admit(fl__conn_t *c, uint64_t corr)
{
    FL__ASSERT_IO(c->net);
    fl__conn_lock(c);
    int rc = fl__asks_add_locked(c, corr);
    fl__conn_unlock(c);
    if (rc == FL_OK)
        return true;
    if (rc == FL_ENOMEM) {
        fl__conn_answer_error(c, corr, FL_ENOMEM,
                              "out of memory receiving the call");
        return false;
    }
    char why[64];
    snprintf(why, sizeof why, "duplicate correlation id %llu",
             (unsigned long long)corr);
    fl__conn_proto_error(c, FL_EPROTO, why);
    return false;
}

void fl__asks_fini(fl__asks_t *s)
{
    fl__free(s->slot);
    s->slot = NULL;
    s->cap = s->len = 0;
}
