/*
 * alloc_count.h - what the decode tests share (decode_bound_test.c,
 * big_decode_test.c): the counting allocator (tests/fl_alloc.h), and the
 * body of unknown protobuf fields that protobuf-c decodes at about 36
 * bytes per wire byte.
 *
 * Header-only (static inline), like wire_raw.h, because every test is its
 * own program.
 */
#ifndef ALLOC_COUNT_H
#define ALLOC_COUNT_H

#include "fl_alloc.h"

#include <stdint.h>
#include <stdlib.h>

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
