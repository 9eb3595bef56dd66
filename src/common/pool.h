/*
 * src/common/pool.h - the block pool: short-lived blocks of up to 1 KiB
 * from size-classed free lists cached per thread.
 *
 * Owns the size classes, the per-thread caches and the shared stacks of
 * batches. Any layer of the library may include it (messages, futures,
 * outbound frames are its blocks).
 *
 * A block is usually allocated on one thread and freed on another, so a
 * thread that has freed FL__POOL_BATCH blocks of a class hands them to a
 * shared stack as one batch, and a thread that runs out takes a whole batch
 * back: one short critical section per FL__POOL_BATCH blocks, none when the
 * shared stack is empty (then the allocator is used). Larger blocks use the
 * allocator directly.
 *
 * What the pool keeps is bounded, so that a burst's memory goes back to the
 * allocator once it is over: a thread's cache holds fewer than
 * FL__POOL_BATCH blocks of a class, and what a class's shared stack holds
 * beyond FL__POOL_KEEP_BYTES is freed by idle workers (fl__pool_trim_slice,
 * before they park) once no batch of that class was taken for
 * FL__POOL_QUIET_NS, not on the paths that allocate and free: while a
 * burst goes on, its blocks are reused. The fast paths are inline here so
 * that the message allocator built on them (actor/msg.c) costs no call.
 */
#ifndef FL_COMMON_POOL_H
#define FL_COMMON_POOL_H

#include "common/internal.h"

#define FL__POOL_NCLASS 5
#define FL__POOL_DIRECT 0xffffu /* "class" of a block from the allocator */
#define FL__POOL_BATCH 256u
/* Bytes of free blocks a class's shared stack keeps once trimmed (at
 * least a batch), the batches one trim slice frees at most, and how long
 * no batch of a class may have been taken before it is trimmed. */
#define FL__POOL_KEEP_BYTES (4u << 20)
#define FL__POOL_TRIM_SLICE 16u
#define FL__POOL_QUIET_NS (200u * 1000000u)

/*
 * A free block's first word links it to the next free block of its class.
 * Messages put their mailbox link there too (the same word, atomic), so
 * the pool reads and writes it as an atomic with relaxed order: only the
 * owning thread touches a free block.
 */
typedef struct fl__pool_node {
    _Atomic(struct fl__pool_node *) next;
} fl__pool_node_t;

/* One thread's free lists. Written by its own thread only. */
typedef struct fl__pool_cache {
    fl__pool_node_t *head[FL__POOL_NCLASS];
    fl__pool_node_t *tail[FL__POOL_NCLASS];
    uint32_t n[FL__POOL_NCLASS];
    bool registered; /* its flush at thread exit is set up */
} fl__pool_cache_t;

extern _Thread_local fl__pool_cache_t fl__tls_pool;

/* Bytes in a block of class c: 64, 128, 256, 512, 1024. */
static inline uint32_t fl__pool_class_size(unsigned c)
{
    return 64u << c;
}

/* The class of a block of `total` bytes; FL__POOL_NCLASS: too big. */
static inline unsigned fl__pool_class_of(size_t total)
{
    if (total <= fl__pool_class_size(0))
        return 0; /* the common case, a small message: no loop */
    unsigned c = 1;
    while (c < FL__POOL_NCLASS && fl__pool_class_size(c) < total)
        c++;
    return c;
}

/* Slow paths of the functions below (pool.c). Calling thread's cache. */
bool fl__pool_take_batch(unsigned c);
void fl__pool_give_back(unsigned c);
void fl__pool_register(void);
/* Give p (class c) back where fl__pool_class_put declined: sets up the
 * thread's flush at exit, or hands a full list over as a batch. */
void fl__pool_free_slow(void *p, unsigned c);

static inline fl__pool_node_t *fl__pool_link(fl__pool_node_t *n)
{
    /* Relaxed: a free block is its owner's alone (see fl__pool_node_t). */
    return atomic_load_explicit(&n->next, memory_order_relaxed);
}

