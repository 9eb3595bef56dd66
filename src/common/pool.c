/*
 * pool.c - the block pool's slow paths: batches handed between a thread's
 * cache and the shared stacks, the flush at thread exit, the trim when the
 * last user goes, and fl__block_alloc/free. The fast paths and the design
 * are in pool.h.
 */
#include "common/pool.h"
#include "common/prof.h"

#include <pthread.h>

_Thread_local fl__pool_cache_t fl__tls_pool;

/*
 * A batch is a chain of free blocks linked through their first word; its
 * first block also carries the batch's bookkeeping (free memory, so
 * overlaying it costs nothing), which makes handing a batch over O(1).
 */
typedef struct batch {
    fl__pool_node_t node;
    struct batch *next_batch;
    fl__pool_node_t *tail;
    uint32_t n;
} batch_t;

static struct {
    pthread_mutex_t mu;
    batch_t *top;
    /* Written under mu; read without it as a hint only (take_batch), so
     * relaxed is enough: the lock orders the batches themselves. */
    _Atomic size_t batches;
    /* Under mu: batches taken so far, and what the trim saw of it when
     * (fl__pool_trim_slice): it frees only once none was taken for
     * FL__POOL_QUIET_NS. */
    uint64_t takes, seen, seen_ns;
} shared[FL__POOL_NCLASS] = {{.mu = PTHREAD_MUTEX_INITIALIZER},
                             {.mu = PTHREAD_MUTEX_INITIALIZER},
                             {.mu = PTHREAD_MUTEX_INITIALIZER},
                             {.mu = PTHREAD_MUTEX_INITIALIZER},
                             {.mu = PTHREAD_MUTEX_INITIALIZER}};

/* Users holding the pool (fl__pool_hold). */
static _Atomic int users;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;

/* Give the blocks of batch b back to the allocator. */
static void free_batch(batch_t *b)
{
    fl__pool_node_t *n = &b->node;
    uint32_t count = b->n;
    for (uint32_t i = 0; i < count && n != NULL; i++) {
        fl__pool_node_t *next = fl__pool_link(n);
        fl__free(n);
        n = next;
    }
}

/* How many batches class c's shared stack keeps: FL__POOL_KEEP_BYTES. */
static size_t keep_batches(unsigned c)
{
    size_t n =
        FL__POOL_KEEP_BYTES / ((size_t)FL__POOL_BATCH * fl__pool_class_size(c));
    return n > 0 ? n : 1;
}

/* Hand this thread's whole list of class c to the shared stack. O(1). */
void fl__pool_give_back(unsigned c)
{
    fl__pool_cache_t *k = &fl__tls_pool;
    if (k->n[c] == 0)
        return;
    batch_t *b = (batch_t *)k->head[c];
    b->tail = k->tail[c];
    b->n = k->n[c];
    k->head[c] = k->tail[c] = NULL;
    k->n[c] = 0;
    FL_PROF(pool_give);
    pthread_mutex_lock(&shared[c].mu);
    b->next_batch = shared[c].top;
    shared[c].top = b;
    /* Relaxed under mu: see shared. */
    atomic_store_explicit(
        &shared[c].batches,
        atomic_load_explicit(&shared[c].batches, memory_order_relaxed) + 1,
        memory_order_relaxed);
    pthread_mutex_unlock(&shared[c].mu);
}

int fl__pool_trim_slice(uint64_t now_ns)
{
    int rc = FL__POOL_TRIM_NONE;
    for (unsigned c = 0; c < FL__POOL_NCLASS; c++) {
        size_t keep = keep_batches(c);
        /* Relaxed: a hint; the lock decides (see shared). */
        if (atomic_load_explicit(&shared[c].batches, memory_order_relaxed) <=
            keep)
            continue;
        batch_t *list = NULL;
        pthread_mutex_lock(&shared[c].mu);
        if (shared[c].takes != shared[c].seen) {
            /* Still in use: look again once it has been quiet. */
            shared[c].seen = shared[c].takes;
            shared[c].seen_ns = now_ns;
        }
        if (now_ns - shared[c].seen_ns < FL__POOL_QUIET_NS) {
            pthread_mutex_unlock(&shared[c].mu);
            rc = FL__POOL_TRIM_LATER;
            continue;
        }
        size_t have =
            atomic_load_explicit(&shared[c].batches, memory_order_relaxed);
        for (unsigned n = 0; have > keep && n < FL__POOL_TRIM_SLICE; n++) {
            batch_t *b = shared[c].top;
            shared[c].top = b->next_batch;
            b->next_batch = list;
            list = b;
            have--;
        }
        atomic_store_explicit(&shared[c].batches, have, memory_order_relaxed);
        pthread_mutex_unlock(&shared[c].mu);
        while (list != NULL) {
            batch_t *next = list->next_batch;
            free_batch(list);
            list = next;
        }
        /* A slice a call: the caller looks for work in between. */
        return FL__POOL_TRIM_MORE;
    }
    return rc;
}

