/*
 * msg.c - message allocation and the public message accessors.
 *
 * Messages up to 1 KiB come from size-classed free lists cached per thread:
 * a message is usually allocated on one worker and freed on another, so
 * each thread keeps at most FL__CACHE_MAX nodes per class and moves batches
 * of FL__BATCH to and from a shared list under a mutex (one lock per batch,
 * not per message). Larger messages use the allocator directly.
 */
#include "actor/internal.h"

#include <string.h>

#define FL__NCLASS 5
#define FL__CLASS_DIRECT 0xffffu
#define FL__CACHE_MAX 512u
#define FL__BATCH 256u
#define FL__MAX_PAYLOAD ((size_t)1 << 30)

static const uint32_t class_size[FL__NCLASS] = {64, 128, 256, 512, 1024};

typedef struct thread_cache {
    fl__qnode_t *head[FL__NCLASS];
    uint32_t n[FL__NCLASS];
    bool registered;
} thread_cache_t;

static _Thread_local thread_cache_t cache;

static struct {
    pthread_mutex_t mu;
    fl__qnode_t *head;
    size_t n;
} shared[FL__NCLASS] = {
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0}, {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0}, {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
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

/* Move up to `count` nodes of class c from this thread to the shared list. */
static void give_back(unsigned c, uint32_t count)
{
    fl__qnode_t *first = cache.head[c], *last = first;
    if (first == NULL || count == 0)
        return;
    uint32_t moved = 1;
    while (moved < count && link_of(last) != NULL) {
        last = link_of(last);
        moved++;
    }
    cache.head[c] = link_of(last);
    cache.n[c] -= moved;
    pthread_mutex_lock(&shared[c].mu);
    set_link(last, shared[c].head);
    shared[c].head = first;
    shared[c].n += moved;
    pthread_mutex_unlock(&shared[c].mu);
}

/* Refill class c from the shared list; returns false if it was empty. */
static bool take_batch(unsigned c)
{
    pthread_mutex_lock(&shared[c].mu);
    fl__qnode_t *first = shared[c].head;
    if (first == NULL) {
        pthread_mutex_unlock(&shared[c].mu);
        return false;
    }
    fl__qnode_t *last = first;
    uint32_t moved = 1;
    while (moved < FL__BATCH && link_of(last) != NULL) {
        last = link_of(last);
        moved++;
    }
    shared[c].head = link_of(last);
    shared[c].n -= moved;
    pthread_mutex_unlock(&shared[c].mu);
    set_link(last, cache.head[c]);
    cache.head[c] = first;
    cache.n[c] += moved;
    return true;
}

void fl__msg_pool_flush_thread(void)
{
    for (unsigned c = 0; c < FL__NCLASS; c++)
        give_back(c, UINT32_MAX);
}

static void on_thread_exit(void *unused)
{
    (void)unused;
    fl__msg_pool_flush_thread();
}

static void make_key(void)
{
    /* If this fails the caches of exiting threads are kept until
     * fl__msg_pool_trim cannot see them: memory held, never corrupted. */
    (void)pthread_key_create(&key, on_thread_exit);
}

void fl__msg_pool_trim(void)
{
    fl__msg_pool_flush_thread();
    for (unsigned c = 0; c < FL__NCLASS; c++) {
        pthread_mutex_lock(&shared[c].mu);
        fl__qnode_t *n = shared[c].head;
        shared[c].head = NULL;
        shared[c].n = 0;
        pthread_mutex_unlock(&shared[c].mu);
        while (n != NULL) {
            fl__qnode_t *next = link_of(n);
            fl__free(n);
            n = next;
        }
    }
}

static fl_msg_t *mem_alloc(size_t total, uint16_t *cls)
{
    unsigned c = 0;
    while (c < FL__NCLASS && class_size[c] < total)
        c++;
    if (c == FL__NCLASS) {
        *cls = FL__CLASS_DIRECT;
        return fl__malloc(total);
    }
    *cls = (uint16_t)c;
    if (cache.head[c] == NULL && !take_batch(c))
        return fl__malloc(class_size[c]);
    fl__qnode_t *n = cache.head[c];
    cache.head[c] = link_of(n);
    cache.n[c]--;
    return (fl_msg_t *)n;
}

void fl__msg_release_mem(fl_msg_t *m)
{
    unsigned c = m->cls;
    if (c == FL__CLASS_DIRECT) {
        fl__free(m);
        return;
    }
    if (fl__unlikely(!cache.registered)) {
        cache.registered = true;
        pthread_once(&key_once, make_key);
        (void)pthread_setspecific(key, &cache);
    }
    fl__qnode_t *n = &m->node;
    set_link(n, cache.head[c]);
    cache.head[c] = n;
    if (++cache.n[c] > FL__CACHE_MAX)
        give_back(c, FL__BATCH);
}

fl_msg_t *fl__msg_alloc_kind(uint16_t kind, uint32_t type, size_t size)
{
    if (size > FL__MAX_PAYLOAD)
        return NULL;
    uint16_t cls;
    fl_msg_t *m = mem_alloc(sizeof(fl_msg_t) + size, &cls);
    if (m == NULL)
        return NULL;
    memset(m, 0, sizeof *m);
    if (size != 0)
        memset(m + 1, 0, size);
    m->cls = cls;
    m->kind = kind;
    m->type = type;
    m->size = (uint32_t)size;
    return m;
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

/* ---- public ---------------------------------------------------------------- */

fl_msg_t *fl_msg_alloc(uint32_t type, size_t size)
{
    return fl__msg_alloc_kind(FL__MSG_USER, type, size);
}

void fl_msg_free(fl_msg_t *msg)
{
    if (msg == NULL)
        return;
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
