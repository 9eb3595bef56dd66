/*
 * alloc_count.h - what the decode tests share (decode_bound_test.c,
 * big_decode_test.c): an allocator for fl_replace_allocator that counts
 * the bytes fling holds and their peak, and the body of unknown protobuf
 * fields that protobuf-c decodes at about 36 bytes per wire byte.
 *
 * Header-only (static inline), like wire_raw.h, because every test is its
 * own program.
 */
#ifndef ALLOC_COUNT_H
#define ALLOC_COUNT_H

#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <fling/fling.h>

/* ---- counting what fling allocates --------------------------------------- */

static _Atomic size_t live_bytes; /* allocated and not freed */
static _Atomic size_t peak_bytes; /* the most live_bytes reached */

static inline void count_in(void *p)
{
    if (p == NULL)
        return;
    size_t now = atomic_fetch_add(&live_bytes, malloc_usable_size(p)) +
                 malloc_usable_size(p);
    size_t peak = atomic_load(&peak_bytes);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now))
        ;
}

static inline void count_out(void *p)
{
    if (p != NULL)
        atomic_fetch_sub(&live_bytes, malloc_usable_size(p));
}

static inline void *c_malloc(size_t n)
{
    void *p = malloc(n);
    count_in(p);
    return p;
}

static inline void *c_calloc(size_t k, size_t n)
{
    void *p = calloc(k, n);
    count_in(p);
    return p;
}

static inline void *c_realloc(void *p, size_t n)
{
    count_out(p);
    void *q = realloc(p, n);
    count_in(q != NULL ? q : p); /* a failed realloc keeps p */
    return q;
}

static inline void c_free(void *p)
{
    count_out(p);
    free(p);
}

/* Starts a new peak from what is live now; returns that. */
static inline size_t peak_reset(void)
{
    size_t now = atomic_load(&live_bytes);
    atomic_store(&peak_bytes, now);
    return now;
}

/* Counts fling's allocations from now on: call first, before any other
 * fling function. FL_OK, or fl_replace_allocator's code. */
static inline int count_allocations(void)
{
    return fl_replace_allocator(c_malloc, c_calloc, c_realloc, c_free);
}

/* A packed message of n bytes made of unknown varint fields (number 15,
 * value 1): 2 bytes each. Caller frees; NULL when out of memory. */
static inline uint8_t *unknown_fields(size_t n)
{
    uint8_t *b = malloc(n);
    if (b == NULL)
        return NULL;
    for (size_t i = 0; i + 1 < n; i += 2) {
        b[i] = 15 << 3; /* field 15, varint */
        b[i + 1] = 1;
    }
    return b;
}

#endif /* ALLOC_COUNT_H */