void fl__pool_flush_thread(void)
{
    for (unsigned c = 0; c < FL__POOL_NCLASS; c++)
        fl__pool_give_back(c);
}

static void on_thread_exit(void *unused)
{
    (void)unused;
    fl__pool_flush_thread();
}

static void make_key(void)
{
    /* If this fails the caches of exiting threads are lost to the pool:
     * memory held, never corrupted. */
    (void)pthread_key_create(&key, on_thread_exit);
}

/* Make sure this thread's cache is flushed when the thread exits. */
void fl__pool_register(void)
{
    fl__tls_pool.registered = true;
    pthread_once(&key_once, make_key);
    (void)pthread_setspecific(key, &fl__tls_pool);
}

void fl__pool_free_slow(void *p, unsigned c)
{
    fl__pool_cache_t *k = &fl__tls_pool;
    if (!k->registered)
        fl__pool_register();
    fl__pool_cache_push(k, p, c);
    if (k->n[c] >= FL__POOL_BATCH)
        fl__pool_give_back(c);
}

/* Refill class c (empty) with a batch from the shared stack. O(1); no lock
 * when the stack is empty. */
bool fl__pool_take_batch(unsigned c)
{
    if (atomic_load_explicit(&shared[c].batches, memory_order_relaxed) == 0) {
        FL_PROF(pool_malloc);
        return false;
    }
    pthread_mutex_lock(&shared[c].mu);
    batch_t *b = shared[c].top;
    if (b != NULL) {
        shared[c].top = b->next_batch;
        /* Relaxed under mu: see shared. */
        atomic_store_explicit(
            &shared[c].batches,
            atomic_load_explicit(&shared[c].batches, memory_order_relaxed) - 1,
            memory_order_relaxed);
        shared[c].takes++;
    }
    pthread_mutex_unlock(&shared[c].mu);
    if (b == NULL) {
        FL_PROF(pool_malloc);
        return false;
    }
    FL_PROF(pool_take);
    fl__pool_cache_t *k = &fl__tls_pool;
    if (fl__unlikely(!k->registered))
        fl__pool_register();
    k->head[c] = &b->node;
    k->tail[c] = b->tail;
    k->n[c] = b->n;
    return true;
}

/* Free the shared stacks (and this thread's cache). */
static void trim(void)
{
    fl__pool_flush_thread();
    for (unsigned c = 0; c < FL__POOL_NCLASS; c++) {
        pthread_mutex_lock(&shared[c].mu);
        batch_t *b = shared[c].top;
        shared[c].top = NULL;
        /* Relaxed under mu: see shared. */
        atomic_store_explicit(&shared[c].batches, 0, memory_order_relaxed);
        pthread_mutex_unlock(&shared[c].mu);
        while (b != NULL) {
            batch_t *next_batch = b->next_batch;
            free_batch(b);
            b = next_batch;
        }
    }
}

void fl__pool_hold(void)
{
    /* Relaxed: a count; the holder's own calls follow it in program order,
     * and the trim's batches are ordered by the stacks' locks. */
    atomic_fetch_add_explicit(&users, 1, memory_order_relaxed);
}

void fl__pool_release(void)
{
    /* acq_rel pairs with the other users' releases: the last one sees
     * every batch they handed over before it trims. */
    if (atomic_fetch_sub_explicit(&users, 1, memory_order_acq_rel) == 1)
        trim();
}

void *fl__block_alloc(size_t size)
{
    unsigned c = fl__pool_class_of(size);
    return c == FL__POOL_NCLASS ? fl__malloc(size) : fl__pool_class_alloc(c);
}

void fl__block_free(void *p, size_t size)
{
    if (p == NULL)
        return;
    unsigned c = fl__pool_class_of(size);
    /* With no user left the pool is not trimmed again: plain free. Every
     * pooled block came from fl__malloc, so either way is right, and a
     * stale count (relaxed) is harmless. */
    if (c == FL__POOL_NCLASS ||
        atomic_load_explicit(&users, memory_order_relaxed) <= 0)
        fl__free(p);
    else
        fl__pool_class_free(p, c);
}
