/*
 * src/rpc/arena.h - a bump arena per thread for unpacking requests and
 * closure replies (arena.c): a request lives exactly as long as its
 * handler runs, so its memory is released all at once when the handler
 * returns. Uses nest (a reply unpacked inside a handler's dispatch on the
 * same thread): each takes a mark and releases back to it. Also the
 * bound of one unpack's memory (fl__rpc_unpack).
 */
#ifndef FL_RPC_ARENA_H
#define FL_RPC_ARENA_H

#include <stddef.h>

#include "common/internal.h"

#include <protobuf-c/protobuf-c.h>

#define ARENA_SIZE 16384

typedef struct big_block {
    struct big_block *next;
    max_align_t align[];
} big_block_t;

typedef struct arena {
    size_t used;
    big_block_t *big;
    max_align_t buf[ARENA_SIZE / sizeof(max_align_t)];
} arena_t;

typedef struct arena_mark {
    size_t used;
    big_block_t *big;
} arena_mark_t;

/* This thread's arena (arena.c); NULL until fl__rpc_arena_make made it. */
extern _Thread_local arena_t *fl__rpc_tls_arena;

/* Make this thread's arena (freed when the thread exits). NULL when out of
 * memory: callers then unpack with the default allocator. */
arena_t *fl__rpc_arena_make(void);

/* The allocator functions of a ProtobufCAllocator whose data is an
 * arena_t: alloc bumps (blocks beyond the arena come from the heap), free
 * does nothing (arena_release gives all back). */
void *fl__rpc_arena_alloc(void *data, size_t size);
void fl__rpc_arena_free(void *data, void *p);

/* This thread's arena, made on first use; NULL when out of memory. */
static inline arena_t *thread_arena(void)
{
    if (fl__unlikely(fl__rpc_tls_arena == NULL))
        return fl__rpc_arena_make();
    return fl__rpc_tls_arena;
}

/* Where a's allocations stand now: arena_release gives back to here. */
static inline arena_mark_t arena_mark(const arena_t *a)
{
    arena_mark_t m = {a->used, a->big};
    return m;
}

/* Release everything allocated since m. */
static inline void arena_release(arena_t *a, arena_mark_t m)
{
    a->used = m.used;
    while (a->big != m.big) {
        big_block_t *next = a->big->next;
        fl__free(a->big);
        a->big = next;
    }
}

/*
 * The bound of one unpack (docs/wire-protocol.md, "Decoding"): the bytes
 * its allocations may ask for, FL__DECODE_FACTOR times the packed bytes
 * plus FL__DECODE_SLACK. 8: packed 64-bit varints of one byte, the densest
 * well-formed field, decode to 8 bytes per wire byte; the slack lets any
 * message up to a few tens of KiB through whatever its shape (protobuf-c
 * takes 32 bytes of scratch per field it scans). Unknown fields cost
 * protobuf-c about 36 bytes per wire byte: the bound refuses them early.
 */
#define FL__DECODE_FACTOR 8u
#define FL__DECODE_SLACK ((size_t)1 << 20)

/* What an unpack of len packed bytes may take (saturating). */
static inline size_t fl__rpc_decode_bound(size_t len)
{
    if (len > (SIZE_MAX - FL__DECODE_SLACK) / FL__DECODE_FACTOR)
        return SIZE_MAX;
    return len * FL__DECODE_FACTOR + FL__DECODE_SLACK;
}

/*
 * fl__rpc_unpack unpacks buf[0..len) as a d within fl__rpc_decode_bound
 * (len): every allocation counts its size rounded to 16 bytes plus 16 (the
 * heap's header), freed or not, and the first one past the bound fails the
 * unpack. The memory comes from arena a (released with arena_release), or
 * when a is NULL from malloc, as protobuf-c's default allocator (the caller
 * frees the message with protobuf_c_message_free_unpacked(m, NULL)).
 * Returns the message, or NULL with *over true when the bound stopped it
 * (false: the bytes are not a d, or out of memory). Any thread.
 */
ProtobufCMessage *fl__rpc_unpack(const ProtobufCMessageDescriptor *d,
                                 arena_t *a, size_t len, const uint8_t *buf,
                                 bool *over);

/* ": the decoded size exceeded the bound of N bytes (8 x the L-byte body
 * + 1 MiB)", the end of a "Could not decode ..." message. */
void fl__rpc_decode_over_why(size_t len, char *why, size_t why_len);

#endif /* FL_RPC_ARENA_H */
