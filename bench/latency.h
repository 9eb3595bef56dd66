/*
 * latency.h - latency percentiles, shared by fling_bench and the raw TCP
 * floor (bench/peers/floor, plain C without fling): header-only, so the
 * peer stays free of the library.
 */
#ifndef FL_BENCH_LATENCY_H
#define FL_BENCH_LATENCY_H

#include <stddef.h>
#include <stdint.h>

/* qsort comparator for uint64_t samples, ascending. */
static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* percentile_us: the nearest-rank pct-th percentile (1..100) of n > 0
 * sorted nanosecond samples, in microseconds. */
static inline double percentile_us(const uint64_t *sorted, size_t n,
                                   unsigned pct)
{
    size_t rank = (n * pct + 99) / 100; /* ceil(n * pct / 100) */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1e3;
}

#endif /* FL_BENCH_LATENCY_H */
