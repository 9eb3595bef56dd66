/*
 * arena.c - the per-thread request arena (arena.h): making it, freeing it
 * with its thread, its allocator functions, and the bounded unpack.
 */
#include "rpc/arena.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

_Thread_local arena_t *fl__rpc_tls_arena;
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_destroy(void *p)
{
    fl__free(p);
}

static void arena_make_key(void)
{
    (void)pthread_key_create(&arena_key, arena_destroy);
}

arena_t *fl__rpc_arena_make(void)
{
    pthread_once(&arena_once, arena_make_key);
    fl__rpc_tls_arena = fl__calloc(1, sizeof *fl__rpc_tls_arena);
    if (fl__rpc_tls_arena != NULL)
        (void)pthread_setspecific(arena_key, fl__rpc_tls_arena);
    return fl__rpc_tls_arena;
}

void *fl__rpc_arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    size_t n = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (n <= ARENA_SIZE - a->used) {
        void *p = (char *)a->buf + a->used;
        a->used += n;
        return p;
    }
    big_block_t *b = fl__malloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->next = a->big;
    a->big = b;
    return b->align;
}

void fl__rpc_arena_free(void *data, void *p)
{
    (void)data;
    (void)p; /* released in arena_release */
}

/* The allocator data of one bounded unpack. */
typedef struct bounded {
    arena_t *arena; /* NULL: malloc and free */
    size_t left;    /* what it may still ask for */
    bool over;      /* an allocation was refused for the bound */
} bounded_t;

static void *bounded_alloc(void *data, size_t size)
{
    bounded_t *b = data;
    size_t cost = size > b->left ? SIZE_MAX : ((size + 15) & ~(size_t)15) + 16;
    if (cost > b->left) {
        b->over = true;
        return NULL;
    }
    b->left -= cost;
    /* Without an arena the message is freed by protobuf-c's default
     * allocator (malloc's free), so it comes from malloc. */
    return b->arena != NULL ? fl__rpc_arena_alloc(b->arena, size)
                            : malloc(size);
}

static void bounded_free(void *data, void *p)
{
    bounded_t *b = data;
    if (b->arena == NULL)
        free(p);
}

ProtobufCMessage *fl__rpc_unpack(const ProtobufCMessageDescriptor *d,
                                 arena_t *a, size_t len, const uint8_t *buf,
                                 bool *over)
{
    bounded_t b = {a, fl__rpc_decode_bound(len), false};
    ProtobufCAllocator alloc = {bounded_alloc, bounded_free, &b};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, len, buf);
    *over = m == NULL && b.over;
    return m;
}

void fl__rpc_decode_over_why(size_t len, char *why, size_t why_len)
{
    snprintf(why, why_len,
             ": the decoded size exceeded the bound of %zu bytes (%u x the "
             "%zu-byte body + %zu KiB)",
             fl__rpc_decode_bound(len), FL__DECODE_FACTOR, len,
             FL__DECODE_SLACK >> 10);
}