/*
 * The fast paths of the two functions below with no call in them, so that
 * a caller whose own slow path is out of line saves no registers:
 * fl__pool_class_take returns a block of class c from the calling thread's
 * cache, or NULL when that is empty (then call fl__pool_class_alloc);
 * fl__pool_class_put gives p (class c, CONSUMED on true) back to it, or
 * returns false when that would complete a batch or the thread's flush at
 * exit is not set up yet (then call fl__pool_free_slow). A thread that
 * allocates and frees one block at a time (a ping-pong on one worker)
 * keeps its cache at zero or one block: both cases stay on these paths.
 * An emptied list keeps a stale head and tail: nothing reads them while
 * the count is zero (the first block freed into it sets both).
 */
static inline void *fl__pool_class_take(unsigned c)
{
    fl__pool_cache_t *k = &fl__tls_pool;
    if (fl__unlikely(k->n[c] == 0))
        return NULL;
    fl__pool_node_t *n = k->head[c];
    k->head[c] = fl__pool_link(n);
    k->n[c]--;
    return n;
}

/* Push n onto the calling thread's list of class c (k: its cache); no
 * check of the count or the registration. */
static inline void fl__pool_cache_push(fl__pool_cache_t *k, fl__pool_node_t *n,
                                       unsigned c)
{
    if (k->n[c] == 0) {
        k->head[c] = NULL; /* the new list ends at n */
        k->tail[c] = n;
    }
    /* Relaxed: see fl__pool_node_t. */
    atomic_store_explicit(&n->next, k->head[c], memory_order_relaxed);
    k->head[c] = n;
    k->n[c]++;
}

static inline bool fl__pool_class_put(void *p, unsigned c)
{
    fl__pool_cache_t *k = &fl__tls_pool;
    if (fl__unlikely(!k->registered || k->n[c] + 1 >= FL__POOL_BATCH))
        return false;
    fl__pool_cache_push(k, p, c);
    return true;
}

/*
 * A block of class c (c < FL__POOL_NCLASS), or NULL when out of memory.
 * Caller owns it; give it back with fl__pool_class_free (any thread).
 */
static inline void *fl__pool_class_alloc(unsigned c)
{
    void *p = fl__pool_class_take(c);
    if (p == NULL && fl__pool_take_batch(c))
        p = fl__pool_class_take(c);
    return p != NULL ? p : fl__malloc(fl__pool_class_size(c));
}

/* Give back a block of class c, from any thread. CONSUMES p. */
static inline void fl__pool_class_free(void *p, unsigned c)
{
    if (fl__likely(fl__pool_class_put(p, c)))
        return;
    fl__pool_free_slow(p, c);
}

/*
 * fl__block_alloc returns `size` bytes from the pool (sizes up to 1 KiB;
 * larger ones from the allocator), or NULL when out of memory.
 * fl__block_free gives them back, from any thread, with the same size;
 * p may be NULL. For short-lived blocks made and freed at a high rate.
 */
void *fl__block_alloc(size_t size);
void fl__block_free(void *p, size_t size);

/* Returns this thread's cached blocks to the shared stacks. Not blocking
 * beyond one short lock per class. */
void fl__pool_flush_thread(void);

/* What fl__pool_trim_slice did. */
enum {
    FL__POOL_TRIM_NONE,  /* nothing beyond the bound */
    FL__POOL_TRIM_LATER, /* some, still in use: call again in QUIET_NS */
    FL__POOL_TRIM_MORE   /* freed a slice: call again (after other work) */
};

/*
 * Frees up to FL__POOL_TRIM_SLICE batches (of FL__POOL_BATCH blocks) that
 * a class's shared stack holds beyond FL__POOL_KEEP_BYTES, if no batch of
 * that class was taken for FL__POOL_QUIET_NS before now_ns
 * (fl_clock_now_ns). Returns an FL__POOL_TRIM_* code. For a thread with
 * nothing else to do (a worker about to park); a few relaxed loads when
 * nothing is beyond the bound, else one short lock. Any thread.
 */
int fl__pool_trim_slice(uint64_t now_ns);

/*
 * The pool's users (actor systems) hold it: fl__pool_hold counts one in;
 * fl__pool_release counts one out and, at zero, frees the shared stacks
 * (and the caller's cache). With no user left fl__block_free frees to the
 * allocator: nothing would trim the pool again. Any thread.
 */
void fl__pool_hold(void);
void fl__pool_release(void);

#endif /* FL_COMMON_POOL_H */
