/*
 * fl_alloc.h - a test allocator for fl_replace_allocator: it counts the
 * bytes fling holds (live bytes, by malloc_usable_size) and their peak,
 * and, while armed, fails a seeded pseudo-random share of the
 * allocations.
 *
 * Header-only (static inline), one instance per test program: install it
 * with fl_alloc_install() at the top of main(), before any other fling
 * call (fl_replace_allocator refuses later).
 */
#ifndef FL_ALLOC_H
#define FL_ALLOC_H

#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <fling/fling.h>

static _Atomic int64_t fl_alloc_live_bytes;
static _Atomic int64_t fl_alloc_peak_bytes; /* the most live bytes since */
/* Failure injection: a share of fail_permille allocations fails while
 * fail_permille > 0; each draw hashes seed with its sequence number. */
static _Atomic uint32_t fl_alloc_fail_permille;
static _Atomic uint64_t fl_alloc_seq;
static _Atomic uint64_t fl_alloc_seed;
static _Atomic uint64_t fl_alloc_failed;

/* splitmix64's finaliser: one well-spread word per sequence number. */
static inline uint64_t fl_alloc_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline bool fl_alloc_should_fail(void)
{
    uint32_t pm =
        atomic_load_explicit(&fl_alloc_fail_permille, memory_order_relaxed);
    if (pm == 0)
        return false;
    uint64_t n =
        atomic_fetch_add_explicit(&fl_alloc_seq, 1, memory_order_relaxed);
    uint64_t s = atomic_load_explicit(&fl_alloc_seed, memory_order_relaxed);
    if (fl_alloc_mix(s ^ fl_alloc_mix(n)) % 1000u >= pm)
        return false;
    atomic_fetch_add_explicit(&fl_alloc_failed, 1, memory_order_relaxed);
    return true;
}

/* Add d to the live bytes, raising the peak with them. */
static inline void fl_alloc_add(int64_t d)
{
    int64_t now = atomic_fetch_add_explicit(&fl_alloc_live_bytes, d,
                                            memory_order_relaxed) +
                  d;
    int64_t peak =
        atomic_load_explicit(&fl_alloc_peak_bytes, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak_explicit(
                             &fl_alloc_peak_bytes, &peak, now,
                             memory_order_relaxed, memory_order_relaxed))
        ;
}

static inline void fl_alloc_count(void *p, int sign)
{
    if (p != NULL)
        fl_alloc_add(sign * (int64_t)malloc_usable_size(p));
}

static inline void *fl_alloc_malloc(size_t n)
{
    if (fl_alloc_should_fail())
        return NULL;
    void *p = malloc(n);
    fl_alloc_count(p, 1);
    return p;
}

static inline void *fl_alloc_calloc(size_t n, size_t size)
{
    if (fl_alloc_should_fail())
        return NULL;
    void *p = calloc(n, size);
    fl_alloc_count(p, 1);
    return p;
}

static inline void *fl_alloc_realloc(void *p, size_t n)
{
    if (fl_alloc_should_fail())
        return NULL;
    size_t old = p != NULL ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n);
    if (q == NULL)
        return NULL; /* p is untouched */
    fl_alloc_add((int64_t)malloc_usable_size(q) - (int64_t)old);
    return q;
}

static inline void fl_alloc_free(void *p)
{
    fl_alloc_count(p, -1);
    free(p);
}

/* Makes this allocator fling's. 0, or the fl_replace_allocator code. */
static inline int fl_alloc_install(void)
{
    return fl_replace_allocator(fl_alloc_malloc, fl_alloc_calloc,
                                fl_alloc_realloc, fl_alloc_free);
}

/* Bytes fling holds now (its allocations minus its frees). */
static inline int64_t fl_alloc_live(void)
{
    return atomic_load_explicit(&fl_alloc_live_bytes, memory_order_relaxed);
}

/* The most bytes fling held since the program started or the last
 * fl_alloc_peak_reset. */
static inline int64_t fl_alloc_peak(void)
{
    return atomic_load_explicit(&fl_alloc_peak_bytes, memory_order_relaxed);
}

/* Start a new peak from what is live now; returns that. */
static inline int64_t fl_alloc_peak_reset(void)
{
    int64_t now = fl_alloc_live();
    atomic_store_explicit(&fl_alloc_peak_bytes, now, memory_order_relaxed);
    return now;
}

/* From now on fail `permille` of 1000 allocations (0: none), drawn from
 * seed. Any thread. */
static inline void fl_alloc_fail(uint32_t permille, uint64_t seed)
{
    atomic_store(&fl_alloc_seed, seed);
    atomic_store(&fl_alloc_seq, 0);
    atomic_store(&fl_alloc_fail_permille, permille);
}

/* How many allocations failed since the program started. */
static inline uint64_t fl_alloc_failures(void)
{
    return atomic_load(&fl_alloc_failed);
}

#endif /* FL_ALLOC_H */
