/*
 * src/common/heap.h - an intrusive binary min-heap of deadlines: the
 * element embeds an fl__hnode_t (its key, a tie-breaker and its place in
 * the heap), so removing any element is O(log n) and no node is allocated
 * per element; the heap owns only its array of pointers. Ordered by
 * (key, seq): equal keys come out in seq order.
 *
 * Not thread-safe: the owner's lock or thread guards a heap and its
 * nodes.
 */
#ifndef FL_COMMON_HEAP_H
#define FL_COMMON_HEAP_H

#include "common/internal.h"

/* A node's idx while it is on no heap. */
#define FL__HEAP_NONE SIZE_MAX

typedef struct fl__hnode {
    uint64_t key; /* a deadline, ns */
    uint64_t seq; /* orders equal keys */
    size_t idx;   /* its place in the array, or FL__HEAP_NONE */
} fl__hnode_t;

typedef struct fl__heap {
    fl__hnode_t **a;
    size_t len, cap;
} fl__heap_t;

/* An empty heap (zeroed memory is one too). */
#define FL__HEAP_INIT                                                          \
    {                                                                          \
        NULL, 0, 0                                                             \
    }

/* True while n is on a heap. */
static inline bool fl__hnode_queued(const fl__hnode_t *n)
{
    return n->idx != FL__HEAP_NONE;
}

/* The smallest node, or NULL when h is empty. O(1). */
static inline fl__hnode_t *fl__heap_top(const fl__heap_t *h)
{
    return h->len != 0 ? h->a[0] : NULL;
}

/* Put n (key and seq set, on no heap) on h. FL_OK, or FL_ENOMEM (the
 * array could not grow; n stays off the heap). O(log n); O(1) when n's
 * key is not below its parent's, as with one timeout value. */
int fl__heap_push(fl__heap_t *h, fl__hnode_t *n);

/* Take n (on h) off h; n's idx becomes FL__HEAP_NONE. O(log n). The array
 * shrinks when it is mostly empty. */
void fl__heap_remove(fl__heap_t *h, fl__hnode_t *n);

/* Give n (on h) a new key and move it to its place. O(log n). */
void fl__heap_rekey(fl__heap_t *h, fl__hnode_t *n, uint64_t key);

/* Forget every node, keeping the array: the caller drops the nodes (their
 * idx is left as it was). */
static inline void fl__heap_drop_all(fl__heap_t *h)
{
    h->len = 0;
}

/* Forget every node as fl__heap_drop_all, and free the array. */
void fl__heap_fini(fl__heap_t *h);

#endif /* FL_COMMON_HEAP_H */
