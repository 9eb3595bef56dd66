/*
 * msg.c - message allocation and the public message accessors.
 *
 * Messages up to 1 KiB come from size-classed free lists cached per thread:
 * a message is usually allocated on one worker and freed on another, so a
 * thread that has freed FL__BATCH nodes of a class hands them to a shared
 * stack as one batch, and a thread that runs out takes a whole batch back:
 * one short critical section per FL__BATCH messages, none when the shared
 * stack is empty (then the allocator is used). Larger messages use the
 * allocator directly.
 *
 * The same pool serves other short-lived blocks whose size is known when
 * they are freed (fl__block_alloc): futures, outbound frames.
 */
#include "actor/internal.h"

#include <string.h>

#define FL__NCLASS 5
#define FL__CLASS_DIRECT 0xffffu
#define FL__BATCH 256u
#define FL__MAX_PAYLOAD ((size_t)1 << 30)

static const uint32_t class_size[FL__NCLASS] = {64, 128, 256, 512, 1024};

/*
 * A batch is a chain of free nodes linked through node.next; its first node
 * also carries the batch's bookkeeping (free memory, so overlaying it costs
 * nothing), which makes handing a batch over O(1).
 */
typedef struct batch {
    fl__qnode_t node;
    struct batch *next_batch;
    fl__qnode_t *tail;
    uint32_t n;
} batch_t;

typedef struct thread_cache {
    fl__qnode_t *head[FL__NCLASS];
    fl__qnode_t *tail[FL__NCLASS];
    uint32_t n[FL__NCLASS];
    bool registered;
} thread_cache_t;

static _Thread_local thread_cache_t cache;

