/*
 * src/rpc/arena.h - a bump arena per thread for unpacking requests and
 * closure replies (arena.c): a request lives exactly as long as its
 * handler runs, so its memory is released all at once when the handler
 * returns. Uses nest (a reply unpacked inside a handler's dispatch on the
 * same thread): each takes a mark and releases back to it.
 */
#ifndef FL_RPC_ARENA_H
#define FL_RPC_ARENA_H

#include <stddef.h>

#include "common/internal.h"

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

#endif /* FL_RPC_ARENA_H */
