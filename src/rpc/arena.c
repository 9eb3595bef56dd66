/*
 * arena.c - the per-thread request arena (arena.h): making it, freeing it
 * with its thread, and its allocator functions.
 */
#include "rpc/arena.h"

#include <pthread.h>

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