static struct {
    pthread_mutex_t mu;
    batch_t *top;
    _Atomic size_t batches; /* lock-free emptiness check */
} shared[FL__NCLASS] = {{PTHREAD_MUTEX_INITIALIZER, NULL, 0},
                        {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
                        {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
                        {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
                        {PTHREAD_MUTEX_INITIALIZER, NULL, 0}};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;

static inline fl__qnode_t *link_of(fl__qnode_t *n)
{
    return atomic_load_explicit(&n->next, memory_order_relaxed);
}

static inline void set_link(fl__qnode_t *n, fl__qnode_t *next)
{
    atomic_store_explicit(&n->next, next, memory_order_relaxed);
}

/* Hand this thread's whole list of class c to the shared stack. O(1). */
static void give_back(unsigned c)
{
    if (cache.n[c] == 0)
        return;
    batch_t *b = (batch_t *)cache.head[c];
    b->tail = cache.tail[c];
    b->n = cache.n[c];
    cache.head[c] = cache.tail[c] = NULL;
    cache.n[c] = 0;
    pthread_mutex_lock(&shared[c].mu);
    b->next_batch = shared[c].top;
    shared[c].top = b;
    atomic_store_explicit(
        &shared[c].batches,
        atomic_load_explicit(&shared[c].batches, memory_order_relaxed) + 1,
        memory_order_relaxed);
    pthread_mutex_unlock(&shared[c].mu);
}

void fl__msg_pool_flush_thread(void)
{
    for (unsigned c = 0; c < FL__NCLASS; c++)
        give_back(c);
}

static void on_thread_exit(void *unused)
{
    (void)unused;
    fl__msg_pool_flush_thread();
}

static void make_key(void)
{
    /* If this fails the caches of exiting threads are lost to the pool:
     * memory held, never corrupted. */
    (void)pthread_key_create(&key, on_thread_exit);
}

/* Make sure this thread's cache is flushed when the thread exits. */
static inline void register_cache(void)
{
    if (fl__unlikely(!cache.registered)) {
        cache.registered = true;
        pthread_once(&key_once, make_key);
        (void)pthread_setspecific(key, &cache);
    }
}

/* Refill class c (empty) with a batch from the shared stack. O(1); no lock
 * when the stack is empty. */
static bool take_batch(unsigned c)
{
    if (atomic_load_explicit(&shared[c].batches, memory_order_relaxed) == 0)
        return false;
    pthread_mutex_lock(&shared[c].mu);
    batch_t *b = shared[c].top;
    if (b != NULL) {
        shared[c].top = b->next_batch;
        atomic_store_explicit(
            &shared[c].batches,
            atomic_load_explicit(&shared[c].batches, memory_order_relaxed) - 1,
            memory_order_relaxed);
    }
    pthread_mutex_unlock(&shared[c].mu);
    if (b == NULL)
        return false;
    register_cache();
    cache.head[c] = &b->node;
    cache.tail[c] = b->tail;
    cache.n[c] = b->n;
    return true;
}

void fl__msg_pool_trim(void)
{
    fl__msg_pool_flush_thread();
    for (unsigned c = 0; c < FL__NCLASS; c++) {
        pthread_mutex_lock(&shared[c].mu);
        batch_t *b = shared[c].top;
        shared[c].top = NULL;
        atomic_store_explicit(&shared[c].batches, 0, memory_order_relaxed);
        pthread_mutex_unlock(&shared[c].mu);
        while (b != NULL) {
            batch_t *next_batch = b->next_batch;
            fl__qnode_t *n = &b->node;
            uint32_t count = b->n;
            for (uint32_t i = 0; i < count && n != NULL; i++) {
                fl__qnode_t *next = link_of(n);
                fl__free(n);
                n = next;
            }
            b = next_batch;
        }
    }
}

/* The class of a block of `total` bytes; FL__NCLASS: too big for one. */
static inline unsigned class_of(size_t total)
{
    unsigned c = 0;
    while (c < FL__NCLASS && class_size[c] < total)
        c++;
    return c;
}

static void *class_alloc(unsigned c)
{
    if (cache.n[c] == 0 && !take_batch(c))
        return fl__malloc(class_size[c]);
    fl__qnode_t *n = cache.head[c];
    cache.head[c] = link_of(n);
    if (--cache.n[c] == 0)
        cache.tail[c] = NULL;
    return n;
}

static void class_free(void *p, unsigned c)
{
    register_cache();
    fl__qnode_t *n = p;
    set_link(n, cache.head[c]);
    if (cache.n[c] == 0)
        cache.tail[c] = n;
    cache.head[c] = n;
    if (++cache.n[c] >= FL__BATCH)
        give_back(c);
}

static fl_msg_t *mem_alloc(size_t total, uint16_t *cls)
{
    unsigned c = class_of(total);
    if (c == FL__NCLASS) {
        *cls = FL__CLASS_DIRECT;
        return fl__malloc(total);
    }
    *cls = (uint16_t)c;
    return class_alloc(c);
}

void fl__msg_release_mem(fl_msg_t *m)
{
    if (m->cls == FL__CLASS_DIRECT)
        fl__free(m);
    else
        class_free(m, m->cls);
}

void *fl__block_alloc(size_t size)
{
    unsigned c = class_of(size);
    return c == FL__NCLASS ? fl__malloc(size) : class_alloc(c);
}

void fl__block_free(void *p, size_t size)
{
    if (p == NULL)
        return;
    unsigned c = class_of(size);
    /* With no system left the pool is not trimmed again: plain free. Every
     * pooled block came from fl__malloc, so either way is right. */
    if (c == FL__NCLASS || !fl__systems_live())
        fl__free(p);
    else
        class_free(p, c);
}

fl_msg_t *fl__msg_alloc_kind(uint16_t kind, uint32_t type, size_t size)
{
    if (size > FL__MAX_PAYLOAD)
        return NULL;
    uint16_t cls;
    /* A copy of a zero template, not memset, which gcc's generic tuning
     * makes a `rep stos` for a header of this size: slower to start than
     * the stores it replaces. */
    static const fl_msg_t none;
    fl_msg_t *m = mem_alloc(sizeof(fl_msg_t) + size, &cls);
    if (m == NULL)
        return NULL;
    *m = none;
    if (size != 0)
        memset(m + 1, 0, size);
    m->cls = cls;
    m->kind = kind;
    m->type = type;
    m->size = (uint32_t)size;
    return m;
}

void fl__msg_settle(fl_msg_t *m, int err, const char *why)
{
    if (!(m->flags & FL__MF_SETTLE))
        return;
    fl__settle_fn fn;
    memcpy(&fn, fl__msg_payload(m), sizeof fn);
    fn(m, err, why);
}

fl_msg_t *fl__msg_clone(const fl_msg_t *src)
{
    fl_msg_t *m = fl__msg_alloc_kind(src->kind, src->type, src->size);
    if (m == NULL)
        return NULL;
    m->target = src->target;
    m->sender = src->sender;
    if (src->size != 0)
        memcpy(m + 1, src + 1, src->size);
    return m;
}

/* ---- public ----------------------------------------------------------------
 */

fl_msg_t *fl_msg_alloc(uint32_t type, size_t size)
{
    return fl__msg_alloc_kind(FL__MSG_USER, type, size);
}

void fl_msg_free(fl_msg_t *msg)
{
    if (msg == NULL)
        return;
    if (msg->kind == FL__MSG_EXEC) {
        /* An internal exec message that was never delivered. */
        fl__exec_t *e = fl__msg_payload(msg);
        if (e->arg_free != NULL)
            e->arg_free(e->arg);
        e->arg_free = NULL;
    }
    fl__msg_settle(msg, FL_ENOREPLY, NULL);
    if (msg->reply != NULL) {
        /* A message still carrying an ask (the caller built it but did not
         * send it, or kept a copy): nobody will answer. */
        fl_future_fail(msg->reply, FL_ENOREPLY, NULL);
        fl_future_release(msg->reply);
        msg->reply = NULL;
    }
    fl__msg_release_mem(msg);
}

void fl_msg_free_cb(void *msg)
{
    fl_msg_free(msg);
}

void *fl_msg_data(fl_msg_t *msg)
{
    return msg ? fl__msg_payload(msg) : NULL;
}

size_t fl_msg_size(const fl_msg_t *msg)
{
    return msg ? msg->size : 0;
}

uint32_t fl_msg_type(const fl_msg_t *msg)
{
    return msg ? msg->type : 0;
}

fl_actor_ref_t fl_msg_sender(const fl_msg_t *msg)
{
    fl_actor_ref_t r = {msg ? msg->sender : 0};
    return r;
}

bool fl_msg_is_ask(const fl_msg_t *msg)
{
    return msg != NULL && msg->reply != NULL;
}
